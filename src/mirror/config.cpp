#include "mirror/config.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "core/net.h"

namespace cloudkeep::mirror {

const NodeConfig* ResourceConfig::FindNode(const std::string& node) const {
  for (const auto& n : nodes)
    if (n.name == node) return &n;
  return nullptr;
}

const NodeConfig* ResourceConfig::PeerOf(const std::string& node) const {
  for (const auto& n : nodes)
    if (n.name != node) return &n;
  return nullptr;
}

namespace {

Status Bad(const std::string& source, const std::string& what) {
  return Status::Usage(source + ": " + what);
}

Result<std::string> GetString(const toml::table& t, const std::string& key,
                              const std::string& where, bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return Status::Usage(where + ": missing key '" + key + "'");
    return std::string();
  }
  auto v = n->value<std::string>();
  if (!v) return Status::Usage(where + ": '" + key + "' must be a string");
  return *v;
}

Result<uint64_t> GetSize(const toml::table& t, const std::string& key, const std::string& where,
                         uint64_t def) {
  const toml::node* n = t.get(key);
  if (!n) return def;
  if (auto i = n->value<int64_t>()) {
    if (*i <= 0)
      return Status::Usage(where + ": '" + key + "' must be positive, got " + std::to_string(*i));
    return static_cast<uint64_t>(*i);
  }
  auto s = n->value<std::string>();
  if (!s) return Status::Usage(where + ": '" + key + "' must be a size like \"64KiB\"");
  // "64KiB", "4MiB", "1GiB", "4096"
  std::string text = *s;
  size_t pos = 0;
  uint64_t num = 0;
  while (pos < text.size() && isdigit(static_cast<unsigned char>(text[pos])))
    num = num * 10 + static_cast<uint64_t>(text[pos++] - '0');
  std::string unit = text.substr(pos);
  uint64_t mul = 0;
  if (unit.empty() || unit == "B")
    mul = 1;
  else if (unit == "KiB" || unit == "K" || unit == "k")
    mul = 1024;
  else if (unit == "MiB" || unit == "M")
    mul = 1024 * 1024;
  else if (unit == "GiB" || unit == "G")
    mul = 1024ull * 1024 * 1024;
  if (pos == 0 || mul == 0 || num == 0)
    return Status::Usage(where + ": bad size '" + text + "' for '" + key + "'");
  return num * mul;
}

Result<Micros> GetDuration(const toml::table& t, const std::string& key, const std::string& where,
                           Micros def) {
  const toml::node* n = t.get(key);
  if (!n) return def;
  auto s = n->value<std::string>();
  if (!s) return Status::Usage(where + ": '" + key + "' must be a duration like \"5s\"");
  auto d = ParseDuration(*s, BareNumber::kSeconds, where + ": " + key);
  if (!d.ok()) return d.status();
  if (d->count() <= 0) return Status::Usage(where + ": '" + key + "' must be positive");
  return *d;
}

bool IsPowerOfTwo(uint64_t v) {
  return v && !(v & (v - 1));
}

}  // namespace

