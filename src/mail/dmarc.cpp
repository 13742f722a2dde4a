#include "mail/dmarc.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <unordered_set>

namespace cloudkeep::mail {

namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

struct SuffixList {
  std::unordered_set<std::string> rules, wildcards, exceptions;
  bool loaded = false;
};

const SuffixList& Psl() {
  static SuffixList list;
  static std::once_flag once;
  std::call_once(once, [] {
    std::ifstream in("/usr/share/publicsuffix/public_suffix_list.dat");
    std::string line;
    while (std::getline(in, line)) {
      line = Trim(line);
      if (line.empty() || line.rfind("//", 0) == 0) continue;
      auto sp = line.find_first_of(" \t");
      if (sp != std::string::npos) line.erase(sp);
      line = Lower(line);
      if (line.rfind("!", 0) == 0)
        list.exceptions.insert(line.substr(1));
      else if (line.rfind("*.", 0) == 0)
        list.wildcards.insert(line.substr(2));
      else
        list.rules.insert(line);
      list.loaded = true;
    }
  });
  return list;
}

}  // namespace

std::string OrganizationalDomain(const std::string& domain_in) {
  std::string domain = Lower(domain_in);
  while (!domain.empty() && domain.back() == '.') domain.pop_back();
  auto labels = Split(domain, '.');
  const SuffixList& psl = Psl();
  size_t suffix_labels = 1;  // the implicit "*" rule
  if (psl.loaded) {
    // The longest matching public suffix (publicsuffix.org algorithm).
    for (size_t i = 0; i < labels.size(); ++i) {
      std::string cand;
      for (size_t j = i; j < labels.size(); ++j) cand += (j > i ? "." : "") + labels[j];
      size_t n = labels.size() - i;
      if (psl.exceptions.count(cand)) {
        suffix_labels = std::max(suffix_labels, n - 1);
        break;
      }
      if (psl.rules.count(cand)) suffix_labels = std::max(suffix_labels, n);
      if (i + 1 < labels.size()) {
        std::string parent = cand.substr(cand.find('.') + 1);
        if (psl.wildcards.count(parent)) suffix_labels = std::max(suffix_labels, n);
      }
    }
  }
  if (labels.size() <= suffix_labels) return domain;
  std::string out;
  for (size_t j = labels.size() - suffix_labels - 1; j < labels.size(); ++j)
    out += (out.empty() ? "" : ".") + labels[j];
  return out;
}

bool DmarcAligned(const std::string& identifier, const std::string& from_domain, bool strict) {
  std::string a = Lower(identifier), b = Lower(from_domain);
  while (!a.empty() && a.back() == '.') a.pop_back();
  while (!b.empty() && b.back() == '.') b.pop_back();
  if (a.empty() || b.empty()) return false;
  if (strict) return a == b;
  return OrganizationalDomain(a) == OrganizationalDomain(b);
}

bool ParseDmarcRecord(const std::string& text, DmarcRecord* out, std::string* error) {
  *out = DmarcRecord{};
  auto parts = Split(text, ';');
  // §6.4: v=DMARC1 must be the first tag, exactly.
  if (parts.empty() || Trim(parts[0]) != "v=DMARC1") {
    *error = "the record does not start with v=DMARC1";
    return false;
  }
  bool have_p = false, bad_p = false;
  std::vector<std::string> seen;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string kv = Trim(parts[i]);
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      *error = fmt::format("'{}' is not a tag=value pair", kv);
      return false;
    }
    std::string k = Lower(Trim(kv.substr(0, eq))), v = Trim(kv.substr(eq + 1));
    // A tag given twice has no defined meaning: receivers (OpenDMARC among
    // them) reject the record rather than guess which one counts.
    if (std::find(seen.begin(), seen.end(), k) != seen.end()) {
      *error = fmt::format("the {}= tag appears more than once", k);
      return false;
    }
    // §6.4's grammar puts p= right after v= (and §6.3: v= first, p= next);
    // a record with p= elsewhere does not match it and is ignored.
    if (k == "p" && !seen.empty()) {
      *error = fmt::format(
          "p= must be the second tag, right after v=DMARC1 (RFC 7489 §6.4), not "
          "after {}=",
          seen.back());
      return false;
    }
    seen.push_back(k);
    std::string lv = Lower(v);
    if (k == "p" || k == "sp") {
      bool valid = lv == "none" || lv == "quarantine" || lv == "reject";
      if (k == "p") {
        have_p = true;
        if (!valid)
          bad_p = true;
        else
          out->policy = lv;
      } else if (valid) {
        out->subdomain_policy = lv;
      }
    } else if (k == "pct") {
      if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(v) > 100) {
        *error = fmt::format("pct '{}' is not 0-100", v);
        return false;
      }
      out->pct = std::stoi(v);
    } else if (k == "rua" || k == "ruf") {
      auto& list = k == "rua" ? out->rua : out->ruf;
      for (const auto& u : Split(v, ','))
        if (!Trim(u).empty()) list.push_back(Trim(u));
    } else if (k == "adkim" || k == "aspf") {
      if (lv != "r" && lv != "s") {
        *error = fmt::format("{} '{}' is neither r nor s", k, v);
        return false;
      }
      (k == "adkim" ? out->adkim : out->aspf) = lv[0];
    } else if (k == "fo") {
      out->fo = v;
    } else if (k == "ri") {
      if (v.empty() || v.size() > 10 || v.find_first_not_of("0123456789") != std::string::npos) {
        *error = fmt::format("ri '{}' is not a number of seconds", v);
        return false;
      }
      out->ri = std::stol(v);
    }
    // Unknown tags are ignored (§6.3).
  }
  if (!have_p || bad_p) {
    // §6.6.3: a record without a valid p= still counts, as p=none, when it
    // has a rua to report to.
    if (out->rua.empty()) {
      *error = have_p ? "p= is not none, quarantine or reject" : "the record has no p= tag";
      return false;
    }
    out->policy = "none";
  }
  return true;
}

