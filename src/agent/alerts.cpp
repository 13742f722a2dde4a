#include "agent/alerts.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/log.h"
#include "core/subprocess.h"

namespace cloudkeep::agent {

namespace {

// A header value on one line: a job name or an error carrying CR or LF must
// not add header fields of its own.
std::string OneLine(std::string s) {
  for (char& c : s)
    if (c == '\r' || c == '\n') c = ' ';
  return s;
}

std::string Rfc5322Date(TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

size_t Discard(char*, size_t size, size_t n, void*) {
  return size * n;
}

}  // namespace

std::string ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  std::string t((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

std::string AlertTarget::Describe() const {
  if (kind == Kind::kWebhook) return "webhook " + url;
  std::string s = "email ";
  for (size_t i = 0; i < to.size(); ++i) s += (i ? ", " : "") + to[i];
  return s;
}

std::string Alert::ToJson() const {
  nlohmann::json j{{"event", event},          {"job", job},     {"kind", kind},
                   {"outcome", outcome},      {"error", error}, {"summary", summary},
                   {"at", FormatRfc3339(at)}, {"host", host}};
  return j.dump();
}

std::string Alert::Subject() const {
  if (event == "recovery") return fmt::format("[cloudkeep] {}: job {} recovered", host, job);
  return fmt::format("[cloudkeep] {}: job {} failed ({})", host, job, outcome);
}

std::string Alert::EmailMessage(const std::string& from, const std::vector<std::string>& to) const {
  std::string rcpt;
  for (size_t i = 0; i < to.size(); ++i) rcpt += (i ? ", " : "") + to[i];
  std::string m;
  m += "From: cloudkeep agent <" + OneLine(from) + ">\r\n";
  m += "To: " + OneLine(rcpt) + "\r\n";
  m += "Subject: " + OneLine(Subject()) + "\r\n";
  m += "Date: " + Rfc5322Date(at) + "\r\n";
  // RFC 3834: no vacation responder answers this.
  m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  m += "\r\n";
  std::string body;
  if (event == "recovery")
    body = fmt::format("Job {} ({}) on {} succeeded again at {}.\n", job, kind, host,
                       FormatRfc3339(at));
  else
    body = fmt::format("Job {} ({}) on {} ended at {}: {}.\n", job, kind, host, FormatRfc3339(at),
                       outcome);
  if (!error.empty()) body += "\nError: " + error + "\n";
  if (!summary.empty()) body += "\nSummary: " + summary + "\n";
  body += "\nThe history: cloudkeep agent history --job " + job + "\n";
  for (char c : body) {
    if (c == '\n')
      m += "\r\n";
    else if (c != '\r')
      m += c;
  }
  return m;
}

std::optional<std::string> AlertEventFor(const std::optional<std::string>& previous,
                                         const std::string& outcome) {
  auto failed = [](const std::string& o) { return o == "failure" || o == "timeout"; };
  if (failed(outcome)) {
    if (previous && failed(*previous)) return std::nullopt;
    return "failure";
  }
  if (outcome == "success" && previous && failed(*previous)) return "recovery";
  return std::nullopt;
}

Micros RetryDelay(const RetryPolicy& p, int attempt, double unit) {
  double cap = static_cast<double>(p.first_backoff.count()) *
               std::ldexp(1.0, std::clamp(attempt - 1, 0, 40));
  cap = std::min(cap, static_cast<double>(p.max_backoff.count()));
  return Micros(static_cast<int64_t>(cap * std::clamp(unit, 0.0, 1.0)));
}

Status SendWebhook(const AlertTarget& t, const Alert& a, Micros timeout) {
  CURL* curl = curl_easy_init();
  if (!curl) return Status::Failure("webhook: cannot start libcurl");
  std::string body = a.ToJson();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!t.bearer_token_file.empty()) {
    std::string token = ReadTokenFile(t.bearer_token_file);
    if (token.empty()) {
      curl_slist_free_all(headers);
      curl_easy_cleanup(curl);
      return Status::Failure(fmt::format("{}: bearer_token_file {} is empty or unreadable",
                                         t.Describe(), t.bearer_token_file));
    }
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  }
  long ms = std::max<long>(1, static_cast<long>(timeout.count() / 1000));
  curl_easy_setopt(curl, CURLOPT_URL, t.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, std::min(ms, 10000L));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK)
    return Status::Failure(fmt::format("{}: {}", t.Describe(), curl_easy_strerror(rc)));
  if (code < 200 || code > 299)
    return Status::Failure(fmt::format("{}: answered HTTP {}", t.Describe(), code));
  return Status::Ok();
}

Status SendEmail(const AlertTarget& t, const Alert& a, Micros timeout) {
  std::string from = t.from;
  if (from.empty()) from = "cloudkeep-agent@" + a.host;
  const char* tmp = std::getenv("TMPDIR");
  std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/cloudkeep-alert-XXXXXX";
  int fd = mkstemp(path.data());
  if (fd < 0) return Status::FromErrno("email alert: cannot create " + path, errno);
  std::string msg = a.EmailMessage(from, t.to);
  bool wrote = ::write(fd, msg.data(), msg.size()) == static_cast<ssize_t>(msg.size());
  ::close(fd);
  if (!wrote) {
    ::unlink(path.c_str());
    return Status::Failure("email alert: cannot write " + path);
  }
  // sendmail reads the message on its standard input; the shell connects the
  // file to it, and every argument stays a separate word (no quoting).
  std::vector<std::string> argv{
      "/bin/sh", "-c", "f=$1; shift; exec \"$@\" <\"$f\"", "sh", path, t.sendmail, "-i", "-f",
      from,      "--"};
  argv.insert(argv.end(), t.to.begin(), t.to.end());
  SubprocessOptions opts;
  opts.timeout = timeout;
  opts.split_stderr = true;
  auto r = RunProcess(argv, opts);
  ::unlink(path.c_str());
  if (!r.ok()) return r.status().Annotate(t.Describe());
  if (!r->success()) {
    std::string err = r->errors;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Status::Failure(fmt::format("{}: {} {}{}", t.Describe(), t.sendmail, r->Describe(),
                                       err.empty() ? "" : ": " + OneLine(err)));
  }
  return Status::Ok();
}

Status SendAlert(const AlertTarget& t, const Alert& a) {
  Micros timeout{std::chrono::seconds(30)};
  return t.kind == AlertTarget::Kind::kWebhook ? SendWebhook(t, a, timeout)
                                               : SendEmail(t, a, timeout);
}

Alerter::Alerter(std::vector<AlertTarget> targets, AlertSender sender, RetryPolicy policy)
    : sender_(std::move(sender)), policy_(policy), targets_(std::move(targets)) {
  thread_ = std::thread([this] { Run(); });
}

Alerter::~Alerter() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Alerter::Post(const Alert& a) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    for (const auto& t : targets_)
      if (t.on.count(a.event))
        queue_.push_back(Delivery{t, a, 0, std::chrono::steady_clock::now()});
  }
  cv_.notify_all();
}

