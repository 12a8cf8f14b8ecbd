#include "core/certificate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <string>

#include "cert_fixtures.hpp"
#include "core/error.hpp"

using privacy::core::CertificateInfo;
using privacy::core::Error;
using privacy::core::inspect_recipient_certificate;
using privacy::test::KeyKind;
using privacy::test::make_recipient;

namespace {

// 2025-06-01T00:00:00Z, a fixed "now" for certificates with fixed validity windows.
constexpr std::time_t kJune2025 = 1748736000;
// 2020-01-01T00:00:00Z and 2030-01-02T03:04:05Z.
constexpr std::time_t kJan2020 = 1577836800;
constexpr std::time_t kJan2030 = 1893553445;

// Runs inspect_recipient_certificate and returns the Error it throws (fails if it does not).
Error refusal_of(const std::string& pem, std::time_t now = std::time(nullptr)) {
  try {
    inspect_recipient_certificate(pem, now);
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "the certificate was accepted";
  return Error("00000", "accepted");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(Certificate, AcceptsRsaAndReportsItsDetails) {
  auto rsa = make_recipient(KeyKind::Rsa, "Data Protection Officer", kJan2020, kJan2030);
  CertificateInfo info = inspect_recipient_certificate(rsa.certificate_pem, kJune2025);
  EXPECT_EQ(info.subject, "CN=Data Protection Officer");
  EXPECT_EQ(info.not_after, "2030-01-02T03:04:05Z");
  EXPECT_EQ(info.key_type, "RSA");
  ASSERT_EQ(info.sha256_fingerprint.size(), 64u);
  EXPECT_TRUE(std::all_of(info.sha256_fingerprint.begin(), info.sha256_fingerprint.end(),
                          [](char c) { return std::isdigit(c) || (c >= 'a' && c <= 'f'); }));
}

TEST(Certificate, AcceptsEc) {
  auto ec = make_recipient(KeyKind::Ec, "EC officer", kJan2020, kJan2030);
  CertificateInfo info = inspect_recipient_certificate(ec.certificate_pem, kJune2025);
  EXPECT_EQ(info.key_type, "EC");
  EXPECT_EQ(info.subject, "CN=EC officer");
}

TEST(Certificate, FingerprintMatchesTheOpensslCommandLine) {
  const auto& rsa = privacy::test::rsa_recipient();
  privacy::test::ScratchDir dir;
  std::string cert = dir.write("c.pem", rsa.certificate_pem);
  ASSERT_EQ(privacy::test::run("openssl x509 -in " + cert + " -noout -fingerprint -sha256 > " +
                               dir.file("fp.txt")),
            0);
  // "sha256 Fingerprint=AB:CD:...\n" -> "abcd..."
  std::string line = dir.read("fp.txt");
  std::string expected;
  for (char c : line.substr(line.find('=') + 1)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      expected += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  EXPECT_EQ(
      inspect_recipient_certificate(rsa.certificate_pem, std::time(nullptr)).sha256_fingerprint,
      expected);
}

TEST(Certificate, KeepsUtf8SubjectsReadable) {
  auto ec = make_recipient(KeyKind::Ec, "Délégué à la protection", kJan2020, kJan2030);
  EXPECT_EQ(inspect_recipient_certificate(ec.certificate_pem, kJune2025).subject,
            "CN=Délégué à la protection");
}

TEST(Certificate, RefusesGarbageWithAHowTo) {
  Error error = refusal_of("this is not a certificate");
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_STREQ(error.what(), "export recipient certificate is not a PEM X.509 certificate");
  EXPECT_TRUE(contains(error.hint(), "openssl req -x509")) << error.hint();
}

TEST(Certificate, RefusesCorruptedPem) {
  // The BEGIN line and two lines of base64, then END: a PEM block whose DER is cut short.
  const std::string& whole = privacy::test::ec_recipient().certificate_pem;
  size_t cut = 0;
  for (int line = 0; line < 3; ++line) cut = whole.find('\n', cut) + 1;
  std::string pem = whole.substr(0, cut) + "-----END CERTIFICATE-----\n";
  Error error = refusal_of(pem);
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_STREQ(error.what(), "export recipient certificate is not a PEM X.509 certificate");
}

TEST(Certificate, RefusesEmptyText) { EXPECT_EQ(refusal_of("").sqlstate(), "22023"); }

TEST(Certificate, RefusesAnExpiredCertificateSayingWhen) {
  // Valid for a day, two years ago: made with the real clock, checked against the real clock.
  std::time_t now = std::time(nullptr);
  auto old = make_recipient(KeyKind::Rsa, "Former officer", now - 730 * 86400, now - 729 * 86400);
  Error error = refusal_of(old.certificate_pem, now);
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_TRUE(contains(error.what(), "export recipient certificate expired on ")) << error.what();
  EXPECT_TRUE(contains(error.detail(), "CN=Former officer")) << error.detail();
  EXPECT_FALSE(error.hint().empty());
}

TEST(Certificate, ExpiryMessageCarriesTheIsoDate) {
  auto ec = make_recipient(KeyKind::Ec, "EC officer", kJan2020, kJan2030);
  Error error = refusal_of(ec.certificate_pem, kJan2030 + 1);
  EXPECT_STREQ(error.what(), "export recipient certificate expired on 2030-01-02T03:04:05Z");
}

TEST(Certificate, RefusesACertificateNotYetValid) {
  auto ec = make_recipient(KeyKind::Ec, "Future officer", kJan2030, kJan2030 + 86400);
  Error error = refusal_of(ec.certificate_pem, kJune2025);
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_STREQ(error.what(),
               "export recipient certificate is not valid until 2030-01-02T03:04:05Z");
}

TEST(Certificate, RefusesEd25519NamingTheKeyType) {
  auto ed = make_recipient(KeyKind::Ed25519, "Signing only");
  Error error = refusal_of(ed.certificate_pem);
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_TRUE(contains(error.what(), "ED25519")) << error.what();
  EXPECT_TRUE(contains(error.what(), "only RSA and EC")) << error.what();
}

TEST(Certificate, RefusesEd25519MadeByTheCommandLine) {
  privacy::test::ScratchDir dir;
  ASSERT_EQ(privacy::test::run("openssl genpkey -algorithm ed25519 -out " + dir.file("k.pem") +
                               " 2>/dev/null && openssl req -x509 -key " + dir.file("k.pem") +
                               " -subj /CN=ed -days 10 -out " + dir.file("c.pem") + " 2>/dev/null"),
            0);
  EXPECT_TRUE(contains(refusal_of(dir.read("c.pem")).what(), "ED25519"));
}

TEST(Certificate, RefusesAChain) {
  std::string chain = privacy::test::rsa_recipient().certificate_pem +
                      privacy::test::ec_recipient().certificate_pem;
  Error error = refusal_of(chain);
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_TRUE(contains(error.what(), "more than one certificate")) << error.what();
}

TEST(Certificate, RefusesTextThatCarriesAPrivateKey) {
  const auto& ec = privacy::test::ec_recipient();
  Error error = refusal_of(ec.certificate_pem + ec.key_pem);
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_TRUE(contains(error.what(), "private key")) << error.what();
}

TEST(Certificate, ToleratesTextAroundThePemBlock) {
  // What `openssl x509 -text` prints: a dump, then the PEM block.
  std::string pem = "Certificate:\n    Data: ...\n" + privacy::test::ec_recipient().certificate_pem;
  EXPECT_EQ(inspect_recipient_certificate(pem, std::time(nullptr)).key_type, "EC");
}

// ---- Key strength and key usage (issue 13): exports must stay confidential for years.

using privacy::test::certificate_for;
using privacy::test::ec_key;
using privacy::test::rsa_key;

TEST(Certificate, RefusesA1024BitRsaKeySayingHowToMakeAGoodOne) {
  Error error = refusal_of(certificate_for(rsa_key(1024).get()));
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_STREQ(error.what(),
               "export recipient certificate has a 1024-bit RSA key, but an RSA recipient key "
               "needs at least 2048 bits");
  EXPECT_TRUE(contains(error.hint(), "openssl req -x509 -newkey rsa:3072")) << error.hint();
}

TEST(Certificate, RefusesAnRsaKeyOneStepBelow2048Bits) {
  EXPECT_TRUE(
      contains(refusal_of(certificate_for(rsa_key(2040).get())).what(), "2040-bit RSA key"));
}

TEST(Certificate, AcceptsRsa3072) {
  EXPECT_EQ(inspect_recipient_certificate(certificate_for(rsa_key(3072).get()), std::time(nullptr))
                .key_type,
            "RSA");
}

TEST(Certificate, RefusesEcCurvesBelow256BitsNamingTheCurve) {
  for (const char* curve : {"secp224r1", "prime192v1", "secp160r1"}) {
    Error error = refusal_of(certificate_for(ec_key(curve).get()));
    EXPECT_EQ(error.sqlstate(), "22023") << curve;
    EXPECT_TRUE(contains(error.what(), std::string("EC key on curve ") + curve)) << error.what();
    EXPECT_TRUE(contains(error.what(), "needs a curve of at least 256 bits")) << error.what();
    EXPECT_TRUE(contains(error.detail(), "P-256 (prime256v1)")) << error.detail();
  }
}

TEST(Certificate, AcceptsNamedCurvesOfAtLeast256Bits) {
  for (const char* curve :
       {"prime256v1", "secp384r1", "secp521r1", "brainpoolP256r1", "brainpoolP512r1"}) {
    EXPECT_EQ(
        inspect_recipient_certificate(certificate_for(ec_key(curve).get()), std::time(nullptr))
            .key_type,
        "EC")
        << curve;
  }
}

TEST(Certificate, RefusesExplicitCurveParameters) {
  auto key = privacy::test::ec_key_with_explicit_parameters("prime256v1");
  Error error = refusal_of(certificate_for(key.get()));
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_TRUE(contains(error.what(), "explicit curve parameters")) << error.what();
}

TEST(Certificate, RefusesAnRsaCertificateWhoseKeyUsageIsSigningOnly) {
  Error error = refusal_of(certificate_for(rsa_key(2048).get(), "digitalSignature,keyCertSign"));
  EXPECT_EQ(error.sqlstate(), "22023");
  EXPECT_STREQ(error.what(),
               "export recipient certificate's keyUsage does not allow keyEncipherment, which an "
               "RSA key needs to receive an export");
  EXPECT_EQ(error.detail(), "its keyUsage allows: digitalSignature, keyCertSign");
  EXPECT_TRUE(contains(error.hint(), "-addext keyUsage=keyEncipherment")) << error.hint();
}

TEST(Certificate, RefusesAnEcCertificateWithoutKeyAgreement) {
  // keyEncipherment is RSA's key transport; an EC key receives by key agreement only.
  Error error =
      refusal_of(certificate_for(ec_key("prime256v1").get(), "digitalSignature,keyEncipherment"));
  EXPECT_TRUE(contains(error.what(), "does not allow keyAgreement, which an EC key needs"))
      << error.what();
}

TEST(Certificate, AcceptsAKeyUsageThatAllowsTheKeysUse) {
  const std::time_t now = std::time(nullptr);
  EXPECT_EQ(
      inspect_recipient_certificate(certificate_for(rsa_key(2048).get(), "keyEncipherment"), now)
          .key_type,
      "RSA");
  EXPECT_EQ(inspect_recipient_certificate(
                certificate_for(ec_key("prime256v1").get(), "digitalSignature,keyAgreement"), now)
                .key_type,
            "EC");
}

TEST(Certificate, AcceptsWhatTheDocumentedCommandsMake) {
  privacy::test::ScratchDir dir;
  const std::string common = " -nodes -days 365 -subj /CN=dpo -keyout " + dir.file("k.pem") +
                             " -out " + dir.file("c.pem") + " 2>/dev/null";
  ASSERT_EQ(privacy::test::run(
                "openssl req -x509 -newkey rsa:3072 -addext keyUsage=keyEncipherment" + common),
            0);
  EXPECT_EQ(inspect_recipient_certificate(dir.read("c.pem"), std::time(nullptr)).key_type, "RSA");
  ASSERT_EQ(privacy::test::run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                               "-addext keyUsage=keyAgreement" +
                               common),
            0);
  EXPECT_EQ(inspect_recipient_certificate(dir.read("c.pem"), std::time(nullptr)).key_type, "EC");
}

TEST(Certificate, AWeakKeyIsRefusedWhenAnExportIsEncryptedToo) {
  // The CMS writer parses its recipients with the same check (a certificate stored before
  // the check existed).
  EXPECT_THROW(privacy::core::parse_recipient_certificate(certificate_for(rsa_key(1024).get())),
               Error);
}
