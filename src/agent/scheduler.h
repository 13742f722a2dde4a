// Which job runs when: the agent's decisions, apart from the running of
// processes, so that tests drive them with a FixedClock and never sleep.
//
// Rules: a slot runs once. When the clock (or an agent that was down) has
// passed several slots of a job, the latest of them runs once and the
// decision says how many were missed, to be logged — a missed slot is never
// skipped silently and never run twice. A clock that goes back repeats no
// slot: the next slot stays after the last one taken. A job still running at
// its next slot skips that slot (a decision, to be logged and recorded); a
// job whose volume another job is snapshotting waits for it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/config.h"

namespace cloudkeep::agent {

struct Decision {
  enum class Kind {
    kStart,      // run `job` for `slot` (`missed` earlier slots were passed over)
    kSkip,       // `job` is still running (or waiting): `slot` does not run
    kWait,       // `job`'s volume is busy with `other`: runs when it is free
    kClockBack,  // the clock went back by `back`; nothing repeats
  };
  Kind kind;
  std::string job;
  TimePoint slot{};
  int missed = 0;
  std::string other;
  std::chrono::microseconds back{0};
};

class Scheduler {
 public:
  // (Re)configures from `config`, with each job's last slot taken (from
  // history; absent for a new job, which then starts at its next slot after
  // `now`). Running and waiting state of jobs that remain is kept.
  void Configure(const AgentConfig& config,
                 const std::map<std::string, std::optional<TimePoint>>& last_slots, TimePoint now);

  std::vector<Decision> Tick(TimePoint now);
  void Finished(const std::string& job);

  bool Running(const std::string& job) const;
  // When the job's next slot is due (slot plus jitter); nullopt for an unknown job.
  std::optional<TimePoint> NextDue(const std::string& job) const;
  std::optional<TimePoint> NextSlot(const std::string& job) const;
  // The earliest time anything may happen: the loop sleeps until then.
  TimePoint EarliestDue() const;
  bool AnyRunning() const;

 private:
  struct State {
    std::string name;
    std::optional<Schedule> schedule;
    std::vector<std::string> locks;
    TimePoint next_slot{};
    bool running = false;
    std::optional<TimePoint> pending;
  };
  const State* LockHolder(const State& s) const;
  std::vector<State> jobs_;
  std::optional<TimePoint> last_now_;
};

}  // namespace cloudkeep::agent
