// Alerts: what the agent tells a person when a job starts failing and when
// it recovers. Alertmanager's habit: an alert on each change of state, not
// on every failed run, so an hourly job that stays broken sends one message
// and the one that says it works again.
//
// Targets are [[alert]] tables in the agent's config: a webhook (a JSON POST
// over HTTP or HTTPS through libcurl, an optional bearer token) or email
// through the local mail transfer agent's sendmail(1) interface (Postfix,
// exim and OpenSMTPD all provide it), so queueing and retrying delivery to
// the mail server stay the MTA's job.
//
// A delivery that fails is retried with capped exponential backoff and full
// jitter; one that still fails after max_attempts is logged and dropped. No
// delivery ever blocks a job: Alerter::Post queues and returns.
//
// Thread safety: Alerter's methods may be called from any thread. The free
// functions are pure or touch only their arguments.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/duration.h"
#include "core/status.h"

namespace cloudkeep::agent {

struct AlertTarget {
  enum class Kind { kWebhook, kEmail };
  Kind kind = Kind::kWebhook;
  std::string url;                // webhook
  std::string bearer_token_file;  // webhook, optional
  std::vector<std::string> to;    // email
  std::string from;               // email; "" means cloudkeep-agent@<host name>
  std::string sendmail = "/usr/sbin/sendmail";
  std::set<std::string> on{"failure", "recovery"};  // which events this target takes
  int line = 0;
  // "webhook URL" or "email a@b, c@d": how logs name the target (never the token).
  std::string Describe() const;
};

// One change of a job's state.
struct Alert {
  std::string event;  // "failure" or "recovery"
  std::string job, kind, outcome, error, summary;
  TimePoint at;
  std::string host;
  std::string ToJson() const;
  std::string Subject() const;
  // An RFC 5322 message, CRLF line ends, for sendmail -i.
  std::string EmailMessage(const std::string& from, const std::vector<std::string>& to) const;
};

// The event a finished run raises given the outcome of the job's previous
// finished run (nullopt: none). "failure" and "timeout" are failures;
// "interrupted" (the agent stopped) and "skipped" raise nothing.
std::optional<std::string> AlertEventFor(const std::optional<std::string>& previous,
                                         const std::string& outcome);

struct RetryPolicy {
  int max_attempts = 6;
  Micros first_backoff{std::chrono::seconds(1)};
  Micros max_backoff{std::chrono::seconds(60)};
};
// The wait before retry `attempt` (1 for the first retry): full jitter, a
// uniform draw in [0, min(max, first × 2^(attempt-1))], `unit` in [0, 1).
Micros RetryDelay(const RetryPolicy& p, int attempt, double unit);

// A token file's text without its trailing newline ("" when unreadable).
std::string ReadTokenFile(const std::string& path);

using AlertSender = std::function<Status(const AlertTarget&, const Alert&)>;
// The real senders. A webhook is done when it answers 2xx within `timeout`;
// email when sendmail exits 0 (the MTA has queued it).
Status SendWebhook(const AlertTarget& t, const Alert& a, Micros timeout);
Status SendEmail(const AlertTarget& t, const Alert& a, Micros timeout);
Status SendAlert(const AlertTarget& t, const Alert& a);

class Alerter {
 public:
  // Starts the delivery thread. `sender` is SendAlert outside tests.
  Alerter(std::vector<AlertTarget> targets, AlertSender sender, RetryPolicy policy = {});
  ~Alerter();
  Alerter(const Alerter&) = delete;
  Alerter& operator=(const Alerter&) = delete;

  // Queues `a` for every target that takes its event; returns at once.
  void Post(const Alert& a);
  // The targets after a config reload; queued deliveries keep their old target.
  void SetTargets(std::vector<AlertTarget> targets);
  // Waits up to `limit` for the queue to empty (a retry due later than the
  // limit is not waited for), then stops; what is left is logged as dropped.
  void Drain(Micros limit);

  struct Stats {
    uint64_t delivered = 0, failed_attempts = 0, dropped = 0;
  };
  Stats stats() const;

 private:
  struct Delivery {
    AlertTarget target;
    Alert alert;
    int attempt = 0;
    std::chrono::steady_clock::time_point due;
  };
  void Run();

  AlertSender sender_;
  RetryPolicy policy_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<AlertTarget> targets_;
  std::deque<Delivery> queue_;
  bool stopping_ = false;
  bool busy_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace cloudkeep::agent
