#include "common/fingerprint.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/secret.h"

namespace wxcanary {
namespace {

TEST(Fingerprint, is_first_8_hex_of_sha256) {
  // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
  EXPECT_EQ(Fingerprint("abc"), "ba7816bf");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Fingerprint, empty_token_has_no_fingerprint) { EXPECT_EQ(Fingerprint(""), ""); }

// A target's memo skips the hash only for the token it saw last: every answer must be
// Fingerprint() of the token given, whatever came before.
TEST(FingerprintMemo, gives_each_tokens_own_fingerprint_in_any_order) {
  FingerprintMemo memo;
  const std::vector<std::string> tokens = {"abc", "abc", "abd", "", "abc", "", "", "abd", "abd"};
  for (size_t i = 0; i < tokens.size(); ++i)
    EXPECT_EQ(memo.Of(tokens[i]), Fingerprint(tokens[i])) << i << ": " << tokens[i];
  EXPECT_EQ(memo.Of("abc"), "ba7816bf");
}

TEST(Fingerprint, reused_context_gives_each_input_its_own_digest_on_every_thread) {
  // Known answers: sha256("") and sha256 of 1,000,000 x 'a' (FIPS 180-2), and "abc" again
  // after them, so a context carrying state from the previous hash would show.
  const std::string million(1'000'000, 'a');
  auto check = [&] {
    EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(Sha256Hex(million),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    EXPECT_EQ(Fingerprint("abc"), "ba7816bf");
  };
  check();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) check();
    });
  for (auto& th : threads) th.join();
}

TEST(Secret, fingerprint_matches_free_function_and_compares_by_value) {
  Secret a("token-1"), b("token-1"), c("token-2");
  EXPECT_EQ(a.Fingerprint(), Fingerprint("token-1"));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace wxcanary
