#include "mail/dkim_check.h"

#include <fmt/format.h>

#include <algorithm>

#include "mail/dkim_key.h"
#include "mail/dkim_verify.h"

namespace cloudkeep::mail {

namespace {

bool LooksLikeDkim(const std::string& txt) {
  // A record starting with v=DKIM1, or any tag-list with p= (v= is optional).
  if (txt.rfind("v=DKIM1", 0) == 0) return true;
  auto tags = ParseDkimTagList(txt);
  return tags.ok() && FindDkimTag(*tags, "p") != nullptr;
}

class Judge {
 public:
  Judge(DkimCheckReport* report, DkimSelectorReport* sel) : report_(report), sel_(sel) {}
  void Add(DkimSeverity s, std::string message, std::string fix = "") {
    report_->findings.push_back({s, sel_->selector, std::move(message), std::move(fix)});
    sel_->severity = std::max(sel_->severity, s);
  }

 private:
  DkimCheckReport* report_;
  DkimSelectorReport* sel_;
};

void JudgeSelector(const std::string& domain, const DnsAnswer& answer, bool guessed,
                   DkimCheckReport* report, DkimSelectorReport* sel) {
  Judge judge(report, sel);
  sel->dns_status = DnsStatusName(answer.status);
  if (answer.status == DnsStatus::kServFail || answer.status == DnsStatus::kTimeout) {
    // Reported once for all selectors by CheckDkimSelectors.
    sel->lookup_failed = true;
    sel->severity = DkimSeverity::kUnknown;
    return;
  }
  std::vector<std::string> dkim;
  for (const auto& r : answer.records)
    if (LooksLikeDkim(r)) dkim.push_back(r);
  sel->found = !dkim.empty();
  if (!sel->found) {
    if (!guessed)
      judge.Add(
          DkimSeverity::kFail, fmt::format("no DKIM key record at {}", sel->name),
          fmt::format(
              "publish the selector's key: cloudkeep mail dkim keygen --selector {} --domain {} "
              "--out {}.private prints the TXT record",
              sel->selector, domain, sel->selector));
    return;
  }
  if (dkim.size() > 1)
    judge.Add(DkimSeverity::kWarn,
              fmt::format("{} DKIM records at {}: which one a receiver uses is undefined",
                          dkim.size(), sel->name),
              "publish exactly one key record per selector (RFC 6376 §3.6.2.2)");
  sel->record = dkim.front();
  auto rec = ParseDkimKeyRecord(sel->record);
  if (!rec.ok()) {
    judge.Add(DkimSeverity::kFail, fmt::format("key record is invalid: {}", rec.status().message()),
              "republish the record as \"v=DKIM1; k=rsa; p=<base64 public key>\"");
    return;
  }
  sel->key_type = DkimKeyTypeName(rec->type);
  sel->testing = rec->testing();
  sel->revoked = rec->revoked();
  if (rec->revoked()) {
    judge.Add(DkimSeverity::kWarn, "key revoked (empty p=): signatures with this selector fail",
              "sign with another selector, or remove the record once no mail uses it");
    return;
  }
  auto key = DkimPublicKey::FromRecord(*rec);
  if (!key.ok()) {
    judge.Add(DkimSeverity::kFail, fmt::format("key record: {}", key.status().message()),
              "republish p= with the base64 public key from keygen");
    return;
  }
  sel->key_bits = key->bits();
  if (rec->type == DkimKeyType::kRsa) {
    if (key->bits() < 1024) {
      judge.Add(DkimSeverity::kFail,
                fmt::format("RSA key of {} bits: receivers must reject it (RFC 8301)", key->bits()),
                "generate a 2048-bit key: cloudkeep mail dkim keygen --type rsa --bits 2048");
    } else if (key->bits() < 2048) {
      judge.Add(
          DkimSeverity::kWarn,
          fmt::format("RSA key of {} bits: 2048 is the expected minimum", key->bits()),
          "rotate to a 2048-bit key under a new selector: cloudkeep mail dkim keygen --bits 2048");
    } else {
      judge.Add(DkimSeverity::kPass, fmt::format("RSA key of {} bits", key->bits()));
    }
  } else {
    judge.Add(DkimSeverity::kPass, "Ed25519 key (RFC 8463)");
  }
  if (rec->testing())
    judge.Add(DkimSeverity::kWarn, "t=y: the domain is testing DKIM, receivers may ignore failures",
              "remove t=y from the record once signing works");
  if (!rec->allows_email())
    judge.Add(DkimSeverity::kFail, "s= does not include email or *: the key cannot verify mail",
              "remove s= or set s=email");
  if (!rec->allows_sha256())
    judge.Add(DkimSeverity::kFail,
              "h= does not include sha256: no accepted signature can use this key",
              "remove h= or set h=sha256");
}

}  // namespace

const char* DkimSeverityName(DkimSeverity s) {
  switch (s) {
    case DkimSeverity::kPass:
      return "pass";
    case DkimSeverity::kInfo:
      return "info";
    case DkimSeverity::kWarn:
      return "warn";
    case DkimSeverity::kUnknown:
      return "unknown";
    case DkimSeverity::kFail:
      return "fail";
  }
  return "fail";
}

const std::vector<std::string>& CommonDkimSelectors() {
  static const std::vector<std::string> kSelectors = {
      "default", "dkim",  "mail",  "selector1",  "selector2",     "google",
      "k1",      "k2",    "s1",    "s2",         "smtp",          "key1",
      "dkim1",   "mx",    "email", "mandrill",   "everlytickey1", "mxvault",
      "sig1",    "s1024", "s2048", "20230601",   "20221208",      "20161025",
      "fm1",     "fm2",   "fm3",   "protonmail", "zoho",          "amazonses"};
  return kSelectors;
}

DkimCheckReport CheckDkimSelectors(Resolver& resolver, const std::string& domain,
                                   const std::vector<std::string>& selectors) {
  DkimCheckReport report;
  report.domain = domain;
  report.guessed = selectors.empty();
  const std::vector<std::string>& tried = report.guessed ? CommonDkimSelectors() : selectors;
  std::vector<DnsQuestion> questions;
  for (const auto& s : tried) questions.push_back({DkimKeyName(s, domain), RrType::kTXT});
  std::vector<DnsAnswer> answers = resolver.QueryMany(questions, 16);
  bool any_rsa = false, any_ed25519 = false;
  report.tried = static_cast<int>(tried.size());
  std::vector<std::string> failed;
  std::string failure;
  for (size_t i = 0; i < tried.size(); ++i) {
    DkimSelectorReport sel;
    sel.selector = tried[i];
    sel.name = questions[i].name;
    JudgeSelector(domain, answers[i], report.guessed, &report, &sel);
    if (sel.lookup_failed) {
      failed.push_back(sel.selector);
      if (failure.empty())
        failure = std::string(DnsStatusName(answers[i].status)) +
                  (answers[i].error.empty() ? "" : ": " + answers[i].error);
    } else {
      ++report.checked;
    }
    if (report.guessed && !sel.found && !sel.lookup_failed && sel.severity != DkimSeverity::kFail)
      continue;
    if (sel.key_type == "rsa" && !sel.revoked) any_rsa = true;
    if (sel.key_type == "ed25519" && !sel.revoked) any_ed25519 = true;
    report.selectors.push_back(std::move(sel));
  }
  bool none_found = std::none_of(report.selectors.begin(), report.selectors.end(),
                                 [](const DkimSelectorReport& s) { return s.found; });
  // One root cause, one finding: a resolver that does not answer is not a
  // dozen missing keys.
  if (!failed.empty()) {
    std::string names;
    for (size_t i = 0; i < failed.size() && i < 5; ++i) names += (i ? ", " : "") + failed[i];
    if (failed.size() > 5) names += fmt::format(", … ({} more)", failed.size() - 5);
    report.findings.push_back(
        {DkimSeverity::kUnknown, failed.size() == 1 ? failed[0] : "",
         fmt::format("could not check {} of {} selectors: key lookup failed ({}) for {}",
                     failed.size(), tried.size(), failure, names),
         "retry; make the domain's authoritative servers (and the resolver) answer for "
         "_domainkey names"});
  }
  if (report.guessed && none_found && report.checked > 0)
    report.findings.push_back(
        {failed.empty() ? DkimSeverity::kWarn : DkimSeverity::kUnknown, "",
         failed.empty()
             ? fmt::format("no DKIM key found at {} common selectors", CommonDkimSelectors().size())
             : fmt::format("no DKIM key found at the {} of {} common selectors that "
                           "could be checked",
                           report.checked, tried.size()),
         "name the selector your server signs with: --dkim-selector S (it is the s= tag of a "
         "DKIM-Signature)"});
  // RFC 8463 §1: Ed25519 is new; receivers that do not know it see no valid signature.
  if (any_ed25519 && !any_rsa)
    report.findings.push_back(
        {DkimSeverity::kInfo, "",
         "only Ed25519 keys: receivers without RFC 8463 support see no valid signature",
         "sign with an RSA-2048 key as well"});
  for (const auto& f : report.findings) report.severity = std::max(report.severity, f.severity);
  return report;
}

Json DkimCheckToJson(const DkimCheckReport& report) {
  Json doc = {{"domain", report.domain},
              {"selectors_guessed", report.guessed},
              {"selectors_checked", report.checked},
              {"selectors_tried", report.tried},
              {"result", DkimSeverityName(report.severity)},
              {"selectors", Json::array()},
              {"findings", Json::array()}};
  for (const auto& s : report.selectors)
    doc["selectors"].push_back({{"selector", s.selector},
                                {"name", s.name},
                                {"dns_status", s.dns_status},
                                {"found", s.found},
                                {"lookup_failed", s.lookup_failed},
                                {"record", s.record},
                                {"key_type", s.key_type},
                                {"key_bits", s.key_bits},
                                {"testing", s.testing},
                                {"revoked", s.revoked},
                                {"result", DkimSeverityName(s.severity)}});
  for (const auto& f : report.findings)
    doc["findings"].push_back({{"severity", DkimSeverityName(f.severity)},
                               {"selector", f.selector},
                               {"message", f.message},
                               {"fix", f.fix}});
  return doc;
}

}  // namespace cloudkeep::mail
