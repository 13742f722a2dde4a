#include "mirror/config.h"

#include <arpa/inet.h>
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
#include "core/output.h"
#include "mirror/wire.h"

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

Result<std::vector<std::string>> GetStringList(const toml::table& t, const std::string& key,
                                               const std::string& where) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  if (auto s = n->value<std::string>()) {
    out.push_back(*s);
    return out;
  }
  const toml::array* a = n->as_array();
  if (!a) return Status::Usage(where + ": '" + key + "' must be a list of strings");
  for (const auto& e : *a) {
    auto s = e.value<std::string>();
    if (!s) return Status::Usage(where + ": '" + key + "' must be a list of strings");
    out.push_back(*s);
  }
  return out;
}

// "10.0.5.10/24": an IPv4 or IPv6 address with a prefix length.
bool ValidCidr(const std::string& text) {
  size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size()) return false;
  std::string addr = text.substr(0, slash), len = text.substr(slash + 1);
  if (len.find_first_not_of("0123456789") != std::string::npos || len.size() > 3) return false;
  int bits = std::stoi(len);
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) return bits <= 32;
  if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) return bits <= 128;
  return false;
}

Status ParseFencing(const toml::table& t, const std::string& where, ResourceConfig* cfg) {
  CK_ASSIGN_OR_RETURN(std::string fencing, GetString(t, "fencing", where, false));
  if (fencing.empty() || fencing == "none")
    cfg->fencing = Fencing::kNone;
  else if (fencing == "etcd")
    cfg->fencing = Fencing::kEtcd;
  else
    return Status::Usage(where + ": fencing must be \"etcd\" or \"none\", got '" + fencing + "'");
  CK_ASSIGN_OR_RETURN(cfg->etcd_endpoints, GetStringList(t, "etcd_endpoints", where));
  for (const auto& e : cfg->etcd_endpoints)
    if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0)
      return Status::Usage(where + ": etcd endpoint '" + e +
                           "' must start with http:// or https://");
  if (cfg->fencing == Fencing::kEtcd && cfg->etcd_endpoints.empty())
    return Status::Usage(where + ": fencing = \"etcd\" needs etcd_endpoints");
  CK_ASSIGN_OR_RETURN(std::string prefix, GetString(t, "etcd_prefix", where, false));
  if (!prefix.empty()) {
    if (prefix[0] != '/')
      return Status::Usage(where + ": etcd_prefix '" + prefix + "' must start with '/'");
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    cfg->etcd_prefix = prefix;
  }
  CK_ASSIGN_OR_RETURN(cfg->etcd_ca, GetString(t, "etcd_ca", where, false));
  CK_ASSIGN_OR_RETURN(cfg->etcd_cert, GetString(t, "etcd_cert", where, false));
  CK_ASSIGN_OR_RETURN(cfg->etcd_key, GetString(t, "etcd_key", where, false));
  if (cfg->etcd_cert.empty() != cfg->etcd_key.empty())
    return Status::Usage(where + ": etcd_cert and etcd_key are needed together");
  CK_ASSIGN_OR_RETURN(cfg->lease_ttl, GetDuration(t, "lease_ttl", where, cfg->lease_ttl));
  CK_ASSIGN_OR_RETURN(cfg->renew_interval,
                      GetDuration(t, "renew_interval", where, cfg->renew_interval));
  CK_ASSIGN_OR_RETURN(cfg->suspend_margin,
                      GetDuration(t, "suspend_margin", where, cfg->suspend_margin));
  CK_ASSIGN_OR_RETURN(cfg->etcd_timeout, GetDuration(t, "etcd_timeout", where, cfg->etcd_timeout));
  if (cfg->lease_ttl.count() % 1'000'000 != 0 || cfg->lease_ttl < Micros(2'000'000))
    return Status::Usage(where +
                         ": lease_ttl must be whole seconds, at least 2s (etcd's minimum), "
                         "got " +
                         FormatDuration(cfg->lease_ttl));
  // The lease must be renewed (one interval plus one request) before the
  // holder stops trusting it, or a healthy primary suspends between renewals.
  if (cfg->renew_interval + cfg->etcd_timeout >= cfg->lease_ttl - cfg->suspend_margin)
    return Status::Usage(where + ": renew_interval " + FormatDuration(cfg->renew_interval) +
                         " + etcd_timeout " + FormatDuration(cfg->etcd_timeout) +
                         " must be less than lease_ttl " + FormatDuration(cfg->lease_ttl) +
                         " - suspend_margin " + FormatDuration(cfg->suspend_margin));
  CK_ASSIGN_OR_RETURN(std::string loss, GetString(t, "on_standby_loss", where, false));
  if (loss.empty() || loss == "continue")
    cfg->on_standby_loss = StandbyLoss::kContinue;
  else if (loss == "suspend")
    cfg->on_standby_loss = StandbyLoss::kSuspend;
  else
    return Status::Usage(where + ": on_standby_loss must be \"continue\" or \"suspend\", got '" +
                         loss + "'");
  CK_ASSIGN_OR_RETURN(cfg->service_address, GetString(t, "service_address", where, false));
  CK_ASSIGN_OR_RETURN(cfg->service_interface, GetString(t, "service_interface", where, false));
  if (!cfg->service_address.empty() && !ValidCidr(cfg->service_address))
    return Status::Usage(where + ": service_address '" + cfg->service_address +
                         "' must be an address with a prefix length, like \"10.0.5.10/24\"");
  if (!cfg->service_address.empty() && cfg->service_interface.empty())
    return Status::Usage(where +
                         ": service_address needs service_interface (the interface it "
                         "goes on)");
  if (!cfg->service_interface.empty() &&
      (cfg->service_interface.size() > 15 ||
       cfg->service_interface.find_first_of("/ \t") != std::string::npos))
    return Status::Usage(where + ": bad service_interface '" + cfg->service_interface + "'");
  CK_ASSIGN_OR_RETURN(cfg->service_address_cloud,
                      GetString(t, "service_address_cloud", where, false));
  CK_ASSIGN_OR_RETURN(cfg->aws_elastic_ip, GetString(t, "aws_elastic_ip", where, false));
  CK_ASSIGN_OR_RETURN(cfg->aws_region, GetString(t, "aws_region", where, false));
  CK_ASSIGN_OR_RETURN(cfg->aws_endpoint_url, GetString(t, "aws_endpoint_url", where, false));
  if (!cfg->service_address_cloud.empty() && cfg->service_address_cloud != "aws")
    return Status::Usage(where + ": service_address_cloud must be \"aws\" (or absent), got '" +
                         cfg->service_address_cloud + "'");
  if (!cfg->service_address_cloud.empty() && cfg->service_address.empty())
    return Status::Usage(where + ": service_address_cloud needs service_address");
  if (cfg->service_address_cloud.empty() &&
      (!cfg->aws_elastic_ip.empty() || !cfg->aws_region.empty() || !cfg->aws_endpoint_url.empty()))
    return Status::Usage(where +
                         ": aws_elastic_ip, aws_region and aws_endpoint_url need "
                         "service_address_cloud = \"aws\"");
  if (!cfg->aws_elastic_ip.empty() && cfg->aws_elastic_ip.rfind("eipalloc-", 0) != 0)
    return Status::Usage(where + ": aws_elastic_ip '" + cfg->aws_elastic_ip +
                         "' must be an allocation id (eipalloc-…)");
  CK_ASSIGN_OR_RETURN(std::vector<std::string> hook, GetStringList(t, "on_promote", where));
  if (!hook.empty()) {
    if (hook[0].empty()) return Status::Usage(where + ": on_promote names no command");
    cfg->on_promote = hook[0];
    cfg->on_promote_args.assign(hook.begin() + 1, hook.end());
  }
  if (cfg->fencing == Fencing::kNone && (!cfg->service_address.empty() || !cfg->on_promote.empty()))
    return Status::Usage(where +
                         ": service_address and on_promote need fencing = \"etcd\" "
                         "(only an elected primary may take the address)");
  return Status::Ok();
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
  static const std::set<std::string> kKeys = {"protocol",
                                              "psk_file",
                                              "tls_cert",
                                              "tls_key",
                                              "tls_ca",
                                              "node",
                                              "bitmap_granularity",
                                              "al_extent_size",
                                              "al_extents",
                                              "peer_timeout",
                                              "connect_interval",
                                              "async_max_queued_bytes",
                                              "resync_window",
                                              "fencing",
                                              "etcd_endpoints",
                                              "on_standby_loss",
                                              "service_address",
                                              "etcd_prefix",
                                              "etcd_ca",
                                              "etcd_cert",
                                              "etcd_key",
                                              "lease_ttl",
                                              "renew_interval",
                                              "suspend_margin",
                                              "etcd_timeout",
                                              "service_interface",
                                              "on_promote",
                                              "service_address_cloud",
                                              "aws_elastic_ip",
                                              "aws_region",
                                              "aws_endpoint_url"};
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
  CK_RETURN_IF_ERROR(ParseFencing(*t, where, &cfg));

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
      if (key != "name" && key != "address" && key != "device" && key != "meta" &&
          key != "aws_network_interface")
        return Status::Usage(nw + ": unknown key '" + key + "'");
    }
    NodeConfig n;
    CK_ASSIGN_OR_RETURN(n.name, GetString(*nt, "name", nw, true));
    CK_ASSIGN_OR_RETURN(n.address, GetString(*nt, "address", nw, true));
    CK_ASSIGN_OR_RETURN(n.device, GetString(*nt, "device", nw, true));
    CK_ASSIGN_OR_RETURN(n.meta, GetString(*nt, "meta", nw, true));
    CK_ASSIGN_OR_RETURN(n.aws_network_interface,
                        GetString(*nt, "aws_network_interface", nw, false));
    if (!n.aws_network_interface.empty() && n.aws_network_interface.rfind("eni-", 0) != 0)
      return Status::Usage(nw + ": aws_network_interface '" + n.aws_network_interface +
                           "' must be a network interface id (eni-…)");
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
  for (size_t i = 0; i < cfg.nodes.size(); i++) {
    const NodeConfig& n = cfg.nodes[i];
    if (cfg.service_address_cloud == "aws" && n.aws_network_interface.empty())
      return Status::Usage(where + ".node[" + std::to_string(i) + "] (" + n.name +
                           "): service_address_cloud = \"aws\" needs aws_network_interface "
                           "(the node's eni-…)");
    if (cfg.service_address_cloud.empty() && !n.aws_network_interface.empty())
      return Status::Usage(where + ".node[" + std::to_string(i) + "] (" + n.name +
                           "): aws_network_interface needs service_address_cloud = \"aws\"");
  }
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
  // Each connect sends the whole bitmap in one BITMAP frame (mirror-format.md).
  uint64_t bitmap_bytes = (size / cfg.bitmap_granularity + 7) / 8;
  if (bitmap_bytes > wire::kMaxPayload) {
    uint64_t need = cfg.bitmap_granularity;
    while ((size / need + 7) / 8 > wire::kMaxPayload) need *= 2;
    return Status::Usage("bitmap_granularity " + FormatBytes(cfg.bitmap_granularity) +
                         " is too fine for device " + n->device + " of " + FormatBytes(size) +
                         ": its bitmap would be " + FormatBytes(bitmap_bytes) + "; use at least " +
                         FormatBytes(need));
  }
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
