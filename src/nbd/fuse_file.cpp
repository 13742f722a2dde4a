#define FUSE_USE_VERSION 314
#include "nbd/fuse_file.h"

#include <fmt/format.h>
#include <fuse3/fuse_lowlevel.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/log.h"

namespace cloudkeep::nbd {

struct FuseFile::State {
  std::shared_ptr<Backend> backend;
  std::string name;
  bool writable = false;
  uint64_t size = 0;
  time_t mtime = 0;
};

namespace {

constexpr fuse_ino_t kFileIno = 2;
constexpr size_t kMaxIo = 1 << 20;

FuseFile::State* StateOf(fuse_req_t req) {
  return static_cast<FuseFile::State*>(fuse_req_userdata(req));
}

void FillAttr(const FuseFile::State& s, fuse_ino_t ino, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_mtime = st->st_ctime = st->st_atime = s.mtime;
  if (ino == FUSE_ROOT_ID) {
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | (s.writable ? 0600 : 0400);
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(s.size);
    st->st_blksize = 4096;
    st->st_blocks = static_cast<blkcnt_t>((s.size + 511) / 512);
  }
}

int ErrnoOf(const Status& s) {
  return s.sys_errno() ? s.sys_errno() : EIO;
}

void OpInit(void* /*userdata*/, fuse_conn_info* conn) {
  conn->max_write = kMaxIo;
  conn->max_readahead = 0;
  // Reads arrive in parallel; the backend is thread-safe.
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  FuseFile::State* s = StateOf(req);
  if (parent != FUSE_ROOT_ID || s->name != name) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  e.ino = kFileIno;
  e.attr_timeout = e.entry_timeout = 3600;
  FillAttr(*s, kFileIno, &e.attr);
  fuse_reply_entry(req, &e);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  if (ino != FUSE_ROOT_ID && ino != kFileIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st;
  FillAttr(*StateOf(req), ino, &st);
  fuse_reply_attr(req, &st, 3600);
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* /*fi*/) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  FuseFile::State* s = StateOf(req);
  std::vector<char> buf(size);
  size_t used = 0;
  struct Ent {
    const char* name;
    fuse_ino_t ino;
  } ents[] = {{".", FUSE_ROOT_ID}, {"..", FUSE_ROOT_ID}, {s->name.c_str(), kFileIno}};
  for (off_t i = off; i < 3; ++i) {
    struct stat st;
    FillAttr(*s, ents[i].ino, &st);
    size_t n = fuse_add_direntry(req, buf.data() + used, size - used, ents[i].name, &st, i + 1);
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != kFileIno) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if ((fi->flags & O_ACCMODE) != O_RDONLY && !StateOf(req)->writable) {
    fuse_reply_err(req, EROFS);
    return;
  }
  // No page cache of our own: the loop device on top has one.
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fuse_reply_open(req, fi);
}

void OpRead(fuse_req_t req, fuse_ino_t /*ino*/, size_t size, off_t off, fuse_file_info* /*fi*/) {
  FuseFile::State* s = StateOf(req);
  uint64_t o = static_cast<uint64_t>(off);
  if (off < 0 || o >= s->size) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  size = static_cast<size_t>(std::min<uint64_t>(size, s->size - o));
  thread_local std::vector<char> buf;
  buf.resize(size);
  Status st = s->backend->Pread(buf.data(), size, o);
  if (!st.ok()) {
    fuse_reply_err(req, ErrnoOf(st));
    return;
  }
  fuse_reply_buf(req, buf.data(), size);
}

void OpWrite(fuse_req_t req, fuse_ino_t /*ino*/, const char* data, size_t size, off_t off,
             fuse_file_info* /*fi*/) {
  FuseFile::State* s = StateOf(req);
  uint64_t o = static_cast<uint64_t>(off);
  if (!s->writable) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (off < 0 || o >= s->size || size > s->size - o) {
    fuse_reply_err(req, ENOSPC);
    return;
  }
  Status st = s->backend->Pwrite(data, size, o, false);
  if (!st.ok()) {
    fuse_reply_err(req, ErrnoOf(st));
    return;
  }
  fuse_reply_write(req, size);
}

void OpFsync(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/, fuse_file_info* /*fi*/) {
  Status st = StateOf(req)->backend->Flush();
  fuse_reply_err(req, st.ok() ? 0 : ErrnoOf(st));
}

void OpFlush(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) {
  fuse_reply_err(req, 0);
}
void OpRelease(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) {
  fuse_reply_err(req, 0);
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.getattr = OpGetattr;
  ops.readdir = OpReaddir;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.fsync = OpFsync;
  ops.flush = OpFlush;
  ops.release = OpRelease;
  return ops;
}();

// libfuse logs to stderr on its own; route it through ours.
void FuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  if (level <= FUSE_LOG_ERR)
    log::Warn("fuse: {}", msg);
  else
    log::Debug("fuse: {}", msg);
}

}  // namespace

