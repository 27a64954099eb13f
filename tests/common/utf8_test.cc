#include "common/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace wxcanary {
namespace {

TEST(Utf8, accepts_well_formed_text_and_refuses_what_rfc_3629_excludes) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xE5\xBE\xAE\xE4\xBF\xA1"));  // 微信
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x90\xA4"));          // U+1F424
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));                 // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));             // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));         // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE5\xBE"));                 // cut short
  EXPECT_FALSE(IsValidUtf8("\x80"));                     // a lone continuation byte
}

// IsValidUtf8 skips ASCII eight bytes at a time: a bad or multi-byte sequence must be judged the
// same at every offset, inside a word, across two, or in the tail after the last whole word.
TEST(Utf8, judges_a_sequence_the_same_at_every_offset_in_ascii) {
  for (size_t len = 0; len <= 40; ++len) {
    for (size_t at = 0; at <= len; ++at) {
      std::string s(len, 'a');
      EXPECT_FALSE(IsValidUtf8(std::string(s).insert(at, "\x80"))) << len << " " << at;
      EXPECT_FALSE(IsValidUtf8(std::string(s).insert(at, "\xC0\xAF"))) << len << " " << at;
      EXPECT_TRUE(IsValidUtf8(std::string(s).insert(at, "\xE5\xBE\xAE"))) << len << " " << at;
      EXPECT_TRUE(IsValidUtf8(std::string(s).insert(at, "\xF0\x9F\x90\xA4"))) << len << " " << at;
      EXPECT_EQ(IsValidUtf8(std::string(s).insert(at, "\xE5\xBE")), false) << len << " " << at;
    }
  }
}

TEST(Utf8, repair_replaces_each_bad_byte_and_keeps_the_rest) {
  EXPECT_EQ(RepairUtf8("ok \xE5\xBE\xAE"), "ok \xE5\xBE\xAE");
  EXPECT_EQ(RepairUtf8("a\xFF"
                       "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(RepairUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(
      IsValidUtf8(RepairUtf8("\xE5\xBE"
                             "x\x80\xF4\x90\x80\x80")));
}

}  // namespace
}  // namespace wxcanary
