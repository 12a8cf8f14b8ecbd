#include "core/cms_writer.hpp"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>

#include <algorithm>
#include <utility>

#include "core/certificate.hpp"
#include "core/error.hpp"

namespace privacy::core {

namespace {

[[noreturn]] void internal_error(const std::string& message) {
  throw Error(sqlstate::kInternalError, message, "OpenSSL said: " + openssl::take_error_text());
}

// OpenSSL's defaults date from the 1990s: RSA PKCS#1 v1.5 key transport, open to padding-oracle
// attacks, and a SHA-1 key derivation for ECDH. We ask for RSA-OAEP with SHA-256 and for the
// SHA-256 key derivation (dhSinglePass-stdDH-sha256kdf-scheme) instead; RFC 8551 recommends
// both and `openssl cms -decrypt` reads the choice from the file, so decryption is unchanged.
bool choose_key_parameters(CMS_RecipientInfo* info, EVP_PKEY* key) {
  EVP_PKEY_CTX* context = CMS_RecipientInfo_get0_pkey_ctx(info);
  if (context == nullptr) return false;
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    return EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_OAEP_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_oaep_md(context, EVP_sha256()) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(context, EVP_sha256()) > 0;
  }
  return EVP_PKEY_CTX_set_ecdh_kdf_md(context, EVP_sha256()) > 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CmsEnvelopeWriter
//
// OpenSSL's streaming CMS API (the machinery behind `openssl cms -encrypt -stream`) builds a
// chain of BIOs on top of an output BIO:
//
//   plaintext_in_ (AES-256-GCM cipher BIO) -> ASN.1 streaming BIO -> output_ (memory BIO)
//
// The ASN.1 BIO writes the DER header and the recipient infos before the first content bytes,
// wraps each encrypted piece as one OCTET STRING of an indefinite-length encoding, and on flush
// appends the GCM tag and the closing bytes. We empty output_ into the sink after every piece, so
// the memory held is one piece of plaintext plus its ciphertext, whatever the total size.
// ---------------------------------------------------------------------------------------------

CmsEnvelopeWriter::CmsEnvelopeWriter(const std::vector<std::string>& recipient_pems, Sink sink)
    : sink_(std::move(sink)) {
  if (recipient_pems.empty()) {
    throw Error(sqlstate::kInvalidParameter,
                "an encrypted export needs at least one recipient certificate",
                "there is no active export recipient",
                "register one with privacy.add_export_recipient(name, certificate)");
  }
  if (!sink_) throw Error(sqlstate::kInternalError, "CmsEnvelopeWriter was given no sink");
  ERR_clear_error();
  cms_.reset(CMS_AuthEnvelopedData_create(EVP_aes_256_gcm()));
  if (!cms_) internal_error("could not create a CMS AuthEnvelopedData structure");
  // The ciphertext is carried inside the envelope (not "detached"), as CMS_encrypt() does.
  if (CMS_set_detached(cms_.get(), 0) != 1) internal_error("could not attach the CMS content");
  for (size_t i = 0; i < recipient_pems.size(); ++i) add_recipient(i, recipient_pems[i]);
  output_.reset(BIO_new(BIO_s_mem()));
  if (!output_) internal_error("could not allocate an OpenSSL memory BIO");
  pending_.reserve(kPieceSize);
}

CmsEnvelopeWriter::~CmsEnvelopeWriter() { release_stream(); }

// Adds one recipient. CMS_add1_recipient_cert chooses the key management from the key type:
// key transport for RSA, ECDH key agreement for EC. The certificate error says which recipient
// of the list was at fault, since the caller passes several.
void CmsEnvelopeWriter::add_recipient(size_t index, const std::string& pem) {
  openssl::X509Ptr cert;
  try {
    cert = parse_recipient_certificate(pem);
  } catch (const Error& error) {
    std::string where = "recipient certificate " + std::to_string(index + 1);
    throw Error(error.sqlstate(), error.what(),
                error.detail().empty() ? where : where + ": " + error.detail(), error.hint());
  }
  // CMS_KEY_PARAM leaves the recipient's key context open so that we can choose its parameters.
  CMS_RecipientInfo* info = CMS_add1_recipient_cert(cms_.get(), cert.get(), CMS_KEY_PARAM);
  if (info == nullptr || !choose_key_parameters(info, X509_get0_pubkey(cert.get()))) {
    throw Error(
        sqlstate::kInvalidParameter,
        "could not encrypt the export to recipient certificate " + std::to_string(index + 1),
        "OpenSSL said: " + openssl::take_error_text());
  }
}

// Builds the BIO chain described above, on the first piece of plaintext. Starting it lazily
// leaves the envelope untouched for write_empty_envelope() when there is no plaintext at all.
void CmsEnvelopeWriter::start_stream() {
  plaintext_in_ = BIO_new_CMS(output_.get(), cms_.get());
  if (plaintext_in_ == nullptr) internal_error("could not start the CMS encryption stream");
}

void CmsEnvelopeWriter::write(std::string_view plaintext) {
  require_open("write to");
  try {
    if (!pending_.empty()) {
      size_t take = std::min(kPieceSize - pending_.size(), plaintext.size());
      pending_.append(plaintext.data(), take);
      plaintext.remove_prefix(take);
      if (pending_.size() == kPieceSize) {
        encrypt(pending_);
        pending_.clear();
      }
    }
    while (plaintext.size() >= kPieceSize) {  // whole pieces skip the copy into pending_
      encrypt(plaintext.substr(0, kPieceSize));
      plaintext.remove_prefix(kPieceSize);
    }
    pending_.append(plaintext.data(), plaintext.size());
  } catch (...) {
    state_ = State::Failed;
    throw;
  }
}

void CmsEnvelopeWriter::finish() {
  require_open("finish");
  ERR_clear_error();  // error messages must only show what went wrong here
  try {
    if (!pending_.empty()) {
      encrypt(pending_);
      pending_.clear();
    }
    if (plaintext_in_ == nullptr) {
      write_empty_envelope();
    } else {
      flush_stream();
      drain_output();
      release_stream();
    }
    state_ = State::Finished;
  } catch (...) {
    state_ = State::Failed;
    throw;
  }
}

// Pushes one piece of plaintext through the cipher and sends the resulting DER to the sink.
void CmsEnvelopeWriter::encrypt(std::string_view piece) {
  ERR_clear_error();
  if (plaintext_in_ == nullptr) start_stream();
  int length = static_cast<int>(piece.size());  // at most kPieceSize, so it fits
  if (BIO_write(plaintext_in_, piece.data(), length) != length) {
    internal_error("could not encrypt export data");
  }
  drain_output();
}

// Flushing the top of the chain finalizes GCM, and the ASN.1 BIO then writes the tag (the
// "mac" field) and closes every indefinite-length encoding.
void CmsEnvelopeWriter::flush_stream() {
  if (BIO_flush(plaintext_in_) <= 0) internal_error("could not finish the encrypted export");
}

// OpenSSL's streaming BIO emits the DER header only when the first content byte reaches it, so
// a stream with no content cannot be finished (`openssl cms -encrypt -stream` fails on an empty
// file the same way). With nothing to stream, the envelope is made in one go instead: the same
// recipients and cipher, an empty content, ordinary definite-length DER.
void CmsEnvelopeWriter::write_empty_envelope() {
  openssl::BioPtr nothing(BIO_new_mem_buf("", 0));
  if (!nothing) internal_error("could not allocate an OpenSSL memory BIO");
  if (CMS_final(cms_.get(), nothing.get(), nullptr, CMS_BINARY) != 1) {
    internal_error("could not encrypt the empty export");
  }
  if (i2d_CMS_bio(output_.get(), cms_.get()) != 1) {
    internal_error("could not encode the empty export");
  }
  drain_output();
}

// Hands everything the memory BIO holds to the sink and empties it.
void CmsEnvelopeWriter::drain_output() {
  char* data = nullptr;
  long length = BIO_get_mem_data(output_.get(), &data);
  if (length <= 0) return;
  sink_(reinterpret_cast<const unsigned char*>(data), static_cast<size_t>(length));
  bytes_out_ += static_cast<size_t>(length);
  (void)BIO_reset(output_.get());
}

// Frees the BIOs BIO_new_CMS() stacked on output_, top down, leaving output_ itself (owned by
// its unique_ptr). This is how OpenSSL's own i2d_ASN1_bio_stream() takes the chain apart.
void CmsEnvelopeWriter::release_stream() noexcept {
  BIO* bio = plaintext_in_;
  while (bio != nullptr && bio != output_.get()) {
    BIO* next = BIO_pop(bio);
    BIO_free(bio);
    bio = next;
  }
  plaintext_in_ = nullptr;
}

void CmsEnvelopeWriter::require_open(const char* operation) const {
  if (state_ == State::Open) return;
  throw Error(sqlstate::kInternalError,
              std::string("cannot ") + operation + " an export envelope that " +
                  (state_ == State::Finished ? "is already finished" : "failed earlier"));
}

// ---------------------------------------------------------------------------------------------
// PEM
// ---------------------------------------------------------------------------------------------

namespace {

// Appends base64 of up to 48 bytes to `out` as one PEM line ending in "\n", encoding in place
// (a download encodes millions of lines).
void append_line(std::string& out, const unsigned char* bytes, size_t count) {
  size_t at = out.size();
  out.resize(at + 65);  // 64 characters and the NUL that EVP_EncodeBlock writes after them
  int length =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[at]), bytes, static_cast<int>(count));
  out.resize(at + static_cast<size_t>(length));
  out += '\n';
}

const unsigned char* as_bytes(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

}  // namespace

std::string PemEncoder::update(std::string_view der) {
  if (finished_) throw Error(sqlstate::kInternalError, "PemEncoder::update() after finish()");
  std::string out;
  if (!started_) {
    out = std::string("-----BEGIN ") + label_ + "-----\n";
    started_ = true;
  }
  if (carry_size_ > 0) {  // complete the line left over from the previous call first
    size_t take = std::min(kBytesPerLine - carry_size_, der.size());
    std::copy_n(as_bytes(der), take, carry_.begin() + carry_size_);
    carry_size_ += take;
    der.remove_prefix(take);
    if (carry_size_ < kBytesPerLine) return out;
    append_line(out, carry_.data(), kBytesPerLine);
    carry_size_ = 0;
  }
  out.reserve(out.size() + (der.size() / kBytesPerLine + 1) * 65);
  while (der.size() >= kBytesPerLine) {
    append_line(out, as_bytes(der), kBytesPerLine);
    der.remove_prefix(kBytesPerLine);
  }
  std::copy_n(as_bytes(der), der.size(), carry_.begin());
  carry_size_ = der.size();
  return out;
}

std::string PemEncoder::finish() {
  std::string out = update({});  // writes the BEGIN line if nothing came before
  if (carry_size_ > 0) append_line(out, carry_.data(), carry_size_);
  carry_size_ = 0;
  finished_ = true;
  out += std::string("-----END ") + label_ + "-----\n";
  return out;
}

std::string der_to_pem(std::string_view der) {
  PemEncoder encoder;
  std::string pem = encoder.update(der);
  pem += encoder.finish();
  return pem;
}

}  // namespace privacy::core
