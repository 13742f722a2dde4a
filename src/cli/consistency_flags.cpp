// Consistency flags of `snapshot create`: --freeze, --mysql, --pre, --post and
// their timeouts. Values are parsed here; what they mean lives in
// src/snapshot/consistency.cpp.

#include "cli/app.h"

namespace cloudkeep::cli {

namespace {

// A duration flag stored straight into the options; a bad value is a usage error naming it.
std::function<void(const std::string&)> Duration(Micros* out, const std::string& flag) {
  return [out, flag](const std::string& text) {
    auto d = DurationFlag(text, BareNumber::kSeconds, flag);
    if (!d.ok()) throw CLI::ValidationError(d.status().message());
    *out = *d;
  };
}

}  // namespace

void AddConsistencyFlags(CLI::App* cmd, snapshot::ConsistencyOptions* o) {
  cmd->add_option_function<std::vector<std::string>>(
         "--freeze",
         [o](const std::vector<std::string>& mounts) {
           o->freeze = true;
           for (const auto& m : mounts)
             if (!m.empty()) o->freeze_mountpoints.push_back(m);
         },
         "Freeze filesystems (FIFREEZE) during the capture; bare: every mountpoint of the volumes. "
         "Put VOLUMEs before --freeze, or end its list with --")
      ->expected(0, -1)
      ->type_name("[MOUNTPOINT...]");
  cmd->add_flag("--freeze-root", o->freeze_root, "Allow freezing / (refused otherwise)");
  cmd->add_option_function<std::string>(
         "--freeze-timeout", Duration(&o->freeze_timeout, "--freeze-timeout"),
         "Watchdog thaws after DUR and the run fails (default 10s; bare number: s)")
      ->type_name("DUR");
  cmd->add_flag("--mysql", o->mysql,
                "Lock MySQL/MariaDB during the capture and record binlog/replica positions");
  cmd->add_option("--mysql-defaults-file", o->mysql_defaults_file,
                  "my.cnf with the [client] connection (socket or host/port, user, password); "
                  "default ~/.my.cnf")
      ->type_name("FILE");
  cmd->add_option(
         "--mysql-lock", o->mysql_lock,
         "flush: FLUSH TABLES WITH READ LOCK (default); backup-stage: MariaDB >= 10.4 BACKUP STAGE "
         "BLOCK_COMMIT, lighter for InnoDB")
      ->check(CLI::IsMember({"flush", "backup-stage"}))
      ->type_name("MODE");
  cmd->add_option_function<std::string>(
         "--lock-timeout", Duration(&o->lock_timeout, "--lock-timeout"),
         "Give each lock attempt DUR, then KILL QUERY it (default 5s)")
      ->type_name("DUR");
  cmd->add_option("--lock-tries", o->lock_tries, "Lock attempts before the run fails (default 3)")
      ->check(CLI::Range(1, 100))
      ->type_name("N");
  cmd->add_option("--mysql-status-file", o->mysql_status_file,
                  "Write the recorded positions (JSON) to PATH inside the snapshotted filesystem "
                  "before the freeze")
      ->type_name("PATH");
  // One command per --pre/--post, so that a VOLUME after it is not taken for a second hook.
  cmd->add_option("--pre", o->pre_hooks,
                  "Shell command to run before locking and freezing (repeatable, run in order; a "
                  "failure stops the run)")
      ->allow_extra_args(false)
      ->type_name("CMD");
  cmd->add_option("--post", o->post_hooks,
                  "Shell command to run after the thaw, also after a failure (repeatable, run in "
                  "reverse order)")
      ->allow_extra_args(false)
      ->type_name("CMD");
  cmd->add_option_function<std::string>(
         "--hook-timeout", Duration(&o->hook_timeout, "--hook-timeout"),
         "Kill a hook and everything it started after DUR (default 60s)")
      ->type_name("DUR");
}

}  // namespace cloudkeep::cli
