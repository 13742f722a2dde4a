#include "providers/local/object_backend.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "core/fs.h"
#include "providers/local/store_layout.h"

namespace cloudkeep::local {

namespace {

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

void ListRecursive(const std::string& dir, const std::string& rel, const std::string& prefix,
                   std::vector<ObjectInfo>* out) {
  for (const auto& name : ListDir(dir)) {
    std::string key = rel + name;
    std::string path = dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      std::string sub = key + "/";
      // Descend only where the prefix can still match.
      if (sub.compare(0, std::min(sub.size(), prefix.size()), prefix, 0,
                      std::min(sub.size(), prefix.size())) == 0)
        ListRecursive(path, sub, prefix, out);
    } else if (S_ISREG(st.st_mode) && key.starts_with(prefix)) {
      out->push_back({key, static_cast<uint64_t>(st.st_size)});
    }
  }
}

}  // namespace

Status DirBackend::MakeParents(const std::string& key) const {
  std::string path = layout::KeyPath(root_, key);
  std::string dir = Parent(path);
  for (size_t i = root_.size(); i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      std::string d = dir.substr(0, i);
      if (d.size() <= root_.size()) continue;
      if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST)
        return Status::FromErrno("cannot create " + d, errno);
    }
  }
  return Status::Ok();
}

Result<bool> DirBackend::PutIfAbsent(const std::string& key, std::string_view data) {
  CK_RETURN_IF_ERROR(MakeParents(key));
  std::string path = layout::KeyPath(root_, key);
  if (::access(path.c_str(), F_OK) == 0) return false;
  static std::atomic<uint64_t> seq{0};
  std::string tmp = fmt::format("{}{}{}-{}", path, layout::kPartialWriteInfix, ::getpid(), seq++);
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return Status::FromErrno("cannot create " + tmp, errno);
    Status s = WriteAll(fd.get(), data.data(), data.size(), tmp);
    if (s.ok() && ::fsync(fd.get()) != 0) s = Status::FromErrno("cannot sync " + tmp, errno);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  // link(2) never replaces: of two writers, one gets EEXIST.
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    if (err == EEXIST) return false;
    return Status::FromErrno("cannot create " + path, err);
  }
  CK_RETURN_IF_ERROR(FsyncDir(Parent(path)));
  return true;
}

Status DirBackend::Put(const std::string& key, std::string_view data) {
  CK_RETURN_IF_ERROR(MakeParents(key));
  return WriteFileAtomic(layout::KeyPath(root_, key), data);
}

Result<std::optional<std::string>> DirBackend::Get(const std::string& key) const {
  std::string path = layout::KeyPath(root_, key);
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return std::optional<std::string>();
  CK_ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  return std::optional<std::string>(std::move(data));
}

Result<std::vector<ObjectInfo>> DirBackend::List(const std::string& prefix) const {
  std::vector<ObjectInfo> out;
  ListRecursive(root_, "", prefix, &out);
  std::erase_if(out, [](const ObjectInfo& o) { return layout::IsPartialWrite(o.key); });
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

Status DirBackend::Delete(const std::string& key) {
  std::string path = layout::KeyPath(root_, key);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno("cannot remove " + path, errno);
  return Status::Ok();
}

S3Backend::S3Backend(aws::S3Location location, std::unique_ptr<aws::S3Client> client,
                     std::unique_ptr<aws::CredentialChain> credentials,
                     std::unique_ptr<aws::Imds> imds)
    : location_(std::move(location)),
      imds_(std::move(imds)),
      credentials_(std::move(credentials)),
      client_(std::move(client)) {}

Result<bool> S3Backend::PutIfAbsent(const std::string& key, std::string_view data) {
  return client_->PutIfAbsent(location_.bucket, location_.prefix + key, data);
}

Status S3Backend::Put(const std::string& key, std::string_view data) {
  return client_->Put(location_.bucket, location_.prefix + key, data);
}

Result<std::optional<std::string>> S3Backend::Get(const std::string& key) const {
  return client_->Get(location_.bucket, location_.prefix + key);
}

Result<std::vector<ObjectInfo>> S3Backend::List(const std::string& prefix) const {
  CK_ASSIGN_OR_RETURN(auto objects, client_->List(location_.bucket, location_.prefix + prefix));
  std::vector<ObjectInfo> out;
  out.reserve(objects.size());
  for (auto& o : objects) {
    if (!o.key.starts_with(location_.prefix)) continue;
    out.push_back({o.key.substr(location_.prefix.size()), o.size});
  }
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

Status S3Backend::Delete(const std::string& key) {
  return client_->Delete(location_.bucket, location_.prefix + key);
}

Result<std::unique_ptr<S3Backend>> OpenS3Backend(const S3BackendOptions& options) {
  CK_ASSIGN_OR_RETURN(aws::S3Location loc, aws::ParseS3Url(options.url));
  if (!options.endpoint_url.empty()) {
    auto u = aws::ParseUrl(options.endpoint_url);
    if (!u.ok())
      return Status::Usage(fmt::format("invalid --endpoint-url '{}': {}", options.endpoint_url,
                                       u.status().message()));
  }
  auto imds = std::make_unique<aws::Imds>(aws::ImdsOptions::FromEnvironment());
  auto chain = std::make_unique<aws::CredentialChain>(
      aws::ChainOptions{options.profile, options.region, "", "", std::chrono::seconds(300)},
      imds.get());
  std::string region;
  if (auto r = chain->Region(); r.ok()) {
    region = *r;
  } else if (!options.endpoint_url.empty()) {
    // S3-compatible servers (radosgw, MinIO) take any region; AWS's default is us-east-1.
    region = "us-east-1";
  } else {
    return r.status();
  }
  CK_RETURN_IF_ERROR(chain->Get().status());
  aws::S3ClientOptions so;
  so.endpoint = options.endpoint_url;
  so.region = region;
  so.addressing = options.addressing;
  auto client = std::make_unique<aws::S3Client>(so, chain.get());
  if (Status s = client->CheckBucket(loc.bucket); !s.ok()) {
    if (s.message().starts_with("cannot reach"))
      return Status::Failure(fmt::format("store {}: {} (endpoint {})", loc.ToString(), s.message(),
                                         client->options().endpoint));
    return s;
  }
  return std::make_unique<S3Backend>(std::move(loc), std::move(client), std::move(chain),
                                     std::move(imds));
}

}  // namespace cloudkeep::local
