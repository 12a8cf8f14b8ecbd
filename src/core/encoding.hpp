// Byte encodings, one of each for the whole extension: lowercase hex (digests, fingerprints) and
// base64 without line breaks (OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock). PEM's line-wrapped
// base64 is core::PemEncoder (cms_writer.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace privacy::core {

// Lowercase hex, two characters a byte: the form PostgreSQL's encode(..., 'hex') produces.
std::string hex_encode(std::string_view bytes);
std::string hex_encode(const unsigned char* bytes, std::size_t length);

// Base64 without line breaks (the erasure ledger's head signature, receipts' signatures, MIME
// encoded words), and back; nullopt when `text` is not base64.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace privacy::core
