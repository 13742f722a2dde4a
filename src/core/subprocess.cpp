#include "core/subprocess.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/duration.h"

extern char** environ;

namespace cloudkeep {

std::string SubprocessResult::Describe() const {
  if (timed_out) return "timed out after " + FormatDuration(elapsed);
  if (signal) return fmt::format("killed by signal {}", signal);
  return fmt::format("exited with status {}", exit_code);
}

Result<SubprocessResult> RunProcess(const std::vector<std::string>& argv,
                                    const SubprocessOptions& opts) {
  using clock = std::chrono::steady_clock;
  if (argv.empty()) return Status::Usage("empty command");
  int pipefd[2] = {-1, -1};
  int errfd[2] = {-1, -1};
  if (opts.capture && ::pipe2(pipefd, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  if (opts.capture && opts.split_stderr && ::pipe2(errfd, O_CLOEXEC) != 0) {
    int err = errno;
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return Status::FromErrno("pipe", err);
  }

  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  for (const auto& e : opts.extra_env) env_store.push_back(e);
  std::vector<char*> envp, args;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);

  auto start = clock::now();
  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid == 0) {
    ::setpgid(0, 0);
    // A clean start: a daemon that blocks signals for sigtimedwait, or ignores
    // SIGPIPE, must not hand that to its commands (exec keeps both).
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (opts.capture) {
      ::dup2(pipefd[1], STDOUT_FILENO);
      ::dup2(errfd[1] >= 0 ? errfd[1] : pipefd[1], STDERR_FILENO);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execvpe(args[0], args.data(), envp.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  SubprocessResult r;
  if (opts.capture) ::close(pipefd[1]);
  if (errfd[1] >= 0) ::close(errfd[1]);
  bool killed = false;
  int status = 0;
  for (;;) {
    int wait_ms = 100;
    if (opts.cancel && opts.cancel->load() && !killed) {
      ::kill(-pid, SIGKILL);
      killed = true;
      r.cancelled = true;
    }
    if (opts.timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(start + opts.timeout -
                                                                        clock::now());
      if (left.count() <= 0 && !killed) {
        ::kill(-pid, SIGKILL);
        killed = true;
        r.timed_out = true;
      }
      wait_ms = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(100, left.count())));
    }
    if (opts.capture && (pipefd[0] >= 0 || errfd[0] >= 0)) {
      struct pollfd p[2] = {{pipefd[0], POLLIN, 0}, {errfd[0], POLLIN, 0}};
      int pr = ::poll(p, 2, wait_ms);
      bool got = false;
      for (int k = 0; pr > 0 && k < 2; ++k) {
        if (!p[k].revents) continue;
        int& fd = k == 0 ? pipefd[0] : errfd[0];
        std::string& sink = k == 0 ? r.output : r.errors;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
          if (sink.size() < 65536) sink.append(buf, static_cast<size_t>(n));
          got = true;
        } else if (n == 0) {
          ::close(fd);
          fd = -1;
        }
      }
      if (got) continue;
    } else {
      ::usleep(static_cast<useconds_t>(std::min(wait_ms, 10)) * 1000);
    }
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
  }
  if (pipefd[0] >= 0) ::close(pipefd[0]);
  if (errfd[0] >= 0) ::close(errfd[0]);
  // Whatever the command left running in its group goes with it.
  ::kill(-pid, SIGKILL);
  r.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status) && !r.timed_out && !r.cancelled) r.signal = WTERMSIG(status);
  return r;
}

Result<SubprocessResult> RunShell(const std::string& command, const SubprocessOptions& opts) {
  return RunProcess({"/bin/sh", "-c", command}, opts);
}

}  // namespace cloudkeep
