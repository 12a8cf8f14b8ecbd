#include "core/encoding.hpp"
#include "core/cms_signer.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "cert_fixtures.hpp"
#include "core/cms_writer.hpp"
#include "core/error.hpp"

using privacy::core::CmsSigner;
using privacy::core::Error;
using privacy::core::verified_cms_content;
using privacy::test::certificate_for;
using privacy::test::KeyKind;
using privacy::test::make_recipient;
using privacy::test::private_key_pem;
using privacy::test::ScratchDir;

namespace {

const privacy::test::KeyAndCertificate& rsa_signer() {
  static const auto signer = make_recipient(KeyKind::Rsa, "pg_privacy receipts");
  return signer;
}

Error refusal(const std::string& certificate, const std::string& key) {
  try {
    CmsSigner signer(certificate, key, std::time(nullptr));
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "the signing key was accepted";
  return Error("00000", "accepted");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const std::string kReceipt =
    "{\"format\": \"pg_privacy.receipt/1\", \"job\": 42, \"tenant\": \"acme\"}\n";

}  // namespace

TEST(CmsSigner, SignsWhatStockOpensslVerifies) {
  for (KeyKind kind : {KeyKind::Rsa, KeyKind::Ec}) {
    auto identity = kind == KeyKind::Rsa ? rsa_signer() : make_recipient(kind, "EC receipts");
    CmsSigner signer(identity.certificate_pem, identity.key_pem, std::time(nullptr));
    EXPECT_EQ(signer.certificate().key_type, kind == KeyKind::Rsa ? "RSA" : "EC");
    ScratchDir dir;
    dir.write("receipt.pem", privacy::core::der_to_pem(signer.sign(kReceipt)));
    std::string cert = dir.write("signing.crt", identity.certificate_pem);
    ASSERT_EQ(privacy::test::run("openssl cms -verify -inform PEM -in " + dir.file("receipt.pem") +
                                 " -CAfile " + cert + " -out " + dir.file("receipt.json") +
                                 " 2>/dev/null"),
              0);
    EXPECT_EQ(dir.read("receipt.json"), kReceipt);  // binary: not one byte changed
    ASSERT_EQ(privacy::test::run("openssl cms -verify -inform PEM -in " + dir.file("receipt.pem") +
                                 " -certfile " + cert +
                                 " -nointern -noverify -out /dev/null 2>/dev/null"),
              0);
  }
}

TEST(CmsSigner, VerifiesWithTrustedCertificatesOnly) {
  CmsSigner signer(rsa_signer().certificate_pem, rsa_signer().key_pem, std::time(nullptr));
  std::string der = signer.sign(kReceipt);
  auto other = make_recipient(KeyKind::Ec, "someone else");
  EXPECT_EQ(verified_cms_content(der, {other.certificate_pem, rsa_signer().certificate_pem}),
            kReceipt);
  try {
    verified_cms_content(der, {other.certificate_pem});
    ADD_FAILURE() << "verified with the wrong certificate";
  } catch (const Error& untrusted) {
    EXPECT_EQ(untrusted.sqlstate(), "22023");
    EXPECT_TRUE(contains(untrusted.what(), "does not verify"));
  }
}

TEST(CmsSigner, AlteredContentDoesNotVerify) {
  CmsSigner signer(rsa_signer().certificate_pem, rsa_signer().key_pem, std::time(nullptr));
  std::string der = signer.sign(kReceipt);
  size_t at = der.find("acme");
  ASSERT_NE(at, std::string::npos);  // the content is carried as it is
  der[at] = 'A';
  EXPECT_THROW(verified_cms_content(der, {rsa_signer().certificate_pem}), Error);
  ScratchDir dir;
  dir.write("tampered.pem", privacy::core::der_to_pem(der));
  std::string cert = dir.write("signing.crt", rsa_signer().certificate_pem);
  EXPECT_NE(privacy::test::run("openssl cms -verify -inform PEM -in " + dir.file("tampered.pem") +
                               " -CAfile " + cert + " -out /dev/null 2>/dev/null"),
            0);
  EXPECT_THROW(verified_cms_content("not a CMS structure", {cert}), Error);
}

TEST(CmsSigner, RefusesKeysThatDoNotFit) {
  auto other = make_recipient(KeyKind::Rsa, "another key");
  Error mismatch = refusal(rsa_signer().certificate_pem, other.key_pem);
  EXPECT_EQ(mismatch.sqlstate(), "22023");
  EXPECT_STREQ(mismatch.what(), "receipt signing key does not belong to the certificate");

  Error not_a_key = refusal(rsa_signer().certificate_pem, rsa_signer().certificate_pem);
  EXPECT_STREQ(not_a_key.what(), "receipt signing key is not a PEM private key");
  EXPECT_FALSE(contains(not_a_key.detail(), "BEGIN CERTIFICATE"));

  ScratchDir dir;
  dir.write("plain.key", rsa_signer().key_pem);
  ASSERT_EQ(privacy::test::run("openssl pkey -in " + dir.file("plain.key") +
                               " -aes256 -passout pass:secret -out " + dir.file("encrypted.key") +
                               " 2>/dev/null"),
            0);
  EXPECT_STREQ(refusal(rsa_signer().certificate_pem, dir.read("encrypted.key")).what(),
               "receipt signing key is encrypted");

  // The certificate and the key passed the wrong way round, or together.
  EXPECT_STREQ(
      refusal(rsa_signer().key_pem + rsa_signer().certificate_pem, rsa_signer().key_pem).what(),
      "receipt signing certificate text contains a private key");
}

TEST(CmsSigner, RefusesWeakOrMisusedCertificates) {
  auto weak = privacy::test::rsa_key(1024);
  Error short_rsa = refusal(certificate_for(weak.get()), private_key_pem(weak.get()));
  EXPECT_STREQ(
      short_rsa.what(),
      "receipt signing certificate has a 1024-bit RSA key, but an RSA signing key needs at least 2048 bits");

  auto small_curve = privacy::test::ec_key("secp224r1");
  EXPECT_TRUE(contains(
      refusal(certificate_for(small_curve.get()), private_key_pem(small_curve.get())).what(),
      "an EC signing key needs a curve of at least 256 bits"));

  auto rsa = privacy::test::rsa_key(2048);
  Error encryption_only =
      refusal(certificate_for(rsa.get(), "keyEncipherment"), private_key_pem(rsa.get()));
  EXPECT_STREQ(
      encryption_only.what(),
      "receipt signing certificate's keyUsage does not allow digitalSignature, which signing a receipt needs");
  EXPECT_NO_THROW(CmsSigner(certificate_for(rsa.get(), "nonRepudiation"),
                            private_key_pem(rsa.get()), std::time(nullptr)));

  auto ed = make_recipient(KeyKind::Ed25519, "ed");
  EXPECT_TRUE(contains(refusal(ed.certificate_pem, ed.key_pem).what(),
                       "receipts are signed with RSA or EC keys only"));

  auto expired = make_recipient(KeyKind::Ec, "old", std::time(nullptr) - 3 * 86400,
                                std::time(nullptr) - 86400);
  EXPECT_TRUE(contains(refusal(expired.certificate_pem, expired.key_pem).what(),
                       "receipt signing certificate expired on"));
}

TEST(CmsSigner, Base64RoundTrips) {
  using privacy::core::base64_decode;
  using privacy::core::base64_encode;
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("M"), "TQ==");
  EXPECT_EQ(base64_encode("Ma"), "TWE=");
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  for (std::string bytes : {std::string(""), std::string("M"), std::string("Ma"),
                            std::string("Man"), std::string("\0\xff\x10 binary", 10)}) {
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
  }
  EXPECT_FALSE(base64_decode("TQ=").has_value());
  EXPECT_FALSE(base64_decode("T!==").has_value());
  EXPECT_EQ(base64_encode(std::string(100, 'x')).find('\n'), std::string::npos);
}
