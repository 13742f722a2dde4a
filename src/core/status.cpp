#include "core/status.h"

#include <cstring>

namespace cloudkeep {

Status Status::FromErrno(const std::string& context, int err) {
  Status s(Code::kFailure, context + ": " + std::strerror(err));
  s.errno_ = err;
  return s;
}

Status Status::Annotate(const std::string& context) const {
  if (ok()) return *this;
  Status s(code_, context + ": " + message_);
  s.errno_ = errno_;
  return s;
}

}  // namespace cloudkeep
