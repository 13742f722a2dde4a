// Status and Result<T>: errors as values.
//
// Every fallible operation in cloudkeep returns a Status (or a Result<T>
// holding either a value or a Status) instead of throwing. A Status carries
// the exit code class that the command line contract (docs/design.md) gives it:
//   kUsage   -> exit 2: bad usage or bad input; the message names the value.
//   kFailure -> exit 1: the operation failed (I/O, network, audit finding).
// Messages are one line, lower case, no trailing period, so that the CLI can
// print "cloudkeep: error: <message>" and nothing else.
//
// Thread safety: values; safe to copy between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace cloudkeep {

class Status {
 public:
  enum class Code { kOk = 0, kFailure = 1, kUsage = 2 };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status Failure(std::string msg) { return Status(Code::kFailure, std::move(msg)); }
  static Status Usage(std::string msg) { return Status(Code::kUsage, std::move(msg)); }
  // A failure built from errno: "<context>: <strerror(err)>".
  static Status FromErrno(const std::string& context, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  int exit_code() const { return static_cast<int>(code_); }
  // errno that produced this status, 0 if none; lets callers tell ENOSPC apart.
  int sys_errno() const { return errno_; }

  // Prefixes the message with more context: "context: message".
  Status Annotate(const std::string& context) const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
  int errno_ = 0;
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cloudkeep

// Returns early from the enclosing function when a Status is not ok.
#define CK_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::cloudkeep::Status ck_status_ = (expr); \
    if (!ck_status_.ok()) return ck_status_; \
  } while (0)

#define CK_CONCAT_INNER(a, b) a##b
#define CK_CONCAT(a, b) CK_CONCAT_INNER(a, b)
// Declares `lhs` from a Result<T>, or returns its Status.
#define CK_ASSIGN_OR_RETURN(lhs, expr) \
  CK_ASSIGN_OR_RETURN_IMPL(CK_CONCAT(ck_result_, __LINE__), lhs, expr)
#define CK_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
