// Where an encrypted store's password comes from: a file, named by
// `--password-file FILE` or, when that flag is absent, by the environment
// variable CLOUDKEEP_PASSWORD_FILE. Never from a command-line argument, where
// every user of the machine could read it in /proc/PID/cmdline.
//
// The file holds the password; one trailing newline ("\n" or "\r\n", as an
// editor or `echo` leaves it) is not part of it, any other byte is. An empty
// password, a file larger than kMaxPasswordFileBytes and an unreadable file
// are one-line usage errors naming the file.
//
// Pure function of its arguments and the file; safe from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "core/env.h"
#include "core/status.h"

namespace cloudkeep::seal {

inline constexpr const char* kPasswordFileVariable = "CLOUDKEEP_PASSWORD_FILE";
inline constexpr size_t kMaxPasswordFileBytes = 4096;

// `flag_file` is the value of --password-file if it was given (it wins over
// the variable); `lookup` reads the environment (std::getenv when null).
// kUsage "no password: give --password-file FILE or set
// CLOUDKEEP_PASSWORD_FILE" when neither names a file.
Result<std::string> ReadPassword(const std::optional<std::string>& flag_file,
                                 const EnvLookup& lookup = nullptr);

}  // namespace cloudkeep::seal
