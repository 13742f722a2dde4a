#include "providers/aws/eip_reverse_dns.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <thread>

namespace cloudkeep::aws {

namespace {

std::string Fqdn(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

// The two commands that give an instance an Elastic IP.
std::string AllocateAdvice(const std::string& region, const std::string& instance_id) {
  return fmt::format(
      "aws ec2 allocate-address --region {} --domain vpc, then aws ec2 associate-address "
      "--region {} --instance-id {} --allocation-id eipalloc-…",
      region, region, instance_id.empty() ? "i-…" : instance_id);
}

}  // namespace

Result<Ec2Address> FindElasticIp(Ec2Client& ec2, const std::string& public_ip,
                                 const std::string& instance_id) {
  Ec2Error err;
  if (!public_ip.empty()) {
    auto r = ec2.DescribeAddresses({public_ip}, "", &err);
    if (!r.ok() && (err.code == "InvalidAddress.NotFound" || err.code == "AuthFailure"))
      return Status::Failure(fmt::format(
          "{} is not an Elastic IP of this account in {}: AWS sets reverse DNS only for Elastic "
          "IPs you own; pass --address with one of yours, or allocate one ({})",
          public_ip, ec2.region(), AllocateAdvice(ec2.region(), instance_id)));
    CK_RETURN_IF_ERROR(r.status());
    if (r->size() != 1 || (*r)[0].public_ip != public_ip)
      return Status::Failure(fmt::format("DescribeAddresses did not return {}", public_ip));
    if ((*r)[0].allocation_id.empty())
      return Status::Failure(fmt::format(
          "{} has no allocation id (an EC2-Classic address): AWS sets reverse DNS only for VPC "
          "Elastic IPs",
          public_ip));
    return (*r)[0];
  }
  if (instance_id.empty())
    return Status::Usage(
        "cannot tell which EC2 instance this is (instance metadata unavailable): pass --address "
        "EIP");
  CK_ASSIGN_OR_RETURN(std::vector<Ec2Address> mine, ec2.DescribeAddresses({}, instance_id));
  if (mine.size() == 1) return mine[0];
  if (mine.size() > 1) {
    std::string list;
    for (const auto& a : mine) list += (list.empty() ? "" : ", ") + a.public_ip;
    return Status::Usage(fmt::format(
        "instance {} has {} Elastic IPs ({}): pass --address with the one the mail host sends from",
        instance_id, mine.size(), list));
  }
  // No Elastic IP: say what the instance has instead, so the user sees why.
  std::string auto_ip;
  auto enis = ec2.DescribeNetworkInterfaces({.instance_id = instance_id});
  if (enis.ok())
    for (const auto& e : *enis)
      for (const auto& ip : e.private_ips)
        if (!ip.public_ip.empty() && ip.allocation_id.empty() && auto_ip.empty())
          auto_ip = ip.public_ip;
  if (!auto_ip.empty())
    return Status::Failure(fmt::format(
        "instance {} has no Elastic IP: its public address {} is auto-assigned, and AWS sets "
        "reverse DNS only for Elastic IPs; give it one ({}) and point the A record at that",
        instance_id, auto_ip, AllocateAdvice(ec2.region(), instance_id)));
  return Status::Failure(fmt::format(
      "instance {} has no Elastic IP (and no public address): AWS sets reverse DNS only for "
      "Elastic IPs; give it one ({})",
      instance_id, AllocateAdvice(ec2.region(), instance_id)));
}

Status CheckForwardRecord(const std::string& hostname, const std::string& address,
                          const ForwardLookup& forward) {
  const std::string name = Fqdn(hostname);
  if (forward.failed)
    return Status::Failure(fmt::format(
        "could not look up the A record of {} ({}{}): AWS sets the PTR only once it resolves to "
        "{}; retry when DNS answers",
        name, forward.status, forward.error.empty() ? "" : ": " + forward.error, address));
  in_addr want{};
  const bool want_ok = inet_pton(AF_INET, address.c_str(), &want) == 1;
  for (const auto& a : forward.addresses) {
    in_addr got{};
    if (want_ok && inet_pton(AF_INET, a.c_str(), &got) == 1 && got.s_addr == want.s_addr)
      return Status::Ok();
  }
  if (forward.addresses.empty())
    return Status::Failure(fmt::format(
        "{} has no A record ({}): AWS sets the PTR only to a name that resolves to the address; "
        "publish '{}. IN A {}' first",
        name, forward.status.empty() ? "no answer" : forward.status, name, address));
  std::string seen;
  for (const auto& a : forward.addresses) seen += (seen.empty() ? "" : ", ") + a;
  return Status::Failure(fmt::format(
      "{} resolves to {}, not to {}: AWS refuses the PTR until it does; change the A record to "
      "'{}. IN A {}'",
      name, seen, address, name, address));
}

Result<Ec2AddressAttribute> RequestPtrChange(Ec2Client& ec2, const Ec2Address& address,
                                             const std::string& hostname,
                                             const ForwardLookup& forward) {
  Ec2Error err;
  if (hostname.empty()) return ec2.ResetAddressDomainName(address.allocation_id, &err);
  CK_RETURN_IF_ERROR(CheckForwardRecord(hostname, address.public_ip, forward));
  auto r = ec2.ModifyAddressDomainName(address.allocation_id, hostname, &err);
  if (!r.ok() && err.code == "InvalidParameterValue" &&
      err.message.find("forward") != std::string::npos)
    return Status::Failure(fmt::format(
        "AWS refused the PTR for {}: {} Publish '{}. IN A {}' and retry once it resolves",
        address.public_ip, err.message, Fqdn(hostname), address.public_ip));
  return r;
}

Status DryRunPtrChange(Ec2Client& ec2, const Ec2Address& address, const std::string& hostname,
                       const ForwardLookup& forward) {
  if (hostname.empty())
    return ec2.DryRun("ResetAddressAttribute",
                      {{"AllocationId", address.allocation_id}, {"Attribute", "domain-name"}});
  CK_RETURN_IF_ERROR(CheckForwardRecord(hostname, address.public_ip, forward));
  return ec2.DryRun("ModifyAddressAttribute",
                    {{"AllocationId", address.allocation_id}, {"DomainName", hostname}});
}

bool PtrIs(const Ec2AddressAttribute& attr, const std::string& hostname) {
  return attr.update_status != "PENDING" && Fqdn(attr.ptr_record) == Fqdn(hostname);
}

Result<Ec2AddressAttribute> WaitForPtrChange(
    Ec2Client& ec2, const std::string& allocation_id, Deadline deadline,
    std::chrono::milliseconds poll,
    const std::function<void(const Ec2AddressAttribute&)>& progress) {
  std::string last;
  for (;;) {
    CK_ASSIGN_OR_RETURN(Ec2AddressAttribute a, ec2.DescribeAddressDomainName(allocation_id));
    std::string seen = a.ptr_record + "|" + a.update_value + "|" + a.update_status;
    if (seen != last && progress) progress(a);
    last = seen;
    if (a.update_status == "FAILED")
      return Status::Failure(
          fmt::format("AWS could not set the PTR of {} to {}: {}", a.public_ip, a.update_value,
                      a.update_reason.empty() ? "no reason given" : a.update_reason));
    if (a.update_status != "PENDING") return a;
    if (deadline.expired())
      return Status::Failure(fmt::format(
          "the PTR update of {} to {} is still PENDING after {}s: AWS applies it later; run the "
          "command again with --wait to follow it",
          a.public_ip, a.update_value,
          std::chrono::duration_cast<std::chrono::seconds>(deadline.budget()).count()));
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.left());
    std::this_thread::sleep_for(std::min(poll, left));
  }
}

}  // namespace cloudkeep::aws
