#include "mirror/service_address.h"

#include <chrono>
#include <thread>

#include "core/duration.h"
#include "core/log.h"
#include "core/subprocess.h"

namespace cloudkeep::mirror {

namespace {

constexpr Micros kCommandTimeout{5'000'000};

class InterfaceAddress : public ServiceAddress {
 public:
  InterfaceAddress(std::string cidr, std::string iface, std::string tag)
      : cidr_(std::move(cidr)), iface_(std::move(iface)), tag_(std::move(tag)) {}
  ~InterfaceAddress() override {
    if (arp_.joinable()) arp_.join();
  }

  Status Take() override {
    SubprocessOptions o;
    o.timeout = kCommandTimeout;
    auto r = RunProcess({"ip", "addr", "add", cidr_, "dev", iface_}, o);
    if (!r.ok()) return r.status().Annotate("ip addr add " + cidr_ + " dev " + iface_);
    // "File exists": this host has it already (a restart, or a second Take).
    if (!r->success() && r->output.find("File exists") == std::string::npos)
      return Status::Failure("ip addr add " + cidr_ + " dev " + iface_ + ": " + r->Describe() +
                             " " + r->output);
    held_ = true;
    // Two unsolicited ARPs a second apart (arping -U -c 2), from their own
    // thread: the first leaves at once, so neighbours learn the new MAC
    // before the export starts; arping itself then waits out its interval.
    if (arp_.joinable()) arp_.join();
    arp_ = std::thread([this] { Arping(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return Status::Ok();
  }

  bool Release() override {
    if (!held_) return false;
    SubprocessOptions o;
    o.timeout = kCommandTimeout;
    auto r = RunProcess({"ip", "addr", "del", cidr_, "dev", iface_}, o);
    held_ = false;
    if (r.ok() && r->success()) return true;
    // It was not there (a clean start): "Address not found" from iproute2
    // 6.x, "Cannot assign requested address" from older ones.
    if (r.ok() && (r->output.find("Address not found") != std::string::npos ||
                   r->output.find("Cannot assign") != std::string::npos))
      return false;
    log::Warn("mirror {}: ip addr del {} dev {}: {}", tag_, cidr_, iface_,
              r.ok() ? r->Describe() + " " + r->output : r.status().message());
    return false;
  }

  std::string Describe() const override { return cidr_ + " on " + iface_; }

  // After a crash the address may still be on this host: only a leader
  // holds it, so a starting node removes it without knowing.
  void AssumeHeld() { held_ = true; }

 private:
  void Arping() {
    SubprocessOptions o;
    o.timeout = kCommandTimeout;
    auto a = RunProcess({"arping", "-q", "-U", "-c", "2", "-I", iface_, Address()}, o);
    if (!a.ok() || !a->success())
      log::Warn("mirror {}: arping: {}", tag_,
                a.ok() ? a->Describe() + " " + a->output : a.status().message());
  }
  std::string Address() const { return cidr_.substr(0, cidr_.find('/')); }

  std::string cidr_, iface_, tag_;
  bool held_ = false;
  std::thread arp_;
};

class CloudAddress : public ServiceAddress {
 public:
  CloudAddress(std::unique_ptr<InterfaceAddress> local, std::string cloud_name,
               std::function<Status()> cloud_take)
      : local_(std::move(local)),
        cloud_name_(std::move(cloud_name)),
        cloud_take_(std::move(cloud_take)) {}

  Status Take() override {
    CK_RETURN_IF_ERROR(cloud_take_().Annotate(cloud_name_));
    return local_->Take();
  }
  // The cloud assignment stays: the next primary's AllowReassignment takes
  // it over, and removing it here could race with that.
  bool Release() override { return local_->Release(); }
  std::string Describe() const override { return local_->Describe() + " (" + cloud_name_ + ")"; }

 private:
  std::unique_ptr<InterfaceAddress> local_;
  std::string cloud_name_;
  std::function<Status()> cloud_take_;
};

}  // namespace

std::unique_ptr<ServiceAddress> MakeInterfaceAddress(std::string cidr, std::string iface,
                                                     std::string tag) {
  auto a = std::make_unique<InterfaceAddress>(std::move(cidr), std::move(iface), std::move(tag));
  a->AssumeHeld();
  return a;
}

std::unique_ptr<ServiceAddress> MakeCloudAddress(std::string cidr, std::string iface,
                                                 std::string tag, std::string cloud_name,
                                                 std::function<Status()> cloud_take) {
  auto local =
      std::make_unique<InterfaceAddress>(std::move(cidr), std::move(iface), std::move(tag));
  local->AssumeHeld();
  return std::make_unique<CloudAddress>(std::move(local), std::move(cloud_name),
                                        std::move(cloud_take));
}

}  // namespace cloudkeep::mirror
