#include "snapshot/provider.h"

namespace cloudkeep::snapshot {

const char* DeleteResultName(DeleteResult r) {
  switch (r) {
    case DeleteResult::kDeleted:
      return "deleted";
    case DeleteResult::kAlreadyGone:
      return "already-deleted";
    case DeleteResult::kSkipped:
      return "skipped";
    case DeleteResult::kFailed:
      return "failed";
    case DeleteResult::kWouldDelete:
      return "would-delete";
  }
  return "failed";
}

Status Provider::Restore(const std::string&, const std::string&, const RestoreOptions&) {
  return Status::Usage("the " + name() + " provider cannot restore to a path");
}

Result<VerifyReport> Provider::Verify(const std::vector<std::string>&) {
  return Status::Usage("the " + name() + " provider has no data to verify here");
}

}  // namespace cloudkeep::snapshot
