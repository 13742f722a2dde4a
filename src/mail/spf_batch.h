// Batch SPF evaluation: many "IP SENDER [HELO]" queries (a log replay, a
// mail-flow audit) evaluated concurrently over one Resolver, the results
// delivered in input order. `cloudkeep mail spf --batch` is built on it.
//
// A line that is not a query is an error result for that line, never the
// end of the batch. Input is read in chunks, so memory stays bounded by
// the chunk whatever the size of the input, and a pipe is answered as it
// comes (a chunk at a time).
//
// Thread safety: RunSpfBatch calls the Resolver from up to `concurrency`
// threads at once (it must be thread-safe, as MakeUnboundResolver's is) and
// calls `emit` from one thread at a time.
#pragma once

#include <cstddef>
#include <functional>
#include <istream>
#include <string>
#include <string_view>

#include "core/output.h"
#include "core/status.h"
#include "mail/resolver.h"
#include "mail/spf.h"

namespace cloudkeep::mail {

// One query of a batch. `sender` empty: the HELO identity (RFC 7208 §2.3),
// from a SENDER of "<>" (the null reverse-path of a bounce, §2.4).
struct SpfQuery {
  std::string ip, sender, helo;
};

// "IP SENDER [HELO]", separated by spaces or tabs. SENDER is local@domain, a
// bare domain (as postmaster@domain, §4.3) or "<>" (then HELO is required).
// kUsage naming the bad value otherwise.
Result<SpfQuery> ParseSpfBatchLine(std::string_view line);

// Blank lines and lines starting with '#' are not queries and get no result.
bool IsSpfBatchComment(std::string_view line);

struct SpfBatchResult {
  size_t line = 0;    // 1-based line number in the input
  std::string input;  // the line as read
  Status error;       // not ok: the line is not a query (`outcome` unset)
  SpfQuery query;
  SpfOutcome outcome;
};

struct SpfBatchOptions {
  int concurrency = 32;       // evaluations in flight
  size_t chunk_lines = 4096;  // lines read before they are evaluated
  SpfOptions spf;
};

struct SpfBatchStats {
  size_t queries = 0;  // results emitted, errors included
  size_t errors = 0;   // lines that were not queries
};

// Reads `in` to its end, evaluates every query and calls `emit` once per
// query line, in input order. kFailure when `in` cannot be read.
Result<SpfBatchStats> RunSpfBatch(Resolver& resolver, std::istream& in,
                                  const SpfBatchOptions& options,
                                  const std::function<void(const SpfBatchResult&)>& emit);

// The renderings of one result: a tab-separated line whose first field is
// the result ("pass", …, or "error"), and one JSON object.
std::string SpfBatchResultToText(const SpfBatchResult& result);
Json SpfBatchResultToJson(const SpfBatchResult& result);

}  // namespace cloudkeep::mail
