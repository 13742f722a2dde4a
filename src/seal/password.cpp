// The password source (password.h).
#include "seal/password.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/fs.h"

namespace cloudkeep::seal {
namespace {

// At most kMaxPasswordFileBytes + 1 bytes of `path`: enough to tell a
// password from a file it should not be (a key, an image, /dev/zero).
Result<std::string> ReadSmall(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid())
    return Status::Usage(
        fmt::format("cannot read password file {}: {}", path, std::strerror(errno)));
  std::string out(kMaxPasswordFileBytes + 1, '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      sodium_memzero(out.data(), out.size());
      return Status::Usage(
          fmt::format("cannot read password file {}: {}", path, std::strerror(err)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxPasswordFileBytes) {
    sodium_memzero(out.data(), out.size());
    return Status::Usage(fmt::format("password file {} is larger than {} bytes: not a password",
                                     path, kMaxPasswordFileBytes));
  }
  out.resize(got);
  return out;
}

}  // namespace

Result<std::string> ReadPassword(const std::optional<std::string>& flag_file,
                                 const EnvLookup& lookup) {
  std::string path;
  if (flag_file) {
    path = *flag_file;
    if (path.empty()) return Status::Usage("invalid --password-file '': a file name");
  } else {
    const char* v = lookup ? lookup(kPasswordFileVariable) : std::getenv(kPasswordFileVariable);
    if (v == nullptr || *v == '\0')
      return Status::Usage(fmt::format(
          "no password: give --password-file FILE or set {} (never a command-line argument)",
          kPasswordFileVariable));
    path = v;
  }
  CK_ASSIGN_OR_RETURN(std::string password, ReadSmall(path));
  // One trailing newline, as `echo` and editors leave it, is not the password's.
  if (password.ends_with("\r\n")) {
    password.resize(password.size() - 2);
  } else if (password.ends_with('\n')) {
    password.pop_back();
  }
  if (password.empty()) return Status::Usage(fmt::format("password file {} is empty", path));
  return password;
}

}  // namespace cloudkeep::seal
