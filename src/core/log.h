// Logging to stderr.
//
// stdout belongs to results (tables or one JSON document); everything else —
// progress, warnings, debug — goes to stderr through these functions.
// Verbosity is process-wide: -q shows only errors and warnings, default adds
// info, -v adds debug. Progress lines are drawn only when stderr is a
// terminal, so cron mail stays clean. Safe to call from several threads.
#pragma once

#include <fmt/format.h>

#include <string>

namespace cloudkeep::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void SetLevel(Level level);
Level GetLevel();
bool StderrIsTerminal();

void Write(Level level, const std::string& message);

template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Warn(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Debug(fmt::format_string<Args...> f, Args&&... args) {
  if (GetLevel() >= Level::kDebug)
    Write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}

// A progress line that redraws itself in place on a terminal and prints
// nothing otherwise. Finish() clears it.
class Progress {
 public:
  explicit Progress(std::string label);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void Update(uint64_t done, uint64_t total);
  void Finish();

 private:
  std::string label_;
  bool active_;
  int64_t last_draw_ms_ = 0;
};

}  // namespace cloudkeep::log
