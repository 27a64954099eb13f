#include "common/redact.h"

#include <gtest/gtest.h>

#include "common/fingerprint.h"
#include "common/rfc3339.h"

namespace wxcanary {
namespace {

TEST(Redact, replaces_raw_and_percent_encoded_secret_by_its_fingerprint) {
  const Secret token("a+b/c=d");
  const std::string fp = "<" + Fingerprint("a+b/c=d") + ">";
  EXPECT_EQ(Redact("x a+b/c=d y a%2Bb%2Fc%3Dd z a+b/c=d", token),
            "x " + fp + " y " + fp + " z " + fp);
  EXPECT_EQ(Redact("only encoded: a%2Bb%2Fc%3Dd", token), "only encoded: " + fp);
  EXPECT_EQ(Redact("nothing here", token), "nothing here");
  // A token of unreserved characters only has one form.
  const Secret plain("84_Tok-en.with~only_unreserved");
  EXPECT_EQ(Redact("[84_Tok-en.with~only_unreserved]", plain),
            "[<" + Fingerprint("84_Tok-en.with~only_unreserved") + ">]");
  EXPECT_EQ(Redact("anything", Secret()), "anything");  // an empty secret matches nothing
}

TEST(Redact, a_fixed_mark_for_passwords_hides_even_the_fingerprint) {
  const Secret password("hunter2");
  const std::string out = Redact("AUTH hunter2 failed; hunter2", password, "<redacted>");
  EXPECT_EQ(out, "AUTH <redacted> failed; <redacted>");
  EXPECT_EQ(out.find(Fingerprint("hunter2")), std::string::npos);
}

TEST(Redact, a_replacement_that_contains_the_secret_is_not_rescanned) {
  // ReplaceAll moves past what it wrote: "aa" -> "<aa>" must terminate and not nest.
  std::string s = "aaaa";
  ReplaceAll(&s, "aa", "<aa>");
  EXPECT_EQ(s, "<aa><aa>");
}

TEST(PercentEncode, leaves_unreserved_and_encodes_the_rest_upper_hex) {
  EXPECT_EQ(PercentEncode("Az09-_.~"), "Az09-_.~");
  EXPECT_EQ(PercentEncode("a b+/=\xff"), "a%20b%2B%2F%3D%FF");
  EXPECT_FALSE(NeedsPercentEncoding("Az09-_.~"));
  EXPECT_TRUE(NeedsPercentEncoding("a=b"));
}

TEST(FormatRfc3339, utc_with_milliseconds_and_floor_before_1970) {
  using std::chrono::milliseconds;
  EXPECT_EQ(FormatRfc3339(SystemTime{milliseconds{1'700'000'000'123}}), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatRfc3339(SystemTime{milliseconds{0}}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(SystemTime{milliseconds{-1}}), "1969-12-31T23:59:59.999Z");
}

}  // namespace
}  // namespace wxcanary