Result<ResourceConfig> ParseResourceConfig(const std::string& text, const std::string& source,
                                           const std::string& resource) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& err) {
    return Status::Usage(source + ":" + std::to_string(err.source().begin.line) + ": " +
                         std::string(err.description()));
  }
  toml::table* resources = root["resource"].as_table();
  if (!resources) return Bad(source, "no [resource.NAME] table");
  toml::table* t = (*resources)[resource].as_table();
  if (!t) {
    std::string known;
    for (auto& [k, v] : *resources) known += (known.empty() ? "" : ", ") + std::string(k.str());
    return Bad(source, "unknown resource '" + resource + "' (known: " + known + ")");
  }
  const std::string where = source + ": resource." + resource;
  static const std::set<std::string> kKeys = {
      "protocol",       "psk_file",     "tls_cert",           "tls_key",
      "tls_ca",         "node",         "bitmap_granularity", "al_extent_size",
      "al_extents",     "peer_timeout", "connect_interval",   "async_max_queued_bytes",
      "resync_window",  "fencing",      "etcd_endpoints",     "on_standby_loss",
      "service_address"};
  for (auto& [k, v] : *t)
    if (!kKeys.count(std::string(k.str())))
      return Status::Usage(where + ": unknown key '" + std::string(k.str()) + "'");

  ResourceConfig cfg;
  cfg.name = resource;
  CK_ASSIGN_OR_RETURN(std::string protocol, GetString(*t, "protocol", where, false));
  if (protocol.empty() || protocol == "sync" || protocol == "C")
    cfg.protocol = Protocol::kSync;
  else if (protocol == "async" || protocol == "A")
    cfg.protocol = Protocol::kAsync;
  else
    return Status::Usage(where + ": protocol must be \"sync\" or \"async\", got '" + protocol +
                         "'");
  CK_ASSIGN_OR_RETURN(cfg.psk_file, GetString(*t, "psk_file", where, false));
  CK_ASSIGN_OR_RETURN(cfg.tls_cert, GetString(*t, "tls_cert", where, false));
  CK_ASSIGN_OR_RETURN(cfg.tls_key, GetString(*t, "tls_key", where, false));
  CK_ASSIGN_OR_RETURN(cfg.tls_ca, GetString(*t, "tls_ca", where, false));
  bool certs = !cfg.tls_cert.empty() || !cfg.tls_key.empty() || !cfg.tls_ca.empty();
  if (cfg.psk_file.empty() && !certs)
    return Status::Usage(where + ": one of psk_file or tls_cert/tls_key/tls_ca is required");
  if (!cfg.psk_file.empty() && certs)
    return Status::Usage(where + ": psk_file and tls_cert/tls_key/tls_ca exclude each other");
  if (certs && (cfg.tls_cert.empty() || cfg.tls_key.empty() || cfg.tls_ca.empty()))
    return Status::Usage(where + ": tls_cert, tls_key and tls_ca are needed together");
  if (const toml::node* f = t->get("fencing")) {
    auto v = f->value<std::string>();
    if (!v || *v != "none")
      return Status::Usage(where + ": fencing '" + (v ? *v : std::string("?")) +
                           "' is not supported by this version (only \"none\")");
  }

  CK_ASSIGN_OR_RETURN(cfg.bitmap_granularity,
                      GetSize(*t, "bitmap_granularity", where, cfg.bitmap_granularity));
  if (!IsPowerOfTwo(cfg.bitmap_granularity) || cfg.bitmap_granularity < 4096)
    return Status::Usage(where +
                         ": bitmap_granularity must be a power of two of at least 4KiB, got " +
                         std::to_string(cfg.bitmap_granularity));
  CK_ASSIGN_OR_RETURN(cfg.al_extent_size, GetSize(*t, "al_extent_size", where, cfg.al_extent_size));
  if (!IsPowerOfTwo(cfg.al_extent_size) || cfg.al_extent_size < cfg.bitmap_granularity)
    return Status::Usage(where +
                         ": al_extent_size must be a power of two not below bitmap_granularity");
  CK_ASSIGN_OR_RETURN(uint64_t al, GetSize(*t, "al_extents", where, cfg.al_extents));
  if (al < 7 || al > 400)
    return Status::Usage(where + ": al_extents must be between 7 and 400, got " +
                         std::to_string(al));
  cfg.al_extents = static_cast<uint32_t>(al);
  CK_ASSIGN_OR_RETURN(cfg.peer_timeout, GetDuration(*t, "peer_timeout", where, cfg.peer_timeout));
  CK_ASSIGN_OR_RETURN(cfg.connect_interval,
                      GetDuration(*t, "connect_interval", where, cfg.connect_interval));
  CK_ASSIGN_OR_RETURN(cfg.async_max_queued_bytes,
                      GetSize(*t, "async_max_queued_bytes", where, cfg.async_max_queued_bytes));
  CK_ASSIGN_OR_RETURN(cfg.resync_window_bytes,
                      GetSize(*t, "resync_window", where, cfg.resync_window_bytes));

  toml::array* nodes = t->get_as<toml::array>("node");
  if (!nodes) return Status::Usage(where + ": no [[resource." + resource + ".node]] entries");
  std::set<std::string> names, addresses, metas;
  for (size_t i = 0; i < nodes->size(); i++) {
    toml::table* nt = (*nodes)[i].as_table();
    std::string nw = where + ".node[" + std::to_string(i) + "]";
    if (!nt) return Status::Usage(nw + ": must be a table");
    for (auto& [k, v] : *nt) {
      std::string key(k.str());
      if (key != "name" && key != "address" && key != "device" && key != "meta")
        return Status::Usage(nw + ": unknown key '" + key + "'");
    }
    NodeConfig n;
    CK_ASSIGN_OR_RETURN(n.name, GetString(*nt, "name", nw, true));
    CK_ASSIGN_OR_RETURN(n.address, GetString(*nt, "address", nw, true));
    CK_ASSIGN_OR_RETURN(n.device, GetString(*nt, "device", nw, true));
    CK_ASSIGN_OR_RETURN(n.meta, GetString(*nt, "meta", nw, true));
    if (n.name.empty() || n.name.size() > 63 ||
        n.name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
            std::string::npos)
      return Status::Usage(nw + ": bad node name '" + n.name + "'");
    auto hp = ParseHostPort(n.address, nw + ": address", 7789);
    if (!hp.ok()) return hp.status();
    if (!names.insert(n.name).second)
      return Status::Usage(nw + ": node name '" + n.name + "' appears twice");
    if (!addresses.insert(n.address).second)
      return Status::Usage(nw + ": address '" + n.address + "' appears twice");
    if (!metas.insert(n.meta).second)
      return Status::Usage(nw + ": meta '" + n.meta + "' appears twice");
    cfg.nodes.push_back(std::move(n));
  }
  if (cfg.nodes.size() != 2)
    return Status::Usage(where + ": a resource has exactly two nodes, got " +
                         std::to_string(cfg.nodes.size()));
  if (resource.empty() || resource.size() > 63)
    return Status::Usage("bad resource name '" + resource + "'");
  return cfg;
}

