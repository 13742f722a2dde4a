#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "core/output.h"

namespace cloudkeep::log {

namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mu;
bool g_progress_on_screen = false;

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void SetLevel(Level level) {
  g_level = level;
}
Level GetLevel() {
  return g_level;
}
bool StderrIsTerminal() {
  return isatty(STDERR_FILENO) == 1;
}

void Write(Level level, const std::string& message) {
  if (level > g_level.load()) return;
  static const char* kPrefix[] = {"error: ", "warning: ", "", "debug: "};
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_progress_on_screen) {
    std::fputs("\r\033[K", stderr);
    g_progress_on_screen = false;
  }
  // Messages quote what peers sent (names, SMTP and DNS text, file names):
  // escaped, so none of it can move the cursor or fake a line of its own.
  std::string safe = EscapeControl(message);
  std::fprintf(stderr, "cloudkeep: %s%s\n", kPrefix[static_cast<int>(level)], safe.c_str());
  std::fflush(stderr);
}

Progress::Progress(std::string label)
    : label_(EscapeControl(label)), active_(StderrIsTerminal() && GetLevel() >= Level::kInfo) {}

Progress::~Progress() {
  Finish();
}

void Progress::Update(uint64_t done, uint64_t total) {
  if (!active_) return;
  int64_t now = NowMs();
  if (done < total && now - last_draw_ms_ < 100) return;
  last_draw_ms_ = now;
  std::lock_guard<std::mutex> lock(g_mu);
  double pct = total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
  std::fprintf(stderr, "\r\033[K%s %5.1f%% (%llu/%llu MiB)", label_.c_str(), pct,
               static_cast<unsigned long long>(done >> 20),
               static_cast<unsigned long long>(total >> 20));
  std::fflush(stderr);
  g_progress_on_screen = true;
}

void Progress::Finish() {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_progress_on_screen) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    g_progress_on_screen = false;
  }
  active_ = false;
}

}  // namespace cloudkeep::log
