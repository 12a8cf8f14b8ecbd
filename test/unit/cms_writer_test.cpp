#include "core/cms_writer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "cert_fixtures.hpp"
#include "core/error.hpp"

using privacy::core::CmsEnvelopeWriter;
using privacy::core::der_to_pem;
using privacy::core::Error;
using privacy::core::PemEncoder;
using privacy::test::KeyAndCertificate;
using privacy::test::ScratchDir;

namespace {

// Deterministic bytes that do not compress, so nothing in the pipeline can cheat.
std::string random_bytes(size_t count, unsigned seed) {
  std::mt19937 generator(seed);
  std::string bytes(count, '\0');
  for (char& byte : bytes) byte = static_cast<char>(generator() & 0xff);
  return bytes;
}

// A sink that appends to a string.
CmsEnvelopeWriter::Sink append_to(std::string& out) {
  return [&out](const unsigned char* data, size_t size) {
    out.append(reinterpret_cast<const char*>(data), size);
  };
}

std::vector<std::string> both_recipients() {
  return {privacy::test::rsa_recipient().certificate_pem,
          privacy::test::ec_recipient().certificate_pem};
}

// Encrypts `plaintext` to both test recipients, fed in pieces of irregular small sizes.
std::string encrypt_in_small_pieces(const std::string& plaintext) {
  std::string der;
  CmsEnvelopeWriter writer(both_recipients(), append_to(der));
  const size_t sizes[] = {1, 7, 100, 4096, 65535, 65536, 65537, 9000, 3};
  size_t offset = 0;
  for (size_t i = 0; offset < plaintext.size(); ++i) {
    size_t size = std::min(sizes[i % std::size(sizes)], plaintext.size() - offset);
    writer.write(std::string_view(plaintext).substr(offset, size));
    offset += size;
  }
  writer.finish();
  return der;
}

// Decrypts `file` with the stock command line as `recipient`; returns the exit status and
// leaves the plaintext in dir/out.bin.
int openssl_decrypt(const ScratchDir& dir, const std::string& file, const std::string& inform,
                    const KeyAndCertificate& recipient) {
  std::string key = dir.write("k.pem", recipient.key_pem);
  std::string cert = dir.write("c.pem", recipient.certificate_pem);
  return privacy::test::run("openssl cms -decrypt -inform " + inform + " -in " + file + " -inkey " +
                            key + " -recip " + cert + " -out " + dir.file("out.bin") + " 2>" +
                            dir.file("err.txt"));
}

// Runs openssl_decrypt for both recipients and checks each gets `expected` back.
void expect_both_decrypt(const ScratchDir& dir, const std::string& file, const std::string& inform,
                         const std::string& expected) {
  for (const KeyAndCertificate* recipient :
       {&privacy::test::rsa_recipient(), &privacy::test::ec_recipient()}) {
    ASSERT_EQ(openssl_decrypt(dir, file, inform, *recipient), 0) << dir.read("err.txt");
    std::string decrypted = dir.read("out.bin");
    ASSERT_EQ(decrypted.size(), expected.size());
    EXPECT_TRUE(decrypted == expected) << "decrypted bytes differ";
  }
}

Error error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "no privacy::core::Error was thrown";
  return Error("00000", "none");
}

}  // namespace

TEST(CmsEnvelopeWriter, BothRecipientsDecryptDerWithStockOpenssl) {
  std::string plaintext = random_bytes(3 * 1024 * 1024 + 12345, 1);
  std::string der = encrypt_in_small_pieces(plaintext);
  ScratchDir dir;
  expect_both_decrypt(dir, dir.write("f.der", der), "DER", plaintext);
}

TEST(CmsEnvelopeWriter, BothRecipientsDecryptPemWithStockOpenssl) {
  std::string plaintext = random_bytes(1024 * 1024 + 7, 2);
  std::string der = encrypt_in_small_pieces(plaintext);
  ScratchDir dir;
  expect_both_decrypt(dir, dir.write("f.pem", der_to_pem(der)), "PEM", plaintext);
}

// Curves other than the NIST ones are accepted when they have at least 256 bits
// (docs/exports.md): each must really work for CMS key agreement.
TEST(CmsEnvelopeWriter, OtherAcceptedCurvesDecryptWithStockOpenssl) {
  for (const char* curve : {"secp384r1", "secp521r1", "brainpoolP256r1", "secp256k1"}) {
    auto key = privacy::test::ec_key(curve);
    KeyAndCertificate recipient{privacy::test::private_key_pem(key.get()),
                                privacy::test::certificate_for(key.get(), "keyAgreement")};
    std::string der;
    CmsEnvelopeWriter writer({recipient.certificate_pem}, append_to(der));
    writer.write("{\"curve\": true}");
    writer.finish();
    ScratchDir dir;
    ASSERT_EQ(openssl_decrypt(dir, dir.write("f.der", der), "DER", recipient), 0)
        << curve << ": " << dir.read("err.txt");
    EXPECT_EQ(dir.read("out.bin"), "{\"curve\": true}") << curve;
  }
}

