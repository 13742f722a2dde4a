// The environment variables that change what cloudkeep does, read in one
// place (as LevelDB's Env is the one place it meets the OS): the command line
// reads them once with ReadEnvironment() and passes the values down as
// options, so no module below it calls getenv for them and a test sets an
// option instead of the process environment.
//
// EnvironmentVariables() is the table of every variable cloudkeep reads or
// sets; docs/manual/cloudkeep.md's ENVIRONMENT section documents each entry,
// and marks the test-only ones "Testing only" (env_test checks both). Variables that
// belong to other programs' conventions are read where that convention lives
// and are listed in the table for the manual only (`read_here` false):
// AWS_* by the AWS credential chain (providers/aws), HOME, XDG_* for default
// paths. Until the local store takes them as options, CLOUDKEEP_STORE and
// CLOUDKEEP_CHUNK_SIZE are still read by providers/local/store.cpp, and
// CLOUDKEEP_MAIL_EGRESS_TARGETS by mail/egress.cpp; they are listed too.
//
// Pure functions of the lookup they are given; safe from any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/duration.h"
#include "core/status.h"

namespace cloudkeep {

struct EnvVarInfo {
  std::string_view name;
  bool test_only = false;  // a knob for the test suite, not for operators ("Testing only")
  bool read_here = false;  // parsed by ReadEnvironment (else read where its convention lives)
};

// Every variable cloudkeep reads or sets, in the order the manual lists them.
const std::vector<EnvVarInfo>& EnvironmentVariables();

// The values of the variables ReadEnvironment parses; defaults when unset.
struct Environment {
  int threads = 0;              // CLOUDKEEP_THREADS; 0: one per core
  bool reread = false;          // CLOUDKEEP_REREAD set (to anything)
  Micros test_pause_frozen{0};  // CLOUDKEEP_TEST_PAUSE_FROZEN_MS
  std::string aws_by_id_dir;    // CLOUDKEEP_AWS_BY_ID_DIR; empty: /dev/disk/by-id
  std::string mesh_token;       // CLOUDKEEP_MESH_TOKEN, trimmed; empty: unset
};

// Looks a variable up: nullptr when it is unset. std::getenv by default.
using EnvLookup = std::function<const char*(const char*)>;

// kUsage naming the variable and its bad value, e.g.
// "invalid CLOUDKEEP_THREADS 'many': a whole number from 0 to 1024".
Result<Environment> ReadEnvironment(const EnvLookup& lookup = nullptr);

}  // namespace cloudkeep
