#include "agent/scheduler.h"

#include <algorithm>

namespace cloudkeep::agent {

namespace {

// Slots passed over are counted one by one up to this many (a cron job is at
// most one a minute: 69 days); beyond it the count is a lower bound.
constexpr int kMaxCatchUp = 100000;

bool Overlap(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.empty() || b.empty()) return false;
  for (const auto& x : a)
    for (const auto& y : b)
      if (x == y || x == "*" || y == "*") return true;
  return false;
}

}  // namespace

void Scheduler::Configure(const AgentConfig& config,
                          const std::map<std::string, std::optional<TimePoint>>& last_slots,
                          TimePoint now) {
  std::vector<State> next;
  for (const auto& j : config.jobs) {
    State s;
    s.name = j.name;
    s.schedule = j.schedule;
    s.locks = j.locks;
    for (const auto& old : jobs_)
      if (old.name == j.name) {
        s.running = old.running;
        s.pending = old.pending;
      }
    auto it = last_slots.find(j.name);
    std::optional<TimePoint> last = it == last_slots.end() ? std::nullopt : it->second;
    s.next_slot = last ? s.schedule->Next(*last) : s.schedule->Next(now);
    next.push_back(std::move(s));
  }
  jobs_ = std::move(next);
}

const Scheduler::State* Scheduler::LockHolder(const State& s) const {
  for (const auto& o : jobs_)
    if (&o != &s && o.running && Overlap(s.locks, o.locks)) return &o;
  return nullptr;
}

std::vector<Decision> Scheduler::Tick(TimePoint now) {
  std::vector<Decision> out;
  if (last_now_ && now < *last_now_ - std::chrono::seconds(1)) {
    Decision d{Decision::Kind::kClockBack, "", {}, 0, "", {}};
    d.back = std::chrono::duration_cast<std::chrono::microseconds>(*last_now_ - now);
    out.push_back(d);
  }
  last_now_ = now;
  for (auto& s : jobs_) {
    if (s.pending && !s.running) {
      if (!LockHolder(s)) {
        out.push_back({Decision::Kind::kStart, s.name, *s.pending, 0, "", {}});
        s.running = true;
        s.pending.reset();
      }
    }
    if (now < s.schedule->DueAt(s.name, s.next_slot)) continue;
    TimePoint slot = s.next_slot;
    int missed = 0;
    for (; missed < kMaxCatchUp; ++missed) {
      TimePoint n = s.schedule->Next(slot);
      if (s.schedule->DueAt(s.name, n) > now) break;
      slot = n;
    }
    s.next_slot = s.schedule->Next(slot);
    if (s.next_slot <= now) s.next_slot = s.schedule->Next(now);  // beyond kMaxCatchUp
    if (s.running || s.pending) {
      out.push_back({Decision::Kind::kSkip, s.name, slot, missed, "", {}});
    } else if (const State* holder = LockHolder(s)) {
      s.pending = slot;
      out.push_back({Decision::Kind::kWait, s.name, slot, missed, holder->name, {}});
    } else {
      out.push_back({Decision::Kind::kStart, s.name, slot, missed, "", {}});
      s.running = true;
    }
  }
  return out;
}

void Scheduler::Finished(const std::string& job) {
  for (auto& s : jobs_)
    if (s.name == job) s.running = false;
}

bool Scheduler::Running(const std::string& job) const {
  for (const auto& s : jobs_)
    if (s.name == job) return s.running;
  return false;
}

bool Scheduler::AnyRunning() const {
  return std::any_of(jobs_.begin(), jobs_.end(), [](const State& s) { return s.running; });
}

std::optional<TimePoint> Scheduler::NextDue(const std::string& job) const {
  for (const auto& s : jobs_)
    if (s.name == job) return s.schedule->DueAt(s.name, s.next_slot);
  return std::nullopt;
}

std::optional<TimePoint> Scheduler::NextSlot(const std::string& job) const {
  for (const auto& s : jobs_)
    if (s.name == job) return s.next_slot;
  return std::nullopt;
}

TimePoint Scheduler::EarliestDue() const {
  TimePoint t = TimePoint::max();
  for (const auto& s : jobs_) t = std::min(t, s.schedule->DueAt(s.name, s.next_slot));
  return t;
}

}  // namespace cloudkeep::agent
