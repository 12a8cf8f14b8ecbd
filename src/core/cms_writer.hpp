// The encrypted export file: a CMS AuthEnvelopedData (RFC 5083) with AES-256-GCM, written as a
// stream.
//
// An export can be gigabytes of JSON, yet a background worker must keep its memory flat
// (docs/exports.md). CmsEnvelopeWriter therefore never holds the document: each piece of
// plaintext is encrypted and the DER bytes produced so far are handed to a sink at once (the
// worker stores them as chunks of privacy.export_files). The file decrypts with stock tools:
//
//   openssl cms -decrypt -inform DER -in export.der -inkey admin.key -recip admin.crt
//
// Every recipient certificate gets its own copy of the random content key: RSA keys by key
// transport (ktri, RSA-OAEP with SHA-256), EC keys by ECDH key agreement (kari, SHA-256 key
// derivation and AES key wrap). GCM authenticates the content, so a file altered in storage
// fails to decrypt instead of yielding altered data.
//
// PEM is the download format (privacy.download_export): der_to_pem() and PemEncoder turn the
// stored DER into the "-----BEGIN CMS-----" text that `openssl cms -inform PEM` reads.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/openssl_handles.hpp"

namespace privacy::core {

class CmsEnvelopeWriter {
 public:
  // Receives the DER output, in order, a piece at a time. It may throw; the writer is then
  // unusable and the partial output must be discarded.
  using Sink = std::function<void(const unsigned char*, size_t)>;

  // Plaintext is gathered into pieces of this size before it is encrypted: it bounds the memory
  // the writer holds, and keeps the per-piece DER framing (a few bytes) negligible however small
  // the caller's writes are.
  static constexpr size_t kPieceSize = 64 * 1024;

  // Checks each PEM certificate (see parse_recipient_certificate; validity dates are the
  // caller's business) and prepares the envelope. Nothing reaches the sink yet. Throws
  // Error(SQLSTATE 22023) when there is no recipient or one certificate is unusable.
  CmsEnvelopeWriter(const std::vector<std::string>& recipient_pems, Sink sink);

  // Destroying a writer without finish() abandons the envelope: the output so far is a
  // truncated file that no tool will decrypt, which is what a failed export should leave.
  ~CmsEnvelopeWriter();

  CmsEnvelopeWriter(const CmsEnvelopeWriter&) = delete;
  CmsEnvelopeWriter& operator=(const CmsEnvelopeWriter&) = delete;

  // Adds plaintext. Whole pieces of kPieceSize are encrypted and sent to the sink before this
  // returns; a shorter tail waits for the next write() or finish().
  void write(std::string_view plaintext);

  // Encrypts the tail, writes the GCM tag and the end of the DER structure, and sends it all to
  // the sink. After it the writer accepts nothing more.
  void finish();

  // Bytes given to the sink so far.
  size_t bytes_out() const { return bytes_out_; }

 private:
  enum class State { Open, Finished, Failed };

  void add_recipient(size_t index, const std::string& pem);
  void start_stream();
  void encrypt(std::string_view piece);
  void flush_stream();
  void write_empty_envelope();
  void drain_output();
  void release_stream() noexcept;
  void require_open(const char* operation) const;

  Sink sink_;
  openssl::CmsPtr cms_;
  openssl::BioPtr output_;       // memory BIO at the bottom of the chain: DER lands here
  BIO* plaintext_in_ = nullptr;  // top of the chain BIO_new_CMS() built on output_, once
                                 // the first plaintext arrives; nullptr before and after
  std::string pending_;          // plaintext not yet encrypted, always < kPieceSize
  size_t bytes_out_ = 0;
  State state_ = State::Open;
};

// The whole DER `der` as PEM: "-----BEGIN CMS-----", base64 in lines of 64 characters,
// "-----END CMS-----", each line ending in "\n".
std::string der_to_pem(std::string_view der);

// der_to_pem() a chunk at a time, for DER that is stored in chunks and too big to join:
//   PemEncoder pem; for (chunk : chunks) out += pem.update(chunk); out += pem.finish();
// The concatenated output equals der_to_pem() of the concatenated input; the chunk boundaries
// do not matter. It holds at most 47 bytes between calls, in itself: the encoder owns no heap
// memory and is trivially destructible, so a set-returning SQL function can keep one in
// PostgreSQL memory between calls (src/export/download.cpp) without leaking when the query
// stops early.
class PemEncoder {
 public:
  // `label` names the block ("-----BEGIN CMS-----"); the encoder keeps the pointer, so it must
  // outlive the encoder (a string literal).
  explicit PemEncoder(const char* label = "CMS") : label_(label) {}

  // The PEM text for `der`: the BEGIN line on the first call, then every complete 64-character
  // line the input so far allows.
  std::string update(std::string_view der);

  // The last (short) line and the END line. After it, update() and finish() throw.
  std::string finish();

  // 48 input bytes make exactly one 64-character base64 line, the PEM line length.
  static constexpr size_t kBytesPerLine = 48;

 private:
  const char* label_;
  std::array<unsigned char, kBytesPerLine> carry_{};  // input not yet encoded: less than a line
  size_t carry_size_ = 0;
  bool started_ = false;
  bool finished_ = false;
};

static_assert(std::is_trivially_destructible_v<PemEncoder>, "see the comment above PemEncoder");

}  // namespace privacy::core
