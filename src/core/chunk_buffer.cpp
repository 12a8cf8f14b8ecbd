#include "core/chunk_buffer.hpp"

#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/openssl_handles.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace privacy::core {

struct ChunkBuffer::Digest {
  std::unique_ptr<EVP_MD_CTX, openssl::Deleter<EVP_MD_CTX_free>> context{EVP_MD_CTX_new()};
};

ChunkBuffer::ChunkBuffer(size_t chunk_size, ChunkOutput output)
    : chunk_size_(chunk_size), output_(std::move(output)), digest_(std::make_unique<Digest>()) {
  if (chunk_size_ == 0) throw Error("XX000", "ChunkBuffer: chunk size must be positive");
  if (!digest_->context || EVP_DigestInit_ex(digest_->context.get(), EVP_sha256(), nullptr) != 1) {
    throw Error("XX000", "could not start SHA-256: " + openssl::take_error_text());
  }
  pending_.reserve(chunk_size_);
}

ChunkBuffer::~ChunkBuffer() = default;

void ChunkBuffer::emit(std::string_view chunk) {
  output_(next_seq_, chunk);
  ++next_seq_;
}

void ChunkBuffer::append(const unsigned char* data, size_t size) {
  if (finished_) throw Error("XX000", "ChunkBuffer: append after finish");
  if (EVP_DigestUpdate(digest_->context.get(), data, size) != 1) {
    throw Error("XX000", "SHA-256 update failed: " + openssl::take_error_text());
  }
  total_bytes_ += size;
  const char* bytes = reinterpret_cast<const char*>(data);
  while (size > 0) {
    size_t take = std::min(size, chunk_size_ - pending_.size());
    pending_.append(bytes, take);
    bytes += take;
    size -= take;
    if (pending_.size() == chunk_size_) {
      emit(pending_);
      pending_.clear();
    }
  }
}

void ChunkBuffer::finish() {
  if (finished_) throw Error("XX000", "ChunkBuffer: finish called twice");
  if (!pending_.empty()) emit(pending_);
  pending_.clear();
  pending_.shrink_to_fit();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(digest_->context.get(), digest, &length) != 1) {
    throw Error("XX000", "SHA-256 final failed: " + openssl::take_error_text());
  }
  sha256_hex_ = hex_encode(digest, length);
  finished_ = true;
}

const std::string& ChunkBuffer::sha256_hex() const {
  if (!finished_) throw Error("XX000", "ChunkBuffer: sha256_hex before finish");
  return sha256_hex_;
}

}  // namespace privacy::core
