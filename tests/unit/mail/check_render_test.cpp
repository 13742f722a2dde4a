// The renderings of the mail audit on hand-built reports: the exact text of
// `mail check`, `mail relay`, `mail rbl` and `mail ptr` for each verdict —
// above all the UNKNOWN / could-not-check ones, which must never read as a
// pass — and the shape of `mail check --json`.
#include "mail/check_render.h"

#include <gtest/gtest.h>

namespace cloudkeep::mail {
namespace {

CheckFinding Finding(CheckGroup g, std::string subject, CheckLevel level, std::string message,
                     std::string fix = "") {
  return {g, std::move(subject), level, std::move(message), std::move(fix)};
}

TEST(CheckRender, GroupNamesAndTitlesCoverEveryGroup) {
  EXPECT_STREQ(CheckGroupName(CheckGroup::kRelay), "1 relay");
  EXPECT_STREQ(CheckGroupName(CheckGroup::kSpf), "2 SPF");
  EXPECT_STREQ(CheckGroupName(CheckGroup::kBulk), "bulk");
  EXPECT_STREQ(CheckGroupTitle(CheckGroup::kPtr), "Rule 3: PTR resolves back to the hostname");
  EXPECT_STREQ(CheckGroupTitle(CheckGroup::kMx), "Mail hosts");
  for (int g = static_cast<int>(CheckGroup::kDeadline); g <= static_cast<int>(CheckGroup::kBulk);
       ++g) {
    EXPECT_STRNE(CheckGroupName(static_cast<CheckGroup>(g)), "?") << g;
    EXPECT_STRNE(CheckGroupTitle(static_cast<CheckGroup>(g)), "?") << g;
  }
}

MailCheckReport SampleCheck() {
  MailCheckReport r;
  r.domain = "example.test";
  r.mx = {"10 mx.example.test", "20 mx2.example.test"};
  r.findings = {
      Finding(CheckGroup::kDeadline, "example.test", CheckLevel::kUnknown,
              "could not check everything: the deadline of 5s was reached; not checked: DMARC of "
              "example.test",
              "rerun with a longer --deadline"),
      Finding(CheckGroup::kMx, "example.test", CheckLevel::kPass, "MX: mx.example.test"),
      Finding(CheckGroup::kRelay, "mx.example.test", CheckLevel::kSkip, "not tested (--no-smtp)"),
      Finding(CheckGroup::kSpf, "192.0.2.1", CheckLevel::kFail,
              "SPF of example.test for 192.0.2.1: fail", "add ip4:192.0.2.1"),
      Finding(CheckGroup::kSpf, "example.test", CheckLevel::kWarn, "'?all' is neutral",
              "edit the SPF record as the message says"),
  };
  return r;
}

TEST(CheckRender, MailCheckTextGroupsFindingsUnderTitles) {
  EXPECT_EQ(MailCheckToText(SampleCheck()),
            "domain example.test, MX 10 mx.example.test, 20 mx2.example.test\n"
            "\n"
            "Deadline\n"
            "  UNKNOWN  example.test           could not check everything: the deadline of 5s "
            "was reached; not checked: DMARC of example.test\n"
            "                                  fix: rerun with a longer --deadline\n"
            "\n"
            "Mail hosts\n"
            "  PASS     example.test           MX: mx.example.test\n"
            "\n"
            "Rule 1: not an open relay\n"
            "  SKIP     mx.example.test        not tested (--no-smtp)\n"
            "\n"
            "Rule 2: SPF\n"
            "  FAIL     192.0.2.1              SPF of example.test for 192.0.2.1: fail\n"
            "                                  fix: add ip4:192.0.2.1\n"
            "  WARN     example.test           '?all' is neutral\n"
            "                                  fix: edit the SPF record as the message says\n"
            "\n"
            "1 passed, 1 warnings, 1 failed, 1 could not be checked, 1 skipped\n");
}

TEST(CheckRender, MailCheckTextWithoutMxOrFindings) {
  MailCheckReport r;
  r.domain = "none.test";
  EXPECT_EQ(MailCheckToText(r),
            "domain none.test\n\n\n0 passed, 0 warnings, 0 failed, 0 could not be checked, 0 "
            "skipped\n");
}

TEST(CheckRender, MailCheckTextDeadResolverIsOneUnknown) {
  MailCheckReport r;
  r.domain = "dead.test";
  r.findings = {Finding(CheckGroup::kDns, "dead.test", CheckLevel::kUnknown,
                        "could not check anything that needs DNS: no answer for dead.test "
                        "(timeout)",
                        "check the resolver (--resolver)")};
  EXPECT_EQ(MailCheckToText(r),
            "domain dead.test\n"
            "\n"
            "DNS\n"
            "  UNKNOWN  dead.test              could not check anything that needs DNS: no answer "
            "for dead.test (timeout)\n"
            "                                  fix: check the resolver (--resolver)\n"
            "\n"
            "0 passed, 0 warnings, 0 failed, 1 could not be checked, 0 skipped\n");
}

TEST(CheckRender, MailCheckJsonShape) {
  MailCheckReport r = SampleCheck();
  r.deadline_reached = true;
  r.not_checked = {"DMARC of example.test"};
  MailHostReport h;
  h.host = "mx.example.test";
  h.addresses = {"192.0.2.1"};
  SpfOutcome spf;
  spf.result = SpfResult::kFail;
  spf.mechanism = "-all";
  h.spf.push_back(spf);
  h.smtp_error = "connection refused";
  r.hosts.push_back(h);
  r.spf_lint.records = {"v=spf1 -all"};
  r.spf_lint.dns_lookups = 0;
  Json j = MailCheckToJson(r);
  EXPECT_EQ(j["domain"], "example.test");
  EXPECT_EQ(j["failed"], true);
  EXPECT_EQ(j["complete"], false);  // an UNKNOWN finding: not a clean bill of health
  EXPECT_EQ(j["deadline_reached"], true);
  EXPECT_EQ(j["not_checked"], Json::array({"DMARC of example.test"}));
  EXPECT_EQ(j["counts"],
            Json({{"pass", 1}, {"warn", 1}, {"fail", 1}, {"unknown", 1}, {"skip", 1}}));
  EXPECT_EQ(j["mx"], Json::array({"10 mx.example.test", "20 mx2.example.test"}));
  ASSERT_EQ(j["findings"].size(), 5u);
  EXPECT_EQ(j["findings"][0], Json({{"group", "deadline"},
                                    {"subject", "example.test"},
                                    {"level", "UNKNOWN"},
                                    {"message",
                                     "could not check everything: the deadline of 5s was reached; "
                                     "not checked: DMARC of example.test"},
                                    {"fix", "rerun with a longer --deadline"}}));
  EXPECT_EQ(j["findings"][1]["group"], "MX");
  EXPECT_FALSE(j["findings"][1].contains("fix"));  // a PASS has no fix
  EXPECT_EQ(j["findings"][2]["group"], "1 relay");
  EXPECT_EQ(j["findings"][2]["level"], "SKIP");
  EXPECT_EQ(j["findings"][3]["group"], "2 SPF");
  ASSERT_EQ(j["hosts"].size(), 1u);
  const Json& jh = j["hosts"][0];
  EXPECT_EQ(jh["host"], "mx.example.test");
  EXPECT_EQ(
      jh["spf"][0],
      Json({{"address", "192.0.2.1"}, {"result", "fail"}, {"mechanism", "-all"}, {"problem", ""}}));
  EXPECT_EQ(jh["smtp_error"], "connection refused");
  EXPECT_FALSE(jh.contains("smtp"));
  EXPECT_TRUE(jh["ptr"].is_object());
  EXPECT_EQ(j["spf_records"], Json::array({"v=spf1 -all"}));
  EXPECT_EQ(j["spf_dns_lookups"], 0);
  EXPECT_EQ(j["dmarc"], Json({{"record", ""}, {"found_at", ""}, {"policy", ""}}));
  // DKIM never looked up is null, not an empty (passing) report.
  EXPECT_TRUE(j["dkim"].is_null());
}

RelayReport SampleRelay(int n_tested, int n_accepted) {
  RelayReport r;
  r.host = "mx.example.test";
  r.address = "192.0.2.1";
  r.greeting = {220, {"mx.example.test ESMTP"}};
  r.ehlo_name = "mx.example.test";
  r.tls.offered = false;
  for (int i = 0; i < 3; ++i) {
    RelayAttempt a;
    a.name = "form " + std::to_string(i);
    a.mail_from = "a@example.org";
    a.rcpt_to = "b@example.net";
    if (i < n_tested) {
      a.mail_code = 250;
      a.rcpt_code = i < n_accepted ? 250 : 554;
      a.accepted = i < n_accepted;
      a.reply = i < n_accepted ? "ok" : "relay denied";
    }
    r.attempts.push_back(a);
  }
  return r;
}

constexpr const char* kRelayHead =
    "server     mx.example.test:25 (192.0.2.1)\n"
    "greeting   220 mx.example.test ESMTP\n"
    "ehlo name  mx.example.test\n"
    "starttls   not offered\n"
    "\n"
    "RESULT   TRICK   MAIL FROM        RCPT TO          MAIL  RCPT  REPLY\n";

TEST(CheckRender, RelayRefusedEverywhere) {
  EXPECT_EQ(RelayReportToText(SampleRelay(3, 0)),
            std::string(kRelayHead) +
                "refused  form 0  <a@example.org>  <b@example.net>  250   554   relay denied\n"
                "refused  form 1  <a@example.org>  <b@example.net>  250   554   relay denied\n"
                "refused  form 2  <a@example.org>  <b@example.net>  250   554   relay denied\n"
                "\nnot an open relay: all 3 relay forms refused\n");
}

TEST(CheckRender, RelayPartlyTestedIsUnknownNotAVerdict) {
  RelayReport r = SampleRelay(1, 0);
  r.error = "connection closed";
  std::string text = RelayReportToText(r);
  EXPECT_NE(text.find("untested  form 2  <a@example.org>  <b@example.net>  -     -\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.substr(text.rfind("\n\n")),
            "\n\nUNKNOWN: 1 of 3 relay forms tested, none relayed: not a verdict (the probe "
            "stopped early: connection closed)\n");
  EXPECT_EQ(text.find("not an open relay"), std::string::npos);
}

TEST(CheckRender, RelayOpenAndIncomplete) {
  RelayReport r = SampleRelay(2, 1);
  r.error = "timeout";
  std::string text = RelayReportToText(r);
  EXPECT_NE(text.find("RELAYED   form 0"), std::string::npos) << text;
  EXPECT_NE(text.find("\nOPEN RELAY: 1 of 3 relay forms accepted."), std::string::npos) << text;
  EXPECT_NE(text.find("\nOnly 2 of 3 relay forms tested: timeout.\n"), std::string::npos) << text;
}

TEST(CheckRender, RelayTlsLines) {
  RelayReport r = SampleRelay(3, 0);
  r.tls = {true, true, "TLSv1.3", "TLS_AES_256_GCM_SHA384", false, "self-signed", "", false};
  EXPECT_NE(RelayReportToText(r).find(
                "starttls   TLSv1.3 TLS_AES_256_GCM_SHA384, certificate INVALID: self-signed\n"),
            std::string::npos);
  r.tls = {true, false, "", "", false, "", "handshake failure", false};
  r.plaintext_fallback = true;
  EXPECT_NE(RelayReportToText(r).find("starttls   offered, failed: handshake failure (relaying "
                                      "tested in plain text)\n"),
            std::string::npos);
}

ZoneResult Zone(std::string zone) {
  ZoneResult z;
  z.zone = std::move(zone);
  return z;
}

TEST(CheckRender, RblClean) {
  RblReport r;
  r.address = "192.0.2.1";
  r.zones = {Zone("bl.test"), Zone("bl2.test")};
  EXPECT_EQ(RblReportToText(r),
            "address 192.0.2.1\n"
            "\n"
            "ZONE      RESULT  CODES  MEANING\n"
            "bl.test   clean   -      -\n"
            "bl2.test  clean   -      -\n"
            "\n"
            "not listed on any of 2 lists\n"
            "2 of 2 blocklists answered\n");
}

TEST(CheckRender, RblListedUnusableAndUnknown) {
  RblReport r;
  r.address = "192.0.2.1";
  ZoneResult listed = Zone("bl.test");
  listed.listed = true;
  listed.codes = {"127.0.0.2", "127.0.0.4"};
  listed.meanings = {"SBL", "XBL"};
  listed.txt = "see https://bl.test/";
  ZoneResult unusable = Zone("spamhaus.test");
  unusable.unusable = true;
  ZoneResult failed = Zone("slow.test");
  failed.error = "timeout";
  ZoneResult v4only = Zone("v4.test");
  v4only.skipped = true;
  r.zones = {listed, unusable, failed, v4only};
  EXPECT_EQ(RblReportToText(r),
            "address 192.0.2.1\n"
            "\n"
            "ZONE           RESULT               CODES                MEANING\n"
            "bl.test        LISTED               127.0.0.2,127.0.0.4  SBL; XBL — see "
            "https://bl.test/\n"
            "spamhaus.test  UNUSABLE             -                    -\n"
            "slow.test      UNKNOWN: timeout     -                    -\n"
            "v4.test        skipped (IPv4 only)  -                    -\n"
            "\n"
            "LISTED on 1 of 4 lists. Find and stop the cause (open relay, compromised account, "
            "bot),\n"
            "then request removal from each list.\n"
            "1 of 3 blocklists answered\n"
            "1 list(s) refused to answer (e.g. queried through a public resolver): their verdict "
            "is unknown\n");
}

TEST(CheckRender, RblNothingAnsweredSaysNoVerdict) {
  RblReport r;
  r.address = "192.0.2.1";
  ZoneResult failed = Zone("slow.test");
  failed.error = "SERVFAIL";
  r.zones = {failed};
  std::string text = RblReportToText(r);
  EXPECT_EQ(text.find("not listed"), std::string::npos) << text;
  EXPECT_NE(text.find("\n0 of 1 blocklists answered\n"), std::string::npos) << text;
}

TEST(CheckRender, RblBlockScan) {
  RblReport r;
  r.address = "192.0.2.1";
  r.block_prefix = 24;
  r.block = "192.0.2.0/24";
  r.block_size = 256;
  ZoneResult z = Zone("bl.test");
  z.block_listed = 3;
  z.block_errors = 2;
  r.zones = {z};
  EXPECT_EQ(RblReportToText(r),
            "address 192.0.2.1, block 192.0.2.0/24 (256 addresses)\n"
            "\n"
            "ZONE     RESULT  CODES  MEANING  BLOCK LISTED\n"
            "bl.test  clean   -      -               3/256\n"
            "\n"
            "not listed on the 1 of 1 lists that answered\n"
            "1 of 1 blocklists answered\n"
            "2 lookups of neighbours in 192.0.2.0/24 failed: the block scan is incomplete\n"
            "neighbours in 192.0.2.0/24 are listed on 1 list(s): receivers that score by block "
            "will distrust this address\n");
}

PtrAddress Address(std::string ip, std::vector<PtrName> names, bool fcrdns, bool matches) {
  PtrAddress a;
  a.address = std::move(ip);
  a.ptr_status = names.empty() ? DnsStatus::kNxDomain : DnsStatus::kOk;
  a.names = std::move(names);
  a.fcrdns = fcrdns;
  a.matches_host = matches;
  return a;
}

TEST(CheckRender, PtrInOrder) {
  PtrReport r;
  r.host = "mx.example.test";
  r.addresses = {Address(
      "192.0.2.1", {{"mx.example.test", {"192.0.2.1"}, DnsStatus::kOk, true, true}}, true, true)};
  EXPECT_EQ(PtrReportToText(r),
            "ADDRESS    PTR              RESOLVES BACK  MATCHES HOST\n"
            "192.0.2.1  mx.example.test  yes            yes\n"
            "\nforward-confirmed reverse DNS is in order\n");
}

TEST(CheckRender, PtrMissingGivesTheFix) {
  PtrReport r;
  r.host = "mx.example.test";
  r.addresses = {Address("192.0.2.1", {}, false, false)};
  std::string text = PtrReportToText(r);
  EXPECT_EQ(text.substr(0, text.find("\n\n")),
            "ADDRESS    PTR               RESOLVES BACK  MATCHES HOST\n"
            "192.0.2.1  (none: nxdomain)  -              -");
  EXPECT_NE(text.find("\nfix: ask the owner of each address"), std::string::npos) << text;
}

TEST(CheckRender, PtrFailedLookupIsUnknownWithoutFix) {
  PtrReport r;
  r.host = "mx.example.test";
  PtrAddress a = Address("192.0.2.1", {}, false, false);
  a.ptr_status = DnsStatus::kTimeout;
  a.error = "PTR lookup timed out";
  r.addresses = {a};
  std::string text = PtrReportToText(r);
  EXPECT_EQ(text,
            "ADDRESS    PTR                   RESOLVES BACK  MATCHES HOST\n"
            "192.0.2.1  PTR lookup timed out  -              -\n"
            "\nUNKNOWN: some lookups failed (timeout or SERVFAIL), so reverse DNS could not be "
            "checked\n"
            "fully; retry, or make the name servers answer\n");
  EXPECT_EQ(text.find("fix:"), std::string::npos);
}

TEST(CheckRender, PtrHostWithoutAddress) {
  PtrReport r;
  r.host = "mx.example.test";
  r.error = "mx.example.test has no A or AAAA record";
  EXPECT_EQ(PtrReportToText(r).substr(0, 80),
            std::string("ADDRESS  PTR  RESOLVES BACK  MATCHES HOST\n"
                        "error: mx.example.test has no A or AAAA record\n")
                .substr(0, 80));
}

}  // namespace
}  // namespace cloudkeep::mail
