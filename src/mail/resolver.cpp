#include "mail/resolver.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <thread>

namespace cloudkeep::mail {

const char* RrTypeName(RrType t) {
  switch (t) {
    case RrType::kA:
      return "A";
    case RrType::kNS:
      return "NS";
    case RrType::kCNAME:
      return "CNAME";
    case RrType::kSOA:
      return "SOA";
    case RrType::kPTR:
      return "PTR";
    case RrType::kMX:
      return "MX";
    case RrType::kTXT:
      return "TXT";
    case RrType::kAAAA:
      return "AAAA";
  }
  return "?";
}

const char* DnsStatusName(DnsStatus s) {
  switch (s) {
    case DnsStatus::kOk:
      return "ok";
    case DnsStatus::kNxDomain:
      return "nxdomain";
    case DnsStatus::kNoData:
      return "nodata";
    case DnsStatus::kServFail:
      return "servfail";
    case DnsStatus::kTimeout:
      return "timeout";
  }
  return "?";
}

std::vector<DnsAnswer> Resolver::QueryMany(const std::vector<DnsQuestion>& questions,
                                           int concurrency) {
  std::vector<DnsAnswer> out(questions.size());
  std::atomic<size_t> next{0};
  int n = std::max(1, std::min<int>(concurrency, static_cast<int>(questions.size())));
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < questions.size();)
        out[i] = Query(questions[i].name, questions[i].type);
    });
  }
  for (auto& t : pool) t.join();
  return out;
}

std::optional<MxRecord> ParseMxRecord(const std::string& record) {
  auto sp = record.find(' ');
  if (sp == std::string::npos) return std::nullopt;
  MxRecord mx;
  mx.preference = std::atoi(record.substr(0, sp).c_str());
  mx.host = record.substr(sp + 1);
  while (!mx.host.empty() && mx.host.back() == '.') mx.host.pop_back();
  return mx;
}

namespace {
std::string Key(std::string name) {
  while (!name.empty() && name.back() == '.') name.pop_back();
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}
}  // namespace

void StaticResolver::Add(const std::string& name, RrType type, std::string record) {
  zone_[Key(name)][type].push_back(std::move(record));
}
void StaticResolver::SetTimeout(const std::string& name) {
  failures_[Key(name)] = DnsStatus::kTimeout;
}
void StaticResolver::SetServFail(const std::string& name) {
  failures_[Key(name)] = DnsStatus::kServFail;
}

DnsAnswer StaticResolver::Query(const std::string& name, RrType type) {
  ++queries_;
  DnsAnswer a;
  std::string k = Key(name);
  if (auto f = failures_.find(k); f != failures_.end()) {
    a.status = f->second;
    a.error = DnsStatusName(f->second);
    return a;
  }
  auto it = zone_.find(k);
  if (it == zone_.end()) {
    a.status = DnsStatus::kNxDomain;
    return a;
  }
  auto rt = it->second.find(type);
  if (rt == it->second.end() || rt->second.empty()) {
    a.status = DnsStatus::kNoData;
    return a;
  }
  a.status = DnsStatus::kOk;
  a.records = rt->second;
  a.ttl = 300;
  return a;
}

}  // namespace cloudkeep::mail