Result<std::unique_ptr<FuseFile>> FuseFile::Mount(std::shared_ptr<Backend> backend,
                                                  FuseFileOptions options) {
  if (options.name.empty() || options.name.find('/') != std::string::npos)
    return Status::Usage(fmt::format("invalid FUSE file name '{}'", options.name));
  std::unique_ptr<FuseFile> f(new FuseFile());
  f->options_ = std::move(options);
  f->state_ = std::make_unique<State>();
  f->state_->backend = std::move(backend);
  f->state_->name = f->options_.name;
  f->state_->writable = f->options_.writable;
  f->state_->size = f->state_->backend->Size();
  f->state_->mtime = ::time(nullptr);

  fuse_set_log_func(FuseLog);
  std::string opts = fmt::format("fsname=cloudkeep,subtype=cloudkeep,{},default_permissions",
                                 f->options_.writable ? "rw" : "ro");
  const char* argv[] = {"cloudkeep", "-o", opts.c_str()};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  f->session_ = fuse_session_new(&args, &kOps, sizeof kOps, f->state_.get());
  // fuse_session_new parses the options into its own copies; the argument
  // vector it grew (fuse_opt_add_arg) is ours to free (LeakSanitizer found it).
  fuse_opt_free_args(&args);
  if (!f->session_) return Status::Failure("cannot create a FUSE session (is /dev/fuse there?)");
  if (fuse_session_mount(f->session_, f->options_.dir.c_str()) != 0) {
    fuse_session_destroy(f->session_);
    f->session_ = nullptr;
    return Status::Failure(fmt::format("cannot mount FUSE on {}", f->options_.dir));
  }
  fuse_session* se = f->session_;
  unsigned threads = f->options_.max_threads;
  f->loop_ = std::thread([se, threads] {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, threads);
    fuse_loop_cfg_set_idle_threads(cfg, 4);
    fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
  });
  // The kernel answers INIT before the first request; a stat proves the file is there.
  struct stat st {};
  for (int i = 0; i < 500; ++i) {
    if (::stat(f->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) return f;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Failure(fmt::format("FUSE file {} did not appear", f->path()));
}

void FuseFile::Unmount() {
  if (!session_) return;
  fuse_session_exit(session_);
  // The loop device may release the file a moment after its last user
  // went; wait a little for that.
  bool clean = false;
  for (int i = 0; i < 100 && !clean; ++i) {
    if (::umount2(options_.dir.c_str(), 0) == 0 || errno == EINVAL || errno == ENOENT)
      clean = true;
    else if (errno == EBUSY)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    else
      break;
  }
  if (!clean) {
    // Something still holds the file: detach it from the tree. The session
    // lives on for that holder until this process exits, which closes
    // /dev/fuse and ends the connection; the workers are left to that.
    ::umount2(options_.dir.c_str(), MNT_DETACH);
    log::Warn("FUSE file {} was still in use; detached lazily", path());
    loop_.detach();
    session_ = nullptr;
    return;
  }
  // Unmounted: the workers' reads of /dev/fuse fail with ENODEV and the loop ends.
  if (loop_.joinable()) loop_.join();
  fuse_session_unmount(session_);
  fuse_session_destroy(session_);
  session_ = nullptr;
}

FuseFile::~FuseFile() {
  Unmount();
}

}  // namespace cloudkeep::nbd
