#include "core/sealed_subject.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "cert_fixtures.hpp"
#include "core/cms_signer.hpp"
#include "core/error.hpp"

using privacy::core::CmsSigner;
using privacy::core::seal_subject;
using privacy::core::sealing_key_of;
using privacy::core::unseal_subject;
using privacy::test::ec_recipient;
using privacy::test::rsa_recipient;

namespace {

std::string sealing_key(const privacy::test::KeyAndCertificate& signer) {
  return sealing_key_of(signer.key_pem);
}

}  // namespace

// A subject sealed under a key opens with the same key and tenant, for RSA and EC keys alike.
TEST(SealedSubject, RoundTrip) {
  for (const auto* signer : {&rsa_recipient(), &ec_recipient()}) {
    std::string key = sealing_key(*signer);
    ASSERT_EQ(key.size(), 32u);
    std::string sealed = seal_subject(key, "acme", "user-17@example.com");
    EXPECT_EQ(sealed.find("user-17"), std::string::npos) << "the id must not show";
    EXPECT_EQ(unseal_subject(key, "acme", sealed),
              std::optional<std::string>("user-17@example.com"));
  }
}

// The key is derived from the private key itself: the signer that holds it derives the same one.
TEST(SealedSubject, SignerAndStoredKeyAgree) {
  const auto& signer = rsa_recipient();
  CmsSigner cms(signer.certificate_pem, signer.key_pem, std::time(nullptr));
  EXPECT_EQ(cms.sealing_key(), sealing_key(signer));
  EXPECT_NE(sealing_key(rsa_recipient()), sealing_key(ec_recipient()));
}

// Two seals of one id differ, so ledger entries about one subject cannot be linked.
TEST(SealedSubject, SealsAreUnlinkable) {
  std::string key = sealing_key(ec_recipient());
  EXPECT_NE(seal_subject(key, "acme", "17"), seal_subject(key, "acme", "17"));
}

// Another key, another tenant, or a changed byte: nothing opens.
TEST(SealedSubject, OnlyTheRightKeyAndTenantOpen) {
  std::string key = sealing_key(ec_recipient());
  std::string sealed = seal_subject(key, "acme", "17");
  EXPECT_EQ(unseal_subject(sealing_key(rsa_recipient()), "acme", sealed), std::nullopt);
  EXPECT_EQ(unseal_subject(key, "globex", sealed), std::nullopt);
  std::string altered = sealed;
  altered[20] = altered[20] == 'A' ? 'B' : 'A';
  EXPECT_EQ(unseal_subject(key, "acme", altered), std::nullopt);
  EXPECT_EQ(unseal_subject(key, "acme", "not base64!"), std::nullopt);
  EXPECT_EQ(unseal_subject(key, "acme", "AAAA"), std::nullopt);
  EXPECT_THROW(sealing_key_of("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"),
               privacy::core::Error);
}
