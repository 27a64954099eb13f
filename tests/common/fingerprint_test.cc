#include "common/fingerprint.h"

#include <gtest/gtest.h>

#include "common/secret.h"

namespace wxcanary {
namespace {

TEST(Fingerprint, is_first_8_hex_of_sha256) {
  // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
  EXPECT_EQ(Fingerprint("abc"), "ba7816bf");
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Fingerprint, empty_token_has_no_fingerprint) { EXPECT_EQ(Fingerprint(""), ""); }

TEST(Secret, fingerprint_matches_free_function_and_compares_by_value) {
  Secret a("token-1"), b("token-1"), c("token-2");
  EXPECT_EQ(a.Fingerprint(), Fingerprint("token-1"));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace wxcanary
