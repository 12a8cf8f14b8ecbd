// Owning handles for OpenSSL objects, and the text of OpenSSL's error queue.
//
// OpenSSL is a C library: every object it hands out must be released with its own *_free
// function, on every path, including when a C++ exception unwinds past it. Wrapping each object
// in a std::unique_ptr whose deleter is that function makes the release automatic, so the export
// code never has a "goto cleanup" and never leaks when it throws.
#pragma once

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace privacy::core::openssl {

// A unique_ptr deleter that calls the OpenSSL free function given as template argument.
template <auto FreeFunction>
struct Deleter {
  template <typename T>
  void operator()(T* object) const noexcept {
    FreeFunction(object);
  }
};

using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using CmsPtr = std::unique_ptr<CMS_ContentInfo, Deleter<CMS_ContentInfo_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;

// Everything on this thread's OpenSSL error queue, oldest first, joined with "; " (for example
// "error:0480006C:PEM routines::no start line"), and empties the queue. Returns "no OpenSSL
// error was reported" when the queue is empty, so a message built from it is never blank.
std::string take_error_text();

}  // namespace privacy::core::openssl
