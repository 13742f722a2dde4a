#include "latency/peers.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace cloudkeep::latency {
namespace {

TEST(PeersTest, Csv) {
  auto r = ParsePeers(
      "# fleet\nname,address,zone\nweb-1,10.0.1.5:7470,use1-az1\n\n\"db, "
      "primary\",[fd00::5]:7000,use1-az2\n"
      "cache,10.0.3.9,use1-az1\n",
      "peers.csv");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->peers.size(), 3u);
  EXPECT_EQ(r->peers[0].hostport.host, "10.0.1.5");
  EXPECT_EQ(r->peers[1].name, "db, primary");
  EXPECT_EQ(r->peers[1].hostport.host, "fd00::5");
  EXPECT_EQ(r->peers[1].hostport.port, 7000);
  EXPECT_EQ(r->peers[2].hostport.port, kDefaultPort);
  EXPECT_EQ(r->peers[1].line, 5);
}

TEST(PeersTest, CsvColumnsInAnyOrder) {
  auto r = ParsePeers("zone,name,address\naz1,a,127.0.0.1:1\n", "p.csv");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->peers[0].zone, "az1");
  EXPECT_EQ(r->peers[0].address, "127.0.0.1:1");
}

TEST(PeersTest, Toml) {
  auto r = ParsePeers(
      "token = \"s3cret\"\n\n[[peer]]\nname = \"web-1\"\naddress = \"10.0.1.5:7470\"\nzone = "
      "\"use1-az1\"\n\n"
      "[[peer]]\nname = \"db-1\"\naddress = \"[fd00::5]:7470\"\nzone = \"use1-az2\"\n",
      "peers.toml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->token, "s3cret");
  ASSERT_EQ(r->peers.size(), 2u);
  EXPECT_EQ(r->peers[1].zone, "use1-az2");
}

TEST(PeersTest, SniffsFormatWithoutExtension) {
  EXPECT_TRUE(ParsePeers("name,address,zone\na,1.2.3.4,z\n", "peers").ok());
  EXPECT_TRUE(ParsePeers("[[peer]]\nname='a'\naddress='1.2.3.4'\nzone='z'\n", "peers").ok());
}

void ExpectError(const std::string& text, const std::string& source, const std::string& want) {
  auto r = ParsePeers(text, source);
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
  EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status().message();
}

TEST(PeersTest, ErrorsNameTheLine) {
  ExpectError("name,address,zone\na,1.2.3.4,z\nb,1.2.3.5\n", "p.csv", "p.csv:3: expected 3 fields");
  ExpectError("name,address,zone\na,1.2.3.4:99999,z\n", "p.csv",
              "p.csv:2: address '1.2.3.4:99999' has a bad port");
  ExpectError("name,address,zone\n\na,1.2.3.4,\n", "p.csv", "p.csv:3: peer 'a' has an empty zone");
  ExpectError("name,host,zone\n", "p.csv", "p.csv:1: unknown column 'host'");
  ExpectError("name,address,zone\na,1.2.3.4,z\na,1.2.3.5,z\n", "p.csv",
              "p.csv:3: duplicate peer name 'a'");
  ExpectError("name,address,zone\na,\"1.2.3.4,z\n", "p.csv", "p.csv:2: unterminated quoted field");
  ExpectError("[[peer]]\nname = \"a\"\naddress = 5\nzone = \"z\"\n", "p.toml",
              "p.toml:3: peer key 'address' must be a string");
  ExpectError("[[peer]]\nname = \"a\"\nadress = \"1.2.3.4\"\n", "p.toml",
              "p.toml:3: unknown peer key 'adress'");
  ExpectError("[[peer]]\nname = \"a\n", "p.toml", "p.toml:2:");
  ExpectError("# nothing\n", "p.csv", "no header");
  ExpectError("name,address,zone\n", "p.csv", "no peers");
  ExpectError("name,address,zone\na,[::1,z\n", "p.csv",
              "p.csv:2: address '[::1' has an unclosed '['");
  // Names and zones follow the wire format's rule (printable UTF-8, 126 bytes).
  ExpectError("name,address,zone\na\x1b[2J,1.2.3.4,z\n", "p.csv",
              "p.csv:2: peer name 'a\\x1b[2J' holds a control character");
  ExpectError("name,address,zone\na,1.2.3.4,z\xc2\x9b\n", "p.csv", "p.csv:2: peer zone 'z\\u009b'");
  ExpectError("name,address,zone\na,1.2.3.4,z\xff\n", "p.csv", "p.csv:2: peer zone 'z\\xff'");
  ExpectError("name,address,zone\n" + std::string(120, 'n') + ",1.2.3.4,zzzzzzz\n", "p.csv",
              "127 bytes together");
}

TEST(PeersTest, HostPort) {
  auto a = ParseHostPort("[::1]:17001", "target");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 17001);
  auto b = ParseHostPort("fd00::1", "target");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "fd00::1");
  EXPECT_EQ(b->port, kDefaultPort);
  EXPECT_FALSE(ParseHostPort("host:", "target").ok());
  EXPECT_FALSE(ParseHostPort(":80", "target").ok());
  EXPECT_FALSE(ParseHostPort("host:0", "target").ok());
}

TEST(PeersTest, TokenPrecedence) {
  auto t = LoadToken("", " fromenv\n", "frompeers");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "fromenv");
  EXPECT_EQ(*LoadToken("", "", "frompeers"), "frompeers");
  EXPECT_FALSE(LoadToken("/nonexistent/token", "fromenv", "").ok());
}

}  // namespace
}  // namespace cloudkeep::latency
