// SPF parser, macro expander and evaluator details the conformance suites
// leave implicit; zone data in a StaticResolver.
#include "mail/spf.h"

#include <gtest/gtest.h>

#include "mail/spf_lint.h"

namespace cloudkeep::mail {
namespace {

MacroContext Ctx() {
  MacroContext c;
  c.sender = "strong-bad@email.example.com";
  c.local = "strong-bad";
  c.sender_domain = "email.example.com";
  c.domain = "email.example.com";
  c.helo = "mx.example.org";
  c.ip = *IpAddress::Parse("192.0.2.3");
  c.now = 1234;
  return c;
}

std::string Expand(const std::string& in, bool exp = false, MacroContext c = Ctx()) {
  std::string out;
  EXPECT_TRUE(ExpandMacros(in, c, exp, &out)) << in;
  return out;
}

// The examples of RFC 7208 §7.4.
TEST(SpfMacro, Rfc7208Examples) {
  EXPECT_EQ(Expand("%{s}"), "strong-bad@email.example.com");
  EXPECT_EQ(Expand("%{o}"), "email.example.com");
  EXPECT_EQ(Expand("%{d}"), "email.example.com");
  EXPECT_EQ(Expand("%{d4}"), "email.example.com");
  EXPECT_EQ(Expand("%{d3}"), "email.example.com");
  EXPECT_EQ(Expand("%{d2}"), "example.com");
  EXPECT_EQ(Expand("%{d1}"), "com");
  EXPECT_EQ(Expand("%{dr}"), "com.example.email");
  EXPECT_EQ(Expand("%{d2r}"), "example.email");
  EXPECT_EQ(Expand("%{l}"), "strong-bad");
  EXPECT_EQ(Expand("%{l-}"), "strong.bad");
  EXPECT_EQ(Expand("%{lr}"), "strong-bad");
  EXPECT_EQ(Expand("%{lr-}"), "bad.strong");
  EXPECT_EQ(Expand("%{l1r-}"), "strong");
  EXPECT_EQ(Expand("%{ir}.%{v}._spf.%{d2}"), "3.2.0.192.in-addr._spf.example.com");
  EXPECT_EQ(Expand("%{lr-}.lp._spf.%{d2}"), "bad.strong.lp._spf.example.com");
  EXPECT_EQ(Expand("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}"),
            "3.2.0.192.in-addr.strong.lp._spf.example.com");
  EXPECT_EQ(Expand("%{d2}.trusted-domains.example.net"), "example.com.trusted-domains.example.net");
  MacroContext v6 = Ctx();
  v6.ip = *IpAddress::Parse("2001:db8::cb01");
  EXPECT_EQ(Expand("%{ir}.%{v}._spf.%{d2}", false, v6),
            "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com");
}

TEST(SpfMacro, EscapesAndErrors) {
  EXPECT_EQ(Expand("a%%b%_c%-d"), "a%b c%20d");
  EXPECT_EQ(Expand("%{S}"), "strong-bad%40email.example.com");
  EXPECT_EQ(Expand("%{c} %{t}", true), "192.0.2.3 1234");
  std::string out;
  EXPECT_FALSE(ExpandMacros("%{c}", Ctx(), false, &out));  // c, r, t only in exp=
  EXPECT_FALSE(ExpandMacros("%{x}", Ctx(), false, &out));
  EXPECT_FALSE(ExpandMacros("%{d0}", Ctx(), false, &out));
  EXPECT_FALSE(ExpandMacros("%{d", Ctx(), false, &out));
  EXPECT_FALSE(ExpandMacros("100%", Ctx(), false, &out));
  EXPECT_FALSE(ExpandMacros("%x", Ctx(), false, &out));
}

TEST(SpfParse, TermsAndCidrs) {
  SpfRecord r;
  std::string err;
  ASSERT_TRUE(ParseSpfRecord(
      "v=spf1 a:foo.example.com/24//64 mx/28 -ip6:2001:db8::/32 ~all redirect=x.example.com", &r,
      &err))
      << err;
  ASSERT_EQ(r.terms.size(), 4u);
  EXPECT_EQ(r.terms[0].domain_spec, "foo.example.com");
  EXPECT_EQ(r.terms[0].cidr4, 24);
  EXPECT_EQ(r.terms[0].cidr6, 64);
  EXPECT_EQ(r.terms[1].cidr4, 28);
  EXPECT_EQ(r.terms[2].qualifier, '-');
  EXPECT_EQ(r.terms[2].cidr6, 32);
  EXPECT_EQ(*r.redirect, "x.example.com");
  for (const char* bad :
       {"v=spf1 ip4:1.2.3.4/33", "v=spf1 a/024", "v=spf1 foo:bar", "v=spf1 include",
        "v=spf1 redirect=a.example.com redirect=b.example.com", "v=spf1 a:museum", "v=spf1 1x=y",
        "v=spf1 exists:%{z}.example.com", "v=spf1 ip6:::1/129"}) {
    EXPECT_FALSE(ParseSpfRecord(bad, &r, &err)) << bad;
  }
  EXPECT_TRUE(IsSpfRecord("v=spf1"));
  EXPECT_TRUE(IsSpfRecord("V=SPF1 -all"));
  EXPECT_FALSE(IsSpfRecord("v=spf10 -all"));
}

TEST(SpfAddress, PrefixAndReverse) {
  auto a = *IpAddress::Parse("::ffff:192.0.2.7");
  EXPECT_FALSE(a.v6);  // IPv4-mapped is IPv4
  EXPECT_EQ(a.ReverseName(), "7.2.0.192.in-addr.arpa");
  EXPECT_TRUE(a.InPrefix(*IpAddress::Parse("192.0.2.0"), 24));
  EXPECT_FALSE(a.InPrefix(*IpAddress::Parse("192.0.3.0"), 24));
  EXPECT_TRUE(a.InPrefix(*IpAddress::Parse("10.0.0.0"), 0));
  auto b = *IpAddress::Parse("2001:db8::1");
  EXPECT_FALSE(b.InPrefix(*IpAddress::Parse("10.0.0.0"), 0));  // families never match
  EXPECT_TRUE(b.InPrefix(*IpAddress::Parse("2001:db8:ffff::"), 32));
  EXPECT_EQ(b.ReverseName().substr(0, 8), "1.0.0.0.");
}

TEST(SpfEvaluate, ExplanationAndCounts) {
  StaticResolver z;
  z.Add("example.com", RrType::kTXT, "v=spf1 mx include:_i.example.com exp=why.example.com -all");
  z.Add("example.com", RrType::kMX, "10 mx.example.com");
  z.Add("mx.example.com", RrType::kA, "192.0.2.25");
  z.Add("_i.example.com", RrType::kTXT, "v=spf1 ip4:198.51.100.0/24 -all");
  z.Add("why.example.com", RrType::kTXT, "%{i} may not send for %{o}");
  SpfEvaluator e(z);
  SpfOutcome o = e.Check("192.0.2.25", "a@example.com", "helo.example.com");
  EXPECT_EQ(o.result, SpfResult::kPass);
  EXPECT_EQ(o.mechanism, "mx");
  EXPECT_EQ(o.dns_lookups, 1);
  o = e.Check("198.51.100.9", "a@example.com", "");
  EXPECT_EQ(o.result, SpfResult::kPass);
  EXPECT_EQ(o.mechanism, "include:_i.example.com");
  EXPECT_EQ(o.dns_lookups, 2);
  o = e.Check("203.0.113.1", "a@example.com", "");
  EXPECT_EQ(o.result, SpfResult::kFail);
  EXPECT_EQ(o.explanation, "203.0.113.1 may not send for example.com");
  z.SetServFail("_i.example.com");
  EXPECT_EQ(e.Check("203.0.113.1", "a@example.com", "").result, SpfResult::kTempError);
}

TEST(SpfLint, Findings) {
  StaticResolver z;
  z.Add("a.example", RrType::kTXT, "v=spf1 ptr include:b.example ?all");
  z.Add("b.example", RrType::kTXT, "v=spf1 a mx redirect=c.example");
  z.Add("c.example", RrType::kTXT, "v=spf1 exists:%{i}.x.example");
  // b.example's a and mx find records: the evaluator the lint runs stays
  // within the two void lookups (ptr and exists are the two).
  z.Add("b.example", RrType::kA, "198.51.100.1");
  z.Add("b.example", RrType::kMX, "10 b.example");
  z.Add("two.example", RrType::kTXT, "v=spf1 -all");
  z.Add("two.example", RrType::kTXT, "v=spf1 +all");
  SpfLintReport r = LintSpf(z, "a.example");
  EXPECT_EQ(r.dns_lookups, 6);  // ptr, include, a, mx, redirect, exists
  std::string all;
  for (const auto& f : r.findings) all += f.message + "\n";
  EXPECT_NE(all.find("ptr mechanism"), std::string::npos) << all;
  EXPECT_NE(all.find("'?all'"), std::string::npos) << all;
  EXPECT_FALSE(r.failed());
  EXPECT_TRUE(LintSpf(z, "two.example").failed());
  EXPECT_TRUE(LintSpf(z, "none.example").failed());
}

}  // namespace
}  // namespace cloudkeep::mail
