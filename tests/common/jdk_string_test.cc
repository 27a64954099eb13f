// The bytes below were printed by tests/source/testdata/JdkBytes.java (run with `java
// JdkBytes.java <string>...` on Debian 12's default-jdk-headless, OpenJDK 17): exactly what
// ObjectOutputStream.writeObject(String) writes, i.e. what Spring's default RedisTemplate stores.
#include "common/jdk_string.h"

#include <gtest/gtest.h>

#include <string>

namespace wxcanary {
namespace {

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

struct JdkCase {
  const char* name;
  std::string text;  // UTF-8
  const char* java_hex;
};

class JdkStringTable : public ::testing::TestWithParam<JdkCase> {};

TEST_P(JdkStringTable, serializes_to_the_bytes_java_writes_and_back) {
  const JdkCase& c = GetParam();
  EXPECT_EQ(JdkSerializeString(c.text), FromHex(c.java_hex));
  JdkDecodeError why{};
  EXPECT_EQ(JdkDeserializeString(FromHex(c.java_hex), &why), c.text);
}

INSTANTIATE_TEST_SUITE_P(
    JavaOutput, JdkStringTable,
    ::testing::Values(
        JdkCase{"token", "86_AbC-def.ghi", "aced000574000e38365f4162432d6465662e676869"},
        JdkCase{
            "wxjava_key", "wx:access_token:wx00000000000000a1",
            "aced000574002277783a6163636573735f746f6b656e3a777830303030303030303030303030306131"},
        // é, €, and U+1F600 as two 3-byte surrogates (Java's modified UTF-8)
        JdkCase{"non_ascii", "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80",
                "aced000574000bc3a9e282aceda0bdedb880"},
        JdkCase{"empty", "", "aced0005740000"}),
    [](const ::testing::TestParamInfo<JdkCase>& p) { return std::string(p.param.name); });

TEST(JdkString, a_string_past_65535_bytes_is_a_tc_longstring) {
  // Java printed the first 20 bytes of a 70000-char string: aced00057c0000000000011170 4c...
  const std::string text(70000, 'L');
  const std::string bytes = JdkSerializeString(text);
  EXPECT_EQ(bytes.size(), 70013u);
  EXPECT_EQ(bytes.substr(0, 20), FromHex("aced00057c00000000000111704c4c4c4c4c4c4c"));
  EXPECT_EQ(JdkDeserializeString(bytes, nullptr), text);
}

TEST(JdkString, refuses_other_objects_and_cut_or_padded_strings) {
  JdkDecodeError why{};
  EXPECT_EQ(JdkDeserializeString("86_AbC-def.ghi", &why), std::nullopt);
  EXPECT_EQ(why, JdkDecodeError::kNotJdk);
  // TC_OBJECT (0x73): e.g. a serialized HashMap or bean.
  EXPECT_EQ(
      JdkDeserializeString(FromHex("aced0005737200116a6176612e7574696c2e486173684d6170"), &why),
      std::nullopt);
  EXPECT_EQ(why, JdkDecodeError::kNotAString);
  const std::string token = FromHex("aced000574000e38365f4162432d6465662e676869");
  EXPECT_EQ(JdkDeserializeString(token.substr(0, token.size() - 1), &why), std::nullopt);
  EXPECT_EQ(why, JdkDecodeError::kMalformed);
  EXPECT_EQ(JdkDeserializeString(token + "x", &why), std::nullopt);
  EXPECT_EQ(why, JdkDecodeError::kMalformed);
  EXPECT_EQ(JdkDeserializeString(FromHex("aced000574"), &why), std::nullopt);
  EXPECT_EQ(why, JdkDecodeError::kMalformed);
}

}  // namespace
}  // namespace wxcanary