Result<ResourceConfig> LoadResourceConfig(const std::string& path, const std::string& resource) {
  auto text = ReadFile(path);
  if (!text.ok())
    return Status::Usage("cannot read config " + path + ": " + text.status().message());
  return ParseResourceConfig(*text, path, resource);
}

Result<uint64_t> DeviceSize(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return Status::Usage("device " + path + ": " + std::strerror(errno));
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  if (!S_ISBLK(st.st_mode))
    return Status::Usage("device " + path + " is neither a file nor a block device");
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::Usage("device " + path + ": " + std::strerror(errno));
  uint64_t size = 0;
  if (ioctl(fd.get(), BLKGETSIZE64, &size) != 0)
    return Status::Usage("device " + path + ": BLKGETSIZE64: " + std::strerror(errno));
  return size;
}

Result<uint64_t> ValidateLocal(const ResourceConfig& cfg, const std::string& node) {
  const NodeConfig* n = cfg.FindNode(node);
  if (!n) {
    std::string known;
    for (const auto& x : cfg.nodes) known += (known.empty() ? "" : ", ") + x.name;
    return Status::Usage("unknown node '" + node + "' in resource " + cfg.name +
                         " (nodes: " + known + ")");
  }
  CK_ASSIGN_OR_RETURN(uint64_t size, DeviceSize(n->device));
  if (size == 0) return Status::Usage("device " + n->device + " is empty");
  const NodeConfig* p = cfg.PeerOf(node);
  struct stat a {
  }, b{};
  // Both nodes on one machine: the peer's device is visible, and must be another one of the same
  // size.
  if (p && stat(p->device.c_str(), &b) == 0 && stat(n->device.c_str(), &a) == 0 &&
      !(a.st_dev == b.st_dev && a.st_ino == b.st_ino)) {
    auto psize = DeviceSize(p->device);
    if (psize.ok() && *psize != size)
      return Status::Usage("device sizes differ: " + n->device + " is " + std::to_string(size) +
                           " bytes, node " + p->name + "'s " + p->device + " is " +
                           std::to_string(*psize));
  }
  return size;
}

Result<UniqueFd> LockDevice(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return Status::Usage("device " + path + ": " + std::strerror(errno));
  int flags = O_RDWR | O_CLOEXEC;
  if (S_ISBLK(st.st_mode)) flags |= O_EXCL;
  UniqueFd fd(open(path.c_str(), flags));
  if (!fd.valid()) {
    if (errno == EBUSY)
      return Status::Usage("device " + path + " is in use (mounted or held open exclusively)");
    return Status::Usage("device " + path + ": " + std::strerror(errno));
  }
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::Usage("device " + path + " is in use by another cloudkeep mirror");
    return Status::FromErrno("flock " + path, errno);
  }
  return fd;
}

}  // namespace cloudkeep::mirror
