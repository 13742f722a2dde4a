// Batch SPF: lines in, one result per query line out, in input order,
// whatever order the concurrent evaluations finish in; a bad line is an
// error result for that line and the batch goes on.
#include "mail/spf_batch.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sstream>

namespace cloudkeep::mail {
namespace {

TEST(SpfBatch, ParsesTheLineFormat) {
  auto q = ParseSpfBatchLine("192.0.2.1 user@example.test mx.example.test");
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->ip, "192.0.2.1");
  EXPECT_EQ(q->sender, "user@example.test");
  EXPECT_EQ(q->helo, "mx.example.test");
  q = ParseSpfBatchLine("  2001:db8::1\t\texample.test  \r");
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->ip, "2001:db8::1");
  EXPECT_EQ(q->sender, "example.test");
  EXPECT_EQ(q->helo, "");
  q = ParseSpfBatchLine("192.0.2.1 <> mx.example.test");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->sender, "");  // the HELO identity
  EXPECT_EQ(q->helo, "mx.example.test");
}

TEST(SpfBatch, BadLinesNameTheBadValue) {
  auto q = ParseSpfBatchLine("192.0.2.999 user@example.test");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().message(), "'192.0.2.999' is not an IP address");
  q = ParseSpfBatchLine("192.0.2.1");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().message(), "expected 'IP SENDER [HELO]', got 1 field(s): '192.0.2.1'");
  EXPECT_FALSE(ParseSpfBatchLine("192.0.2.1 a@b.test helo extra").ok());
  q = ParseSpfBatchLine("192.0.2.1 user@");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().message(), "sender 'user@' has no domain");
  EXPECT_FALSE(ParseSpfBatchLine("192.0.2.1 <>").ok());
  EXPECT_FALSE(ParseSpfBatchLine(std::string("192.0.2.1 a@b.test\0x", 20)).ok());
  EXPECT_TRUE(IsSpfBatchComment("   "));
  EXPECT_TRUE(IsSpfBatchComment(" # a comment"));
  EXPECT_FALSE(IsSpfBatchComment("192.0.2.1 a@b.test"));
}

void Zone(StaticResolver& z) {
  z.Add("example.test", RrType::kTXT, "v=spf1 ip4:192.0.2.0/24 mx -all");
  z.Add("example.test", RrType::kMX, "10 mx.example.test");
  z.Add("mx.example.test", RrType::kA, "198.51.100.25");
  z.Add("mx.example.test", RrType::kTXT, "v=spf1 a -all");
  z.Add("soft.test", RrType::kTXT, "v=spf1 ~all");
  z.SetTimeout("slow.test");
}

TEST(SpfBatch, ResultsInInputOrderWithErrorsInPlace) {
  StaticResolver z;
  Zone(z);
  std::string input;
  // Many lines over several chunks, so that workers finish out of order.
  std::vector<std::string> want;
  for (int i = 0; i < 300; ++i) {
    switch (i % 6) {
      case 0:
        input += fmt::format("192.0.2.{} u{}@example.test\n", i % 250, i);
        want.push_back("pass");
        break;
      case 1:
        input += "203.0.113.9 u@example.test\n";
        want.push_back("fail");
        break;
      case 2:
        input += "198.51.100.25 <> mx.example.test\n";
        want.push_back("pass");
        break;
      case 3:
        input += "not-an-ip u@example.test\n";
        want.push_back("error");
        break;
      case 4:
        input += "# comment\n\n192.0.2.1 u@soft.test\n";
        want.push_back("softfail");
        break;
      default:
        input += "192.0.2.1 u@slow.test\n";
        want.push_back("temperror");
    }
  }
  std::istringstream in(input);
  SpfBatchOptions o;
  o.concurrency = 8;
  o.chunk_lines = 37;
  std::vector<SpfBatchResult> got;
  auto stats = RunSpfBatch(z, in, o, [&](const SpfBatchResult& r) { got.push_back(r); });
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->queries, 300u);
  EXPECT_EQ(stats->errors, 50u);
  ASSERT_EQ(got.size(), want.size());
  size_t prev_line = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    std::string result = got[i].error.ok() ? SpfResultName(got[i].outcome.result) : "error";
    EXPECT_EQ(result, want[i]) << "result " << i << ": " << got[i].input;
    EXPECT_GT(got[i].line, prev_line);  // input order, comment lines counted
    prev_line = got[i].line;
  }
  // Line numbers count the skipped comment and blank lines.
  EXPECT_EQ(got[4].line, 7u);
  EXPECT_EQ(got[4].input, "192.0.2.1 u@soft.test");
}

TEST(SpfBatch, EmptyInputIsNoResults) {
  StaticResolver z;
  std::istringstream in("# nothing\n\n");
  size_t n = 0;
  auto stats = RunSpfBatch(z, in, {}, [&](const SpfBatchResult&) { ++n; });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->queries, 0u);
  EXPECT_EQ(n, 0u);
}

TEST(SpfBatch, TextAndJsonOfOneResult) {
  StaticResolver z;
  Zone(z);
  std::istringstream in("203.0.113.9 u@example.test helo.test\n192.0.2.1\n");
  std::vector<SpfBatchResult> got;
  ASSERT_TRUE(RunSpfBatch(z, in, {}, [&](const SpfBatchResult& r) { got.push_back(r); }).ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(SpfBatchResultToText(got[0]),
            "fail\t203.0.113.9\tu@example.test\thelo.test\t-all\texample.test does not "
            "designate 203.0.113.9 as a permitted sender");
  EXPECT_EQ(SpfBatchResultToText(got[1]),
            "error\tline 2: expected 'IP SENDER [HELO]', got 1 field(s): '192.0.2.1'");
  Json j = SpfBatchResultToJson(got[0]);
  EXPECT_EQ(j["line"], 1);
  EXPECT_EQ(j["result"], "fail");
  EXPECT_EQ(j["domain"], "example.test");
  EXPECT_EQ(j["mechanism"], "-all");
  EXPECT_EQ(j["dns_lookups"], 1);
  EXPECT_EQ(SpfBatchResultToJson(got[1]),
            Json({{"line", 2},
                  {"input", "192.0.2.1"},
                  {"result", "error"},
                  {"error", "expected 'IP SENDER [HELO]', got 1 field(s): '192.0.2.1'"}}));
}

}  // namespace
}  // namespace cloudkeep::mail
