#include "mail/spf_batch.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "core/strings.h"

namespace cloudkeep::mail {

namespace {

// Fields separated by runs of spaces or tabs; a CR before the line end (a
// file written on Windows) is not part of the last field.
std::vector<std::string> Fields(std::string_view line) {
  std::vector<std::string> out;
  for (const std::string& f : Split(TrimView(line), ' '))
    for (const std::string& g : Split(f, '\t'))
      if (!g.empty()) out.push_back(g);
  return out;
}

struct PendingLine {
  size_t number = 0;
  std::string text;
};

// Up to `max` query lines (comments skipped, their numbers counted).
std::vector<PendingLine> ReadChunk(std::istream& in, size_t max, size_t* line_number) {
  std::vector<PendingLine> chunk;
  std::string line;
  while (chunk.size() < max && std::getline(in, line)) {
    ++*line_number;
    if (IsSpfBatchComment(line)) continue;
    chunk.push_back({*line_number, std::move(line)});
  }
  return chunk;
}

SpfBatchResult Evaluate(SpfEvaluator& eval, PendingLine pending) {
  SpfBatchResult r;
  r.line = pending.number;
  r.input = std::move(pending.text);
  Result<SpfQuery> q = ParseSpfBatchLine(r.input);
  if (!q.ok()) {
    r.error = q.status();
    return r;
  }
  r.query = std::move(q).value();
  if (r.query.sender.empty()) {
    r.outcome = eval.Check(r.query.ip, "", r.query.helo);
  } else {
    // As `mail spf --sender`: without a HELO name, %{h} is the sender's domain.
    auto at = r.query.sender.rfind('@');
    std::string domain = at == std::string::npos ? r.query.sender : r.query.sender.substr(at + 1);
    r.outcome =
        eval.Check(r.query.ip, r.query.sender, r.query.helo.empty() ? domain : r.query.helo);
  }
  return r;
}

std::string OrDash(const std::string& s) {
  return s.empty() ? "-" : s;
}

}  // namespace

bool IsSpfBatchComment(std::string_view line) {
  std::string_view t = TrimView(line);
  return t.empty() || t.front() == '#';
}

Result<SpfQuery> ParseSpfBatchLine(std::string_view line) {
  if (line.find('\0') != std::string_view::npos)
    return Status::Usage("the line contains a NUL byte");
  std::vector<std::string> f = Fields(line);
  if (f.size() < 2 || f.size() > 3)
    return Status::Usage(fmt::format("expected 'IP SENDER [HELO]', got {} field(s): '{}'", f.size(),
                                     TrimView(line)));
  SpfQuery q;
  q.ip = f[0];
  q.sender = f[1];
  if (f.size() == 3) q.helo = f[2];
  if (!IpAddress::Parse(q.ip)) return Status::Usage(fmt::format("'{}' is not an IP address", q.ip));
  if (q.sender == "<>") {
    // The null reverse-path: only the HELO identity can be checked (§2.4).
    if (q.helo.empty()) return Status::Usage("sender '<>' needs a HELO name (IP <> HELO)");
    q.sender.clear();
    return q;
  }
  auto at = q.sender.rfind('@');
  if (at != std::string::npos && at + 1 == q.sender.size())
    return Status::Usage(fmt::format("sender '{}' has no domain", q.sender));
  return q;
}

Result<SpfBatchStats> RunSpfBatch(Resolver& resolver, std::istream& in,
                                  const SpfBatchOptions& options,
                                  const std::function<void(const SpfBatchResult&)>& emit) {
  SpfEvaluator eval(resolver, options.spf);
  SpfBatchStats stats;
  size_t line_number = 0;
  ParallelOptions par;
  par.workers = options.concurrency;
  // Results wait in order for the slowest evaluation before them; a few per
  // worker keep every worker busy behind one slow query.
  const size_t window = 4 * static_cast<size_t>(std::max(1, options.concurrency));
  for (;;) {
    std::vector<PendingLine> chunk =
        ReadChunk(in, std::max<size_t>(1, options.chunk_lines), &line_number);
    if (chunk.empty()) break;
    Status s = ParallelForOrdered<SpfBatchResult>(
        chunk.size(), par, window,
        [&](size_t i) -> Result<SpfBatchResult> { return Evaluate(eval, std::move(chunk[i])); },
        [&](size_t, SpfBatchResult&& r) -> Status {
          ++stats.queries;
          if (!r.error.ok()) ++stats.errors;
          emit(r);
          return Status::Ok();
        });
    if (!s.ok()) return s;  // neither side fails; kept for the contract
  }
  if (in.bad())
    return Status::Failure(fmt::format("reading the batch failed after line {}", line_number));
  return stats;
}

std::string SpfBatchResultToText(const SpfBatchResult& r) {
  if (!r.error.ok()) return fmt::format("error\tline {}: {}", r.line, r.error.message());
  const SpfOutcome& o = r.outcome;
  // The detail: why an error or none, else the explanation of a fail.
  std::string detail = !o.problem.empty() ? o.problem : o.explanation;
  return fmt::format("{}\t{}\t{}\t{}\t{}\t{}", SpfResultName(o.result), r.query.ip,
                     r.query.sender.empty() ? "<>" : r.query.sender, OrDash(r.query.helo),
                     OrDash(o.mechanism), OrDash(detail));
}

Json SpfBatchResultToJson(const SpfBatchResult& r) {
  if (!r.error.ok())
    return {
        {"line", r.line}, {"input", r.input}, {"result", "error"}, {"error", r.error.message()}};
  const SpfOutcome& o = r.outcome;
  return {{"line", r.line},
          {"ip", r.query.ip},
          {"sender", r.query.sender.empty() ? "postmaster@" + r.query.helo : r.query.sender},
          {"helo", r.query.helo},
          {"domain", o.domain},
          {"result", SpfResultName(o.result)},
          {"mechanism", o.mechanism},
          {"explanation", o.explanation},
          {"problem", o.problem},
          {"dns_lookups", o.dns_lookups},
          {"void_lookups", o.void_lookups}};
}

}  // namespace cloudkeep::mail
