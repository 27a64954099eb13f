// The web config (exporter-toolkit format) and basic auth, in-process: every invalid case with
// its exact one-line message, and bcrypt verification with its cache.
#include "daemon/web_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/process.h"
#include "tls_files.h"

namespace wxcanary::daemon {
namespace {

using testing::BcryptHash;
using testing::TempDir;

std::string Base64(const std::string& in) {
  static constexpr char kChars[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kChars[(buffer >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kChars[(buffer << (6 - bits)) & 0x3f];
  while (out.size() % 4 != 0) out += '=';
  return out;
}

class WebConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path() / "c.pem") << "not checked here\n";
    std::ofstream(dir_.path() / "k.pem") << "not checked here\n";
  }
  WebConfig Parse(const std::string& yaml) { return ParseWebConfig(yaml, dir_.path()); }
  TempDir dir_;
};

TEST_F(WebConfigFiles, reads_tls_paths_relative_to_the_file_and_users) {
  std::string hash = BcryptHash("pw");
  WebConfig c = Parse(
      "tls_server_config:\n  cert_file: c.pem\n  key_file: " + (dir_.path() / "k.pem").string() +
      "\n  min_version: TLS13\n" + "basic_auth_users:\n  alice: " + hash + "\n");
  EXPECT_TRUE(c.tls());
  EXPECT_TRUE(c.auth());
  EXPECT_EQ(c.cert_file, (dir_.path() / "c.pem").string());
  EXPECT_EQ(c.key_file, (dir_.path() / "k.pem").string());
  EXPECT_EQ(c.min_version, "TLS13");
  EXPECT_EQ(c.basic_auth_users, (std::map<std::string, std::string>{{"alice", hash}}));
}

TEST_F(WebConfigFiles, empty_file_and_empty_sections_mean_plain_http_without_auth) {
  for (const char* yaml : {"", "tls_server_config:\nbasic_auth_users:\n"}) {
    WebConfig c = Parse(yaml);
    EXPECT_FALSE(c.tls()) << yaml;
    EXPECT_FALSE(c.auth()) << yaml;
  }
}

TEST_F(WebConfigFiles, rejects_each_invalid_case_with_one_line_naming_the_key) {
  const std::string hash = BcryptHash("pw");
  const std::string tls = "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n";
  struct Case {
    std::string yaml;
    std::string message;
  };
  const Case cases[] = {
      {"tls_config: {}\n", "(root): unknown key \"tls_config\""},
      {"tls_server_config:\n  cert_fle: c.pem\n", "tls_server_config: unknown key \"cert_fle\""},
      {"tls_server_config:\n  cert_file: c.pem\n",
       "tls_server_config.key_file: is required for TLS"},
      {"tls_server_config:\n  key_file: k.pem\n",
       "tls_server_config.cert_file: is required for TLS"},
      {"tls_server_config:\n  cert_file: nope.pem\n  key_file: k.pem\n",
       "tls_server_config.cert_file: cannot read file \"" + (dir_.path() / "nope.pem").string() +
           "\""},
      {"tls_server_config:\n  cert_file: c.pem\n  key_file: \"\"\n",
       "tls_server_config.key_file: must not be empty"},
      {tls + "  client_auth_type: RequireAndVerifyClientCert\n",
       "tls_server_config: key \"client_auth_type\" is not supported by wxcanary (see "
       "docs/security.md)"},
      {tls + "  max_version: TLS12\n",
       "tls_server_config: key \"max_version\" is not supported by wxcanary (see "
       "docs/security.md)"},
      {tls + "  min_version: TLS10\n",
       "tls_server_config.min_version: \"TLS10\" is not supported (expected TLS12 or TLS13)"},
      {"http_server_config:\n  http2: false\n",
       "(root): key \"http_server_config\" is not supported by wxcanary (see docs/security.md)"},
      {"basic_auth_users:\n  alice: hunter2\n",
       "basic_auth_users.alice: is not a bcrypt hash (expected $2a$, $2b$ or $2y$, 60 chars)"},
      {"basic_auth_users:\n  alice: \"$1$abc$def\"\n",
       "basic_auth_users.alice: is not a bcrypt hash (expected $2a$, $2b$ or $2y$, 60 chars)"},
      {"basic_auth_users:\n  \"a:b\": " + hash + "\n",
       "basic_auth_users: user name \"a:b\" contains ':', which basic auth cannot carry"},
      {"basic_auth_users:\n  alice: " + hash + "\n  alice: " + hash + "\n",
       "basic_auth_users: duplicate key \"alice\""},
      {"basic_auth_users: [alice]\n", "basic_auth_users: expected a map, got a sequence"},
      {"tls_server_config: [\n", "yaml: line 2, column 1: end of sequence flow not found"},
  };
  for (const auto& c : cases) {
    try {
      Parse(c.yaml);
      ADD_FAILURE() << "accepted:\n" << c.yaml;
    } catch (const WebConfigError& e) {
      EXPECT_EQ(e.what(), c.message) << c.yaml;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      // A hash is crackable offline: it never goes into a message.
      EXPECT_EQ(std::string(e.what()).find(hash), std::string::npos);
    }
  }
}

TEST(WebConfigLoad, missing_file_is_one_line_naming_it) {
  try {
    LoadWebConfig("/nonexistent/web.yml");
    ADD_FAILURE() << "accepted a missing file";
  } catch (const WebConfigError& e) {
    EXPECT_STREQ(e.what(), "cannot read file \"/nonexistent/web.yml\"");
  }
}

TEST(Base64, decodes_padded_and_unpadded_and_rejects_garbage) {
  EXPECT_EQ(DecodeBase64("YWxpY2U6cHc="), "alice:pw");
  EXPECT_EQ(DecodeBase64("YWxpY2U6cHc"), "alice:pw");
  EXPECT_EQ(DecodeBase64(""), "");
  EXPECT_EQ(DecodeBase64(Base64(std::string("\0\xff:x", 4))), std::string("\0\xff:x", 4));
  EXPECT_EQ(DecodeBase64("YWxp*2U6"), std::nullopt);
  EXPECT_EQ(DecodeBase64("Y"), std::nullopt);
}

TEST(BasicAuth, accepts_only_the_right_password_for_a_known_user) {
  BasicAuth auth({{"alice", BcryptHash("correct horse")}, {"bob", BcryptHash("battery")}});
  struct Case {
    std::string user, password;
    bool ok;
  };
  const Case cases[] = {
      {"alice", "correct horse", true},
      {"bob", "battery", true},
      {"alice", "battery", false},
      {"alice", "correct horse ", false},
      {"alice", "", false},
      {"carol", "correct horse", false},
      {"", "", false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(auth.Verify(c.user, c.password), c.ok) << c.user << ":" << c.password;
}

TEST(BasicAuth, accepts_2a_and_2y_hashes_as_htpasswd_and_python_bcrypt_write_them) {
  std::string b = BcryptHash("pw");
  for (const char* prefix : {"$2a$", "$2y$"}) {
    std::string h = prefix + b.substr(4);
    BasicAuth auth({{"u", h}});
    EXPECT_TRUE(auth.Verify("u", "pw")) << prefix;
    EXPECT_FALSE(auth.Verify("u", "px")) << prefix;
  }
}

TEST(BasicAuth, parses_the_authorization_header) {
  BasicAuth auth({{"alice", BcryptHash("p:w")}});
  struct Case {
    std::string header;
    bool ok;
  };
  const Case cases[] = {
      {"Basic " + Base64("alice:p:w"), true},  // the password may contain ':'
      {"basic " + Base64("alice:p:w"), true},  // scheme is case-insensitive
      {"Basic " + Base64("alice:p:x"), false},
      {"Basic " + Base64("alicep:w"), false},
      {"Basic " + Base64("alice"), false},
      {"Bearer " + Base64("alice:p:w"), false},
      {"Basic", false},
      {"", false},
      {"Basic !!!!", false},
  };
  for (const auto& c : cases) EXPECT_EQ(auth.CheckHeader(c.header), c.ok) << c.header;
}

// Issue 21.4: crypt_r reads a C string and bcrypt the first 72 bytes, so "right\0anything" and
// "<right 72 bytes>anything" verified as the right password. The header path is what a client
// controls: NUL bytes come in through base64.
TEST(BasicAuth, rejects_what_bcrypt_would_silently_truncate) {
  const std::string long72(72, 'L');
  BasicAuth auth({{"prom", BcryptHash("right")}, {"long", BcryptHash(long72)}});
  EXPECT_TRUE(auth.CheckHeader("Basic " + Base64("prom:right")));
  EXPECT_FALSE(auth.CheckHeader("Basic " + Base64(std::string("prom:right\0anything", 20))));
  EXPECT_FALSE(auth.CheckHeader("Basic " + Base64(std::string("prom:right\0", 11))));
  EXPECT_FALSE(auth.CheckHeader("Basic " + Base64(std::string("prom\0x:right", 13))));
  EXPECT_TRUE(auth.CheckHeader("Basic " + Base64("long:" + long72)));
  EXPECT_FALSE(auth.CheckHeader("Basic " + Base64("long:" + long72 + "anything")));
}

TEST(BasicAuth, caches_successes_but_not_failures) {
  BasicAuth auth({{"alice", BcryptHash("pw")}});
  EXPECT_TRUE(auth.Verify("alice", "pw"));
  EXPECT_EQ(auth.bcrypt_runs(), 1u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(auth.Verify("alice", "pw"));
  EXPECT_EQ(auth.bcrypt_runs(), 1u);  // served from the cache
  EXPECT_FALSE(auth.Verify("alice", "wrong"));
  EXPECT_FALSE(auth.Verify("alice", "wrong"));
  EXPECT_EQ(auth.bcrypt_runs(), 3u);  // a failure is re-checked every time
  EXPECT_FALSE(auth.Verify("mallory", "pw"));
  EXPECT_EQ(auth.bcrypt_runs(), 4u);  // unknown users cost a bcrypt run too
}

TEST(BasicAuth, a_cached_password_does_not_open_another_user) {
  std::string hash = BcryptHash("pw");
  BasicAuth auth({{"alice", hash}, {"bob", BcryptHash("other")}});
  EXPECT_TRUE(auth.Verify("alice", "pw"));
  EXPECT_FALSE(auth.Verify("bob", "pw"));
  EXPECT_FALSE(auth.Verify("alicepw", ""));
}

}  // namespace
}  // namespace wxcanary::daemon