void Alerter::SetTargets(std::vector<AlertTarget> targets) {
  std::lock_guard<std::mutex> l(mu_);
  targets_ = std::move(targets);
}

void Alerter::Drain(Micros limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_until(l, deadline, [&] {
      if (busy_) return false;
      for (const auto& d : queue_)
        if (d.due <= deadline) return false;
      return true;
    });
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Alerter::Stats Alerter::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void Alerter::Run() {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    if (stopping_) {
      for (const auto& d : queue_)
        log::Warn("alert: {} for job {} not delivered to {}: the agent is stopping", d.alert.event,
                  d.alert.job, d.target.Describe());
      stats_.dropped += queue_.size();
      queue_.clear();
      return;
    }
    auto next =
        std::min_element(queue_.begin(), queue_.end(),
                         [](const Delivery& a, const Delivery& b) { return a.due < b.due; });
    if (next == queue_.end()) {
      cv_.wait(l);
      continue;
    }
    if (next->due > std::chrono::steady_clock::now()) {
      cv_.wait_until(l, next->due);
      continue;
    }
    Delivery d = std::move(*next);
    queue_.erase(next);
    busy_ = true;
    l.unlock();
    Status s = sender_(d.target, d.alert);
    l.lock();
    busy_ = false;
    d.attempt++;
    if (s.ok()) {
      stats_.delivered++;
      log::Info("alert: {} for job {} delivered to {}", d.alert.event, d.alert.job,
                d.target.Describe());
    } else {
      stats_.failed_attempts++;
      if (d.attempt >= policy_.max_attempts) {
        stats_.dropped++;
        log::Error("alert: {} for job {} not delivered after {} attempt(s): {}", d.alert.event,
                   d.alert.job, d.attempt, s.message());
      } else {
        Micros wait = RetryDelay(policy_, d.attempt, unit(rng));
        log::Warn("alert: {} (attempt {} of {}); retrying in {}", s.message(), d.attempt,
                  policy_.max_attempts, FormatDuration(wait));
        d.due = std::chrono::steady_clock::now() +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait);
        queue_.push_back(std::move(d));
      }
    }
    cv_.notify_all();
  }
}

}  // namespace cloudkeep::agent
