// "Could not check" is never "checked and clean": every audit keeps apart a
// lookup that failed from an answer, reports one root cause once, derives no
// fix from a failed lookup; the SPF lint agrees with the evaluator; DMARC
// records that receivers ignore are reported; DKIM names are validated.
#include <gtest/gtest.h>

#include <thread>

#include "mail/check.h"
#include "mail/check_render.h"
#include "mail/dkim_check.h"
#include "mail/dkim_verify.h"
#include "mail/dmarc.h"
#include "mail/ptr_check.h"
#include "mail/rbl.h"
#include "mail/relay_probe.h"
#include "mail/spf_lint.h"

namespace cloudkeep::mail {
namespace {

int Count(const MailCheckReport& r, CheckGroup group, CheckLevel level) {
  int n = 0;
  for (const auto& f : r.findings) n += f.group == group && f.level == level ? 1 : 0;
  return n;
}

int Groups(const MailCheckReport& r, CheckGroup group) {
  int n = 0;
  for (const auto& f : r.findings) n += f.group == group ? 1 : 0;
  return n;
}

std::string Dump(const MailCheckReport& r) {
  std::string out;
  for (const auto& f : r.findings)
    out += std::string(CheckLevelName(f.level)) + " " + CheckGroupName(f.group) + " " + f.subject +
           ": " + f.message + (f.fix.empty() ? "" : " [fix: " + f.fix + "]") + "\n";
  return out;
}

MailCheckOptions Options(const std::string& domain) {
  MailCheckOptions o;
  o.domain = domain;
  o.smtp = false;
  o.dkim_selectors = {"s1"};
  o.rbl.zones = {"bl.test", "bl2.test"};
  return o;
}

void GoodZone(StaticResolver& z) {
  z.Add("good.test", RrType::kMX, "10 mx.good.test");
  z.Add("good.test", RrType::kTXT, "v=spf1 ip4:127.0.0.10 -all");
  z.Add("_dmarc.good.test", RrType::kTXT, "v=DMARC1; p=quarantine");
  z.Add("mx.good.test", RrType::kA, "127.0.0.10");
  z.Add("10.0.0.127.in-addr.arpa", RrType::kPTR, "mx.good.test");
}

TEST(CouldNotCheck, DeadResolverIsOneFinding) {
  StaticResolver z;
  GoodZone(z);
  z.SetTimeout("good.test");
  auto r = RunMailCheck(z, Options("good.test"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->findings.size(), 1u) << Dump(*r);
  EXPECT_EQ(Count(*r, CheckGroup::kDns, CheckLevel::kUnknown), 1) << Dump(*r);
  EXPECT_EQ(r->count(CheckLevel::kPass), 0);
  EXPECT_TRUE(r->incomplete());
  Json j = MailCheckToJson(*r);
  EXPECT_EQ(j["complete"], false);
  EXPECT_EQ(j["counts"]["unknown"], 1);
  EXPECT_EQ(j["findings"][0]["level"], "UNKNOWN");
}

TEST(CouldNotCheck, FailedLookupsAreUnknownNeverPassOrFix) {
  StaticResolver z;
  GoodZone(z);
  z.SetTimeout("_dmarc.good.test");
  z.SetServFail("s1._domainkey.good.test");
  z.SetTimeout("10.0.0.127.bl.test");
  z.SetTimeout("10.0.0.127.bl2.test");
  z.SetTimeout("10.0.0.127.in-addr.arpa");
  auto r = RunMailCheck(z, Options("good.test"));
  ASSERT_TRUE(r.ok());
  std::string d = Dump(*r);
  EXPECT_EQ(Count(*r, CheckGroup::kDmarc, CheckLevel::kUnknown), 1) << d;
  EXPECT_EQ(Count(*r, CheckGroup::kDmarc, CheckLevel::kFail), 0) << d;
  EXPECT_EQ(Count(*r, CheckGroup::kDkim, CheckLevel::kUnknown), 1) << d;
  EXPECT_EQ(Count(*r, CheckGroup::kDkim, CheckLevel::kFail), 0) << d;
  EXPECT_EQ(Count(*r, CheckGroup::kRbl, CheckLevel::kPass), 0) << d;  // never "not listed"
  EXPECT_EQ(Count(*r, CheckGroup::kRbl, CheckLevel::kUnknown), 1) << d;
  EXPECT_NE(d.find("could not check 2 of 2 lists"), std::string::npos) << d;
  EXPECT_EQ(Count(*r, CheckGroup::kPtr, CheckLevel::kUnknown), 1) << d;
  EXPECT_EQ(Count(*r, CheckGroup::kPtr, CheckLevel::kFail), 0) << d;
  // Requirements resting on what was not checked are unknown, not failed.
  EXPECT_EQ(Count(*r, CheckGroup::kBulk, CheckLevel::kFail), 0) << d;
  for (const auto& f : r->findings) {
    if (f.level == CheckLevel::kUnknown) {
      EXPECT_EQ(f.fix.find("publish"), std::string::npos) << f.message << " / " << f.fix;
    }
  }
  EXPECT_FALSE(r->failed());
  EXPECT_TRUE(r->incomplete());
}

TEST(CouldNotCheck, SpfTimeoutIsNotMissingRecord) {
  StaticResolver z;
  GoodZone(z);
  z.Add("slow.test", RrType::kMX, "10 mx.good.test");
  z.Add("slow.test", RrType::kTXT, "v=spf1 include:_spf.slow.test -all");
  z.Add("_dmarc.slow.test", RrType::kTXT, "v=DMARC1; p=none");
  z.SetTimeout("_spf.slow.test");
  auto r = RunMailCheck(z, Options("slow.test"));
  ASSERT_TRUE(r.ok());
  std::string d = Dump(*r);
  EXPECT_EQ(Count(*r, CheckGroup::kSpf, CheckLevel::kFail), 0) << d;
  EXPECT_GE(Count(*r, CheckGroup::kSpf, CheckLevel::kUnknown), 1) << d;
  EXPECT_EQ(d.find("TXT \"v=spf1"), std::string::npos) << d;  // no "publish" record derived

  // The lint on its own: a failed include is "could not check", not "0 SPF records".
  SpfLintReport lint = LintSpf(z, "slow.test");
  EXPECT_TRUE(lint.incomplete());
  EXPECT_FALSE(lint.failed());
  z.SetTimeout("slow.test");
  lint = LintSpf(z, "slow.test");
  EXPECT_TRUE(lint.dns_error);
  EXPECT_FALSE(lint.failed());
  EXPECT_TRUE(lint.incomplete());
}

TEST(CouldNotCheck, PtrAndRblReports) {
  StaticResolver z;
  z.SetTimeout("mx.x.test");
  PtrReport p = CheckPtr(z, "mx.x.test", {});
  EXPECT_FALSE(p.ok());
  EXPECT_TRUE(p.incomplete());
  EXPECT_EQ(PtrReportToJson(p)["verdict"], "unknown");

  z.SetServFail("1.2.0.192.bl.test");
  z.Add("1.2.0.192.bl2.test", RrType::kTXT, "unrelated");  // name exists: NODATA, clean
  RblOptions o;
  o.zones = {"bl.test", "bl2.test"};
  auto r = CheckRbl(z, "192.0.2.1", o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->listed());
  EXPECT_FALSE(r->complete());
  EXPECT_EQ(r->answered_count(), 1);
  Json j = RblReportToJson(*r);
  EXPECT_EQ(j["verdict"], "unknown");
  EXPECT_EQ(j["answered_zones"], 1);
}

TEST(CouldNotCheck, RelayFormsCountOnlyWhenAnswered) {
  RelayReport r;
  r.attempts = RelayBattery("mx.test", "192.0.2.1", RelayOptions{});
  ASSERT_EQ(r.attempts.size(), 19u);
  EXPECT_EQ(r.tested(), 0);
  EXPECT_FALSE(r.complete());  // nothing answered: not "not an open relay"
  for (auto& a : r.attempts) a.mail_code = 554;
  EXPECT_TRUE(r.complete());
  r.attempts[0].mail_code = 250;  // MAIL accepted, RCPT never answered
  EXPECT_FALSE(r.complete());
  r.attempts[0].rcpt_code = 421;  // the server closing is not an answer
  EXPECT_FALSE(r.complete());
  r.attempts[0].rcpt_code = 554;
  EXPECT_TRUE(r.complete());
  r.error = "the server keeps closing the connection";
  EXPECT_FALSE(r.complete());
  Json j = RelayReportToJson(r);
  EXPECT_EQ(j["tested"], 19);
  EXPECT_EQ(j["verdict"], "unknown");
}

TEST(CouldNotCheck, DkimTimeoutIsNotMissing) {
  StaticResolver z;
  for (const auto& s : CommonDkimSelectors()) z.SetTimeout(s + "._domainkey.d.test");
  DkimCheckReport r = CheckDkimSelectors(z, "d.test", {});
  EXPECT_EQ(r.severity, DkimSeverity::kUnknown);
  EXPECT_EQ(r.checked, 0);
  EXPECT_EQ(r.findings.size(), 1u);  // one root cause, one finding
  ASSERT_FALSE(r.findings.empty());
  EXPECT_NE(r.findings[0].message.find("could not check"), std::string::npos);
  for (const auto& f : r.findings) EXPECT_EQ(f.message.find("no DKIM key"), std::string::npos);

  DkimCheckReport named = CheckDkimSelectors(z, "d.test", {CommonDkimSelectors()[0]});
  ASSERT_EQ(named.selectors.size(), 1u);
  EXPECT_TRUE(named.selectors[0].lookup_failed);
  EXPECT_FALSE(named.selectors[0].found);
  EXPECT_EQ(named.severity, DkimSeverity::kUnknown);
}

TEST(CouldNotCheck, SpfLintAgreesWithEvaluator) {
  StaticResolver z;
  z.Add("loop.test", RrType::kTXT, "v=spf1 include:loop2.test -all");
  z.Add("loop2.test", RrType::kTXT, "v=spf1 include:loop.test -all");
  z.Add("rloop.test", RrType::kTXT, "v=spf1 redirect=rloop2.test");
  z.Add("rloop2.test", RrType::kTXT, "v=spf1 redirect=rloop.test");
  z.Add("voids.test", RrType::kTXT, "v=spf1 a:v1.voids.test a:v2.voids.test a:v3.voids.test -all");
  for (int i = 0; i < 11; ++i) {
    z.Add("mxs.test", RrType::kMX, std::to_string(i) + " m" + std::to_string(i) + ".mxs.test");
  }
  z.Add("manymx.test", RrType::kTXT, "v=spf1 mx:mxs.test -all");
  z.Add("macro.test", RrType::kTXT,
        "v=spf1 include:%{d}.a.macro.test -all");  // not followed statically
  for (const char* d : {"loop.test", "rloop.test", "voids.test", "manymx.test"}) {
    SpfLintReport r = LintSpf(z, d);
    EXPECT_TRUE(r.failed()) << d;
    bool reason = false;
    for (const auto& f : r.findings)
      reason = reason || (f.severity == LintFinding::Severity::kFail &&
                          (f.message.find("permerror") != std::string::npos ||
                           f.message.find("loop") != std::string::npos));
    EXPECT_TRUE(reason) << d;
  }
  SpfLintReport ok = LintSpf(z, "macro.test");  // include of a name with no record: permerror
  EXPECT_TRUE(ok.failed());
}

TEST(CouldNotCheck, DmarcRecordsReceiversIgnore) {
  DmarcRecord r;
  std::string err;
  EXPECT_FALSE(ParseDmarcRecord("v=DMARC1; rua=mailto:a@x.example; p=reject", &r, &err));
  EXPECT_NE(err.find("second"), std::string::npos) << err;
  EXPECT_FALSE(ParseDmarcRecord("v=DMARC1; p=reject; p=none", &r, &err));
  EXPECT_NE(err.find("more than once"), std::string::npos) << err;
  EXPECT_FALSE(ParseDmarcRecord("v=DMARC1; p=reject; pct=50; pct=100", &r, &err));
  EXPECT_TRUE(ParseDmarcRecord("v=DMARC1; p=reject; rua=mailto:a@x.example", &r, &err)) << err;

  StaticResolver z;
  z.Add("_dmarc.order.test", RrType::kTXT, "p=reject; v=DMARC1");
  DmarcLookup l = LookupDmarc(z, "order.test");
  EXPECT_FALSE(l.record);
  EXPECT_NE(l.problem.find("ignored by receivers"), std::string::npos) << l.problem;
  z.SetTimeout("_dmarc.slow.test");
  l = LookupDmarc(z, "slow.test");
  EXPECT_TRUE(l.dns_error);
  ASSERT_FALSE(l.findings.empty());
  EXPECT_EQ(l.findings[0].severity, LintFinding::Severity::kUnknown);
}

// --deadline: past it the audit starts no more checks; one finding names
// them, and none of them is judged.
TEST(CheckDeadline, PassedBeforeTheStartChecksNothing) {
  StaticResolver z;
  GoodZone(z);
  MailCheckOptions o = Options("good.test");
  o.deadline = Deadline::After(Micros(0));
  auto r = RunMailCheck(z, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(z.queries(), 0u);
  ASSERT_EQ(r->findings.size(), 1u);
  EXPECT_EQ(r->findings[0].group, CheckGroup::kDeadline);
  EXPECT_EQ(r->findings[0].level, CheckLevel::kUnknown);
  EXPECT_TRUE(r->deadline_reached);
  EXPECT_EQ(r->not_checked, std::vector<std::string>{"the whole audit"});
  Json j = MailCheckToJson(*r);
  EXPECT_EQ(j["complete"], false);
  EXPECT_EQ(j["deadline_reached"], true);
  EXPECT_EQ(j["counts"]["pass"], 0);
  EXPECT_TRUE(j["dkim"].is_null());  // never looked up: no "pass"
}

// DNS answers at once, except that the DKIM lookup is held until the
// deadline has passed and then times out, as the real resolver's clamped
// wait does.
class DkimStallsResolver : public Resolver {
 public:
  DkimStallsResolver(StaticResolver& zone, Deadline deadline) : zone_(zone), deadline_(deadline) {}
  DnsAnswer Query(const std::string& name, RrType type) override {
    if (name.find("._domainkey.") == std::string::npos) return zone_.Query(name, type);
    while (!deadline_.expired()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    DnsAnswer a;
    a.status = DnsStatus::kTimeout;
    a.error = "no answer before the deadline";
    return a;
  }

 private:
  StaticResolver& zone_;
  Deadline deadline_;
};

TEST(CheckDeadline, StopsWhereTheDeadlinePassedAndNamesWhatWasNotChecked) {
  StaticResolver z;
  GoodZone(z);
  MailCheckOptions o = Options("good.test");
  o.deadline = Deadline::After(std::chrono::milliseconds(500));
  DkimStallsResolver res(z, o.deadline);
  auto r = RunMailCheck(res, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->deadline_reached);
  EXPECT_EQ(r->not_checked,
            (std::vector<std::string>{"DMARC of good.test", "the bulk-sender requirements"}));
  // What ran before the deadline is judged as always; the DKIM lookup it
  // cut short is UNKNOWN; DMARC and the bulk-sender rules are not judged at
  // all (a missing DKIM result would otherwise fail them).
  EXPECT_GT(Groups(*r, CheckGroup::kSpf), 0);
  EXPECT_EQ(Groups(*r, CheckGroup::kDmarc), 0);
  EXPECT_EQ(Groups(*r, CheckGroup::kBulk), 0);
  for (const auto& f : r->findings) {
    if (f.group == CheckGroup::kDkim) {
      EXPECT_EQ(f.level, CheckLevel::kUnknown) << f.message;
    }
  }
  ASSERT_EQ(Groups(*r, CheckGroup::kDeadline), 1);
  EXPECT_EQ(r->findings[0].group, CheckGroup::kDeadline);  // said first
  EXPECT_NE(r->findings[0].message.find("the deadline of 500ms was reached; not checked: DMARC of "
                                        "good.test, the bulk-sender requirements"),
            std::string::npos)
      << r->findings[0].message;
  EXPECT_TRUE(r->incomplete());
  EXPECT_FALSE(r->failed());
}

TEST(DkimNames, SelectorsAndDomainsAreDnsNames) {
  EXPECT_TRUE(CheckDkimSelector("mail2026").ok());
  EXPECT_TRUE(CheckDkimSelector("eu.mail-2026").ok());
  EXPECT_TRUE(CheckDkimSelector("s_1").ok());
  for (const char* bad : {"", "a..b", ".a", "a.", "-a", "a-", "a b", "a/b", "a@b", "a\nb"}) {
    Status s = CheckDkimSelector(bad);
    EXPECT_EQ(s.code(), Status::Code::kUsage) << bad;
  }
  EXPECT_EQ(CheckDkimSelector(std::string(64, 'a')).code(), Status::Code::kUsage);
  EXPECT_NE(CheckDkimSelector("a b", "--selector").message().find("--selector 'a b'"),
            std::string::npos);
  EXPECT_TRUE(CheckDkimDomain("example.com").ok());
  EXPECT_EQ(CheckDkimDomain("localhost").code(), Status::Code::kUsage);
  EXPECT_EQ(CheckDkimDomain("exa mple.com").code(), Status::Code::kUsage);
  EXPECT_EQ(CheckDkimKeyName(std::string(63, 's') + "." + std::string(63, 's'),
                             std::string(63, 'd') + "." + std::string(60, 'd') + ".com")
                .code(),
            Status::Code::kUsage);
}

}  // namespace
}  // namespace cloudkeep::mail