TEST(CmsEnvelopeWriter, OutputIsAuthEnvelopedDataWithAes256Gcm) {
  std::string der = encrypt_in_small_pieces("{\"format\": \"pg_privacy.export/1\"}");
  ScratchDir dir;
  std::string file = dir.write("f.der", der);
  ASSERT_EQ(privacy::test::run("openssl cms -cmsout -print -inform DER -in " + file + " > " +
                               dir.file("dump.txt")),
            0);
  std::string dump = dir.read("dump.txt");
  EXPECT_NE(dump.find("id-smime-ct-authEnvelopedData"), std::string::npos) << dump;
  EXPECT_NE(dump.find("aes-256-gcm"), std::string::npos) << dump;
  EXPECT_NE(dump.find("d.ktri"), std::string::npos) << "no RSA key transport recipient";
  EXPECT_NE(dump.find("d.kari"), std::string::npos) << "no EC key agreement recipient";
  // Not OpenSSL's defaults (RSA PKCS#1 v1.5, SHA-1 key derivation) but their modern forms.
  EXPECT_NE(dump.find("rsaesOaep"), std::string::npos) << dump;
  EXPECT_NE(dump.find("dhSinglePass-stdDH-sha256kdf-scheme"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("sha1kdf"), std::string::npos) << dump;
}

TEST(CmsEnvelopeWriter, OneFlippedCiphertextByteFailsAuthentication) {
  std::string plaintext = random_bytes(512 * 1024, 3);
  std::string der = encrypt_in_small_pieces(plaintext);
  // Well past the header and recipient infos, well before the tag: encrypted content.
  der[der.size() / 2] = static_cast<char>(der[der.size() / 2] ^ 0x01);
  ScratchDir dir;
  std::string file = dir.write("f.der", der);
  EXPECT_NE(openssl_decrypt(dir, file, "DER", privacy::test::rsa_recipient()), 0);
  EXPECT_NE(openssl_decrypt(dir, file, "DER", privacy::test::ec_recipient()), 0);
}

TEST(CmsEnvelopeWriter, EmptyDocumentStillDecrypts) {
  std::string der;
  CmsEnvelopeWriter writer(both_recipients(), append_to(der));
  writer.finish();
  ScratchDir dir;
  expect_both_decrypt(dir, dir.write("f.der", der), "DER", "");
}

TEST(CmsEnvelopeWriter, StreamsWithBoundedMemory) {
  // 50 MB in 64 KB pieces. The sink only counts. If the writer buffered, the bytes would come
  // out at finish(); streaming means they come out as we go, never far behind the input.
  const size_t kTotal = 50 * 1024 * 1024;
  const std::string piece = random_bytes(64 * 1024, 4);
  size_t emitted = 0;
  size_t sink_calls = 0;
  CmsEnvelopeWriter writer(both_recipients(), [&](const unsigned char*, size_t size) {
    emitted += size;
    ++sink_calls;
  });
  size_t written = 0;
  size_t largest_lag = 0;
  while (written < kTotal) {
    writer.write(piece);
    written += piece.size();
    largest_lag = std::max(largest_lag, written > emitted ? written - emitted : 0);
  }
  size_t before_finish = emitted;
  writer.finish();
  EXPECT_EQ(writer.bytes_out(), emitted);
  EXPECT_GE(before_finish, emitted * 95 / 100);
  EXPECT_GE(emitted, kTotal);                 // ciphertext + framing
  EXPECT_LT(emitted, kTotal + kTotal / 100);  // framing stays small
  EXPECT_LE(largest_lag, 2 * CmsEnvelopeWriter::kPieceSize);
  EXPECT_GE(sink_calls, kTotal / CmsEnvelopeWriter::kPieceSize);
}

TEST(CmsEnvelopeWriter, TinyWritesAreGatheredIntoPieces) {
  // 1 MB one byte at a time: nothing reaches the sink until a whole piece is gathered, so the
  // DER framing (a few bytes per piece) stays negligible.
  std::string der;
  CmsEnvelopeWriter writer(both_recipients(), append_to(der));
  std::string plaintext = random_bytes(1024 * 1024, 5);
  for (char byte : plaintext) writer.write(std::string_view(&byte, 1));
  writer.finish();
  EXPECT_LT(der.size(), plaintext.size() + 4096);
  ScratchDir dir;
  ASSERT_EQ(openssl_decrypt(dir, dir.write("f.der", der), "DER", privacy::test::ec_recipient()), 0);
  EXPECT_TRUE(dir.read("out.bin") == plaintext);
}

TEST(CmsEnvelopeWriter, AbandonedEnvelopeDoesNotDecrypt) {
  std::string der;
  {
    CmsEnvelopeWriter writer(both_recipients(), append_to(der));
    writer.write(random_bytes(300 * 1024, 6));
  }  // destroyed without finish()
  EXPECT_GT(der.size(), 0u);
  ScratchDir dir;
  EXPECT_NE(openssl_decrypt(dir, dir.write("f.der", der), "DER", privacy::test::rsa_recipient()),
            0);
}

TEST(CmsEnvelopeWriter, NeedsAtLeastOneRecipient) {
  std::string der;
  Error error = error_of([&] { CmsEnvelopeWriter writer({}, append_to(der)); });
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_NE(error.hint().find("add_export_recipient"), std::string::npos);
}

TEST(CmsEnvelopeWriter, RefusesAnUnusableRecipientSayingWhichOne) {
  std::string der;
  auto ed = privacy::test::make_recipient(privacy::test::KeyKind::Ed25519, "signer");
  std::vector<std::string> pems = {privacy::test::rsa_recipient().certificate_pem,
                                   ed.certificate_pem};
  Error error = error_of([&] { CmsEnvelopeWriter writer(pems, append_to(der)); });
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_NE(std::string(error.what()).find("ED25519"), std::string::npos) << error.what();
  EXPECT_EQ(error.detail().rfind("recipient certificate 2", 0), 0u) << error.detail();

  error = error_of([&] { CmsEnvelopeWriter writer({"garbage"}, append_to(der)); });
  EXPECT_EQ(error.sqlstate(), "22023");
}

TEST(CmsEnvelopeWriter, NothingIsAcceptedAfterFinish) {
  std::string der;
  CmsEnvelopeWriter writer(both_recipients(), append_to(der));
  writer.write("abc");
  writer.finish();
  EXPECT_EQ(error_of([&] { writer.write("more"); }).sqlstate(), "XX000");
  EXPECT_EQ(error_of([&] { writer.finish(); }).sqlstate(), "XX000");
}

TEST(CmsEnvelopeWriter, SinkFailurePropagatesAndDisablesTheWriter) {
  CmsEnvelopeWriter writer(both_recipients(), [](const unsigned char*, size_t) {
    throw Error("53100", "could not extend file");
  });
  EXPECT_EQ(
      error_of([&] { writer.write(random_bytes(CmsEnvelopeWriter::kPieceSize, 7)); }).sqlstate(),
      "53100");
  EXPECT_EQ(error_of([&] { writer.write("x"); }).sqlstate(), "XX000");
}

TEST(PemEncoder, WholeDerIsWrappedAt64Columns) {
  std::string pem = der_to_pem(random_bytes(1000, 8));
  std::istringstream lines(pem);
  std::string line;
  std::vector<std::string> all;
  while (std::getline(lines, line)) all.push_back(line);
  ASSERT_GE(all.size(), 3u);
  EXPECT_EQ(all.front(), "-----BEGIN CMS-----");
  EXPECT_EQ(all.back(), "-----END CMS-----");
  for (size_t i = 1; i + 2 < all.size(); ++i) EXPECT_EQ(all[i].size(), 64u) << "line " << i;
  EXPECT_EQ(all[all.size() - 2].size(), 4u * ((1000 % 48 + 2) / 3));  // 1000 = 20*48 + 40
  EXPECT_EQ(pem.back(), '\n');
}

TEST(PemEncoder, ChunkBoundariesDoNotMatter) {
  std::string der = random_bytes(100000, 9);
  const size_t chunk_sizes[] = {1, 47, 48, 49, 95, 96, 97, 5000};
  for (size_t chunk_size : chunk_sizes) {
    PemEncoder encoder;
    std::string pem;
    for (size_t offset = 0; offset < der.size(); offset += chunk_size) {
      pem += encoder.update(std::string_view(der).substr(offset, chunk_size));
    }
    pem += encoder.finish();
    EXPECT_EQ(pem, der_to_pem(der)) << "chunk size " << chunk_size;
  }
}

// privacy.download_export keeps its encoder in PostgreSQL memory between calls: all of the
// encoder's state must be in the object itself, so that a byte-wise copy carries on alike.
TEST(PemEncoder, StateLivesInTheObject) {
  static_assert(std::is_trivially_copyable_v<PemEncoder> &&
                std::is_trivially_destructible_v<PemEncoder>);
  std::string der = random_bytes(1000, 10);
  PemEncoder original;
  std::string head = original.update(std::string_view(der).substr(0, 100));  // 4 bytes carried over
  PemEncoder copy;
  std::memcpy(static_cast<void*>(&copy), &original, sizeof copy);
  std::string tail = copy.update(std::string_view(der).substr(100));
  EXPECT_EQ(head + tail + copy.finish(), der_to_pem(der));
}

TEST(PemEncoder, EmptyInputGivesAnEmptyBlock) {
  EXPECT_EQ(der_to_pem(""), "-----BEGIN CMS-----\n-----END CMS-----\n");
}

TEST(PemEncoder, RefusesUpdatesAfterFinish) {
  PemEncoder encoder;
  encoder.finish();
  EXPECT_EQ(error_of([&] { encoder.update("x"); }).sqlstate(), "XX000");
}