std::string DmarcLookup::effective_policy() const {
  if (!record) return "";
  bool subdomain = !record_domain.empty() && record_domain != domain;
  if (subdomain && !record->subdomain_policy.empty()) return record->subdomain_policy;
  return record->policy;
}

DmarcLookup LookupDmarc(Resolver& resolver, const std::string& domain_in) {
  using S = LintFinding::Severity;
  DmarcLookup l;
  l.domain = Lower(domain_in);
  while (!l.domain.empty() && l.domain.back() == '.') l.domain.pop_back();
  l.org_domain = OrganizationalDomain(l.domain);
  std::vector<std::string> candidates = {l.domain};
  if (l.org_domain != l.domain) candidates.push_back(l.org_domain);
  for (const auto& d : candidates) {
    DnsAnswer a = resolver.Query("_dmarc." + d, RrType::kTXT);
    if (a.status == DnsStatus::kServFail || a.status == DnsStatus::kTimeout) {
      l.dns_error = true;
      l.problem = fmt::format("could not check: TXT lookup of _dmarc.{} failed ({}{})", d,
                              DnsStatusName(a.status), a.error.empty() ? "" : ": " + a.error);
      l.findings.push_back({S::kUnknown, l.problem});
      return l;
    }
    std::vector<std::string> recs;
    for (const auto& r : a.records) {
      if (r.rfind("v=DMARC1", 0) == 0) {
        recs.push_back(r);
      } else if (Lower(r).find("v=dmarc1") != std::string::npos) {
        // Meant as DMARC, but receivers skip a record that does not start
        // with exactly "v=DMARC1" (§6.3, §6.6.3 step 4): say so.
        std::string shown = r.substr(0, 80);
        if (shown.size() < r.size()) shown.append("...");
        LintFinding& f = l.findings.emplace_back();
        f.severity = S::kFail;
        f.message = fmt::format(
            "the TXT record at _dmarc.{} (\"{}\") is ignored by receivers: it must start with "
            "v=DMARC1 (v= first, p= second)",
            d, shown);
        if (l.problem.empty()) {
          l.problem = l.findings.back().message;
          l.record_domain = d;
          l.text = r;
        }
      }
    }
    if (recs.empty()) {
      if (!l.problem.empty()) return l;
      continue;
    }
    l.record_domain = d;
    if (recs.size() > 1) {
      // §6.6.3 step 5: several records mean no DMARC for the domain.
      l.problem =
          fmt::format("_dmarc.{} has {} DMARC records; receivers ignore them all", d, recs.size());
      l.findings.push_back({S::kFail, l.problem});
      return l;
    }
    l.text = recs[0];
    DmarcRecord rec;
    std::string err;
    if (!ParseDmarcRecord(recs[0], &rec, &err)) {
      l.problem = fmt::format("the DMARC record at _dmarc.{} is invalid: {}", d, err);
      l.findings.push_back({S::kFail, l.problem});
      return l;
    }
    l.record = rec;
    break;
  }
  if (!l.record) {
    if (l.problem.empty()) {
      l.problem = fmt::format("no DMARC record at _dmarc.{}{}", l.domain,
                              l.org_domain != l.domain ? " or _dmarc." + l.org_domain : "");
      l.findings.push_back(
          {S::kFail, l.problem + ": publish \"v=DMARC1; p=none; rua=mailto:…\" to start"});
    }
    return l;
  }
  const DmarcRecord& r = *l.record;
  std::string p = l.effective_policy();
  if (p == "none")
    l.findings.push_back(
        {S::kWarn, "policy none: receivers only report, nothing is quarantined or rejected"});
  else
    l.findings.push_back({S::kOk, fmt::format("policy {}", p)});
  if (r.pct < 100)
    l.findings.push_back(
        {S::kWarn,
         fmt::format("pct={}: the policy applies to {}% of failing mail only", r.pct, r.pct)});
  if (r.rua.empty()) l.findings.push_back({S::kWarn, "no rua=: nobody receives aggregate reports"});
  for (const auto& u : r.rua)
    if (Lower(u).rfind("mailto:", 0) != 0)
      l.findings.push_back({S::kWarn, fmt::format("rua '{}' is not a mailto: URI", u)});
  return l;
}

DmarcEvaluation EvaluateDmarc(const DmarcRecord& rec, const std::string& from_domain, bool spf_pass,
                              const std::string& spf_domain,
                              const std::vector<std::string>& dkim_pass_domains) {
  DmarcEvaluation e;
  e.spf_aligned = spf_pass && DmarcAligned(spf_domain, from_domain, rec.aspf == 's');
  for (const auto& d : dkim_pass_domains)
    if (DmarcAligned(d, from_domain, rec.adkim == 's')) e.dkim_aligned = true;
  return e;
}

}  // namespace cloudkeep::mail
