#include "core/openssl_handles.hpp"

#include <openssl/err.h>

namespace privacy::core::openssl {

std::string take_error_text() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "no OpenSSL error was reported" : text;
}

}  // namespace privacy::core::openssl
