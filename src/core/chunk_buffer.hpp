// Cuts a byte stream into fixed-size chunks and keeps its size and SHA-256 on the way.
//
// The export job stores the encrypted file as rows of privacy.export_file_chunks (one bytea per
// chunk) and records the file's size and SHA-256 in privacy.export_files. The CMS writer hands
// out DER in pieces of any size; ChunkBuffer gathers them into chunks of exactly `chunk_size`
// bytes (the last one shorter) and gives each complete chunk to a callback, so memory holds at
// most one chunk whatever the file size. The digest is computed incrementally (EVP), never over
// the whole file at once.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace privacy::core {

class ChunkBuffer {
 public:
  // Receives chunk number `seq` (0, 1, 2, ...). It may throw; the buffer is then unusable.
  using ChunkOutput = std::function<void(int seq, std::string_view chunk)>;

  ChunkBuffer(size_t chunk_size, ChunkOutput output);
  ~ChunkBuffer();
  ChunkBuffer(const ChunkBuffer&) = delete;
  ChunkBuffer& operator=(const ChunkBuffer&) = delete;

  // Adds bytes; every chunk they complete goes to the output before this returns.
  void append(const unsigned char* data, size_t size);

  // Sends the last, partial chunk (if any). After it only the accessors below may be called.
  void finish();

  size_t total_bytes() const { return total_bytes_; }
  int chunks_written() const { return next_seq_; }
  // The SHA-256 of every byte appended, as 64 lowercase hex digits. Only after finish().
  const std::string& sha256_hex() const;

 private:
  struct Digest;  // the EVP context, kept out of this header

  void emit(std::string_view chunk);

  size_t chunk_size_;
  ChunkOutput output_;
  std::string pending_;
  std::unique_ptr<Digest> digest_;
  std::string sha256_hex_;
  size_t total_bytes_ = 0;
  int next_seq_ = 0;
  bool finished_ = false;
};

}  // namespace privacy::core
