// The openspf.org conformance suites (RFC 7208 and RFC 4408 editions) run
// against the SpfEvaluator with each scenario's zone data served in-process,
// following tests/conformance/spf/DRIVER.md.
//
// The suites are YAML; there is no YAML library among the project's Debian
// build dependencies, so the test converts them to JSON with Debian's
// /usr/bin/python3 and python3-yaml (both in scripts/install-deps.sh test).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/output.h"
#include "mail/spf.h"

namespace cloudkeep::mail {
namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Zone data of one scenario with the driver conventions of DRIVER.md.
class ScenarioResolver : public Resolver {
 public:
  explicit ScenarioResolver(const Json& zonedata) {
    for (const auto& [name, entries] : zonedata.items()) {
      auto& z = zone_[Key(name)];
      for (const auto& e : entries) z.push_back(e);
    }
  }

  DnsAnswer Query(const std::string& qname, RrType type) override { return Query(qname, type, 0); }

  DnsAnswer Query(const std::string& qname, RrType type, int depth) {
    DnsAnswer a;
    std::string name = Key(qname);
    std::string tname = RrTypeName(type);
    auto it = zone_.find(name);
    if (it == zone_.end()) {
      a.status = name.rfind("error.", 0) == 0 ? DnsStatus::kTimeout : DnsStatus::kNxDomain;
      return a;
    }
    bool has_txt = false;
    for (const auto& e : it->second)
      if (e.is_object() && e.contains("TXT")) has_txt = true;
    bool nodata_marker = false;
    for (const auto& e : it->second) {
      if (e.is_string()) {
        if (e.get<std::string>() == "TIMEOUT" && a.records.empty()) {
          a.status = DnsStatus::kTimeout;
          a.error = "timeout";
          a.records.clear();
          return a;
        }
        continue;
      }
      for (const auto& [t, v] : e.items()) {
        std::string rt = t;
        if (rt == "SPF" && type == RrType::kTXT && !has_txt) rt = "TXT";
        if (rt != tname) continue;
        if (v.is_string() && v.get<std::string>() == "TIMEOUT") {
          a.status = DnsStatus::kTimeout;
          a.error = "timeout";
          a.records.clear();
          return a;
        }
        if (v.is_string() && v.get<std::string>() == "NONE") {
          nodata_marker = true;
          continue;
        }
        if (type == RrType::kMX) {
          std::string host = v[1].get<std::string>();
          if (!host.empty() && host.back() == '.') host.pop_back();
          a.records.push_back(std::to_string(v[0].get<int>()) + " " + host);
        } else if (v.is_array()) {
          std::string joined;
          for (const auto& s : v) joined += s.get<std::string>();
          a.records.push_back(joined);
        } else {
          std::string s = v.get<std::string>();
          if ((type == RrType::kPTR || type == RrType::kCNAME) && !s.empty() && s.back() == '.')
            s.pop_back();
          a.records.push_back(s);
        }
      }
    }
    (void)nodata_marker;
    if (a.records.empty() && type != RrType::kCNAME && depth < 8) {
      // Follow an alias as a recursive resolver would.
      DnsAnswer alias = Query(name, RrType::kCNAME, depth + 1);
      if (alias.ok()) return Query(alias.records[0], type, depth + 1);
    }
    a.status = a.records.empty() ? DnsStatus::kNoData : DnsStatus::kOk;
    return a;
  }

 private:
  static std::string Key(std::string n) {
    while (!n.empty() && n.back() == '.') n.pop_back();
    return Lower(n);
  }
  std::map<std::string, std::vector<Json>> zone_;
};

std::filesystem::path SuiteDir() {
  return std::filesystem::path(CK_SOURCE_DIR) / "tests" / "conformance" / "spf";
}

Json LoadYaml(const std::filesystem::path& file) {
  std::string cmd =
      "/usr/bin/python3 -c 'import json,sys,yaml; "
      "print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))' '" +
      file.string() + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return Json();
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) return Json();
  return Json::parse(out);
}

struct SuiteStats {
  int total = 0;
  std::vector<std::string> failures;
};

SuiteStats RunSuite(const std::string& file, const std::set<std::string>& known_differences) {
  SuiteStats stats;
  auto path = SuiteDir() / file;
  // The suites are part of the repository: missing means a broken checkout, never a skip.
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "conformance suite missing: " << path;
    return stats;
  }
  Json docs = LoadYaml(path);
  if (!docs.is_array() || docs.empty()) {
    ADD_FAILURE() << "cannot load " << path << " (needs /usr/bin/python3 with python3-yaml)";
    return stats;
  }
  for (const auto& scenario : docs) {
    if (!scenario.is_object() || !scenario.contains("tests")) continue;
    ScenarioResolver resolver(scenario.contains("zonedata") && scenario["zonedata"].is_object()
                                  ? scenario["zonedata"]
                                  : Json::object());
    SpfOptions options;
    options.default_explanation = "DEFAULT";
    options.now = 1200000000;
    SpfEvaluator eval(resolver, options);
    for (const auto& [name, t] : scenario["tests"].items()) {
      ++stats.total;
      std::vector<std::string> want;
      if (t["result"].is_array())
        for (const auto& r : t["result"]) want.push_back(r.get<std::string>());
      else
        want.push_back(t["result"].get<std::string>());
      std::string mailfrom = t.value("mailfrom", "");
      std::string helo = t.value("helo", "");
      SpfOutcome o = eval.Check(t["host"].get<std::string>(), mailfrom, helo);
      std::string got = SpfResultName(o.result);
      bool ok = std::find(want.begin(), want.end(), got) != want.end();
      std::string why;
      if (!ok) why = "result " + got + " (" + o.problem + ")";
      if (ok && t.contains("explanation") && got == "fail" &&
          o.explanation != t["explanation"].get<std::string>()) {
        ok = false;
        why = "explanation '" + o.explanation + "'";
      }
      if (!ok && !known_differences.count(name))
        stats.failures.push_back(name + ": want " + Json(want).dump() + ", got " + why +
                                 " mechanism '" + o.mechanism + "'");
    }
  }
  return stats;
}

TEST(SpfConformance, Rfc7208) {
  SuiteStats s = RunSuite("rfc7208-tests.yml", {});
  if (s.total == 0) return;
  EXPECT_EQ(s.total, 203);
  for (const auto& f : s.failures) ADD_FAILURE() << f;
}

// Where RFC 7208 changed a rule of RFC 4408, cloudkeep follows RFC 7208.
TEST(SpfConformance, Rfc4408) {
  const std::set<std::string> kKnownDifferences = {};
  SuiteStats s = RunSuite("rfc4408-tests.yml", kKnownDifferences);
  if (s.total == 0) return;
  EXPECT_EQ(s.total, 191);
  for (const auto& f : s.failures) ADD_FAILURE() << f;
}

}  // namespace
}  // namespace cloudkeep::mail
