// The network-interface and Elastic IP calls of Ec2Client (the mirror's
// address takeover) against tests/fakes/ec2_emulator.py, which this test
// starts itself on a port of 127.0.0.1 and which refuses what EC2 refuses.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "aws/credentials.h"
#include "providers/aws/ec2_client.h"
#include "providers/aws/eip_reverse_dns.h"

extern char** environ;

namespace cloudkeep::aws {
namespace {

namespace fs = std::filesystem;

constexpr const char* kInstanceA = "i-0aaaaaaaaaaaaaaa1";
constexpr const char* kInstanceB = "i-0bbbbbbbbbbbbbbb2";
constexpr const char* kEniA = "eni-0aaaaaaaaaaaaaaa1";
constexpr const char* kEniB = "eni-0bbbbbbbbbbbbbbb2";
constexpr const char* kServiceIp = "10.0.1.50";
constexpr const char* kEip = "eipalloc-0eeeeeeeeeeeeeee1";

// Two instances in one subnet; the service address 10.0.1.50 is a secondary
// address of A with an Elastic IP on it.
std::string StateJson(const std::string& deny) {
  return R"({"region": "us-east-2",
 "credentials": [{"access_key_id": "AKIDNETWORKTEST00001", "secret_access_key": "net-secret"}],
 "instance": {"id": "i-0aaaaaaaaaaaaaaa1", "az": "us-east-2a"},
 "subnets": [{"id": "subnet-0aaaaaaaaaaaaaaa1", "cidr": "10.0.1.0/24"},
             {"id": "subnet-0bbbbbbbbbbbbbbb2", "cidr": "10.0.2.0/24"}],
 "network_interfaces": [
   {"id": "eni-0aaaaaaaaaaaaaaa1", "subnet": "subnet-0aaaaaaaaaaaaaaa1", "instance": "i-0aaaaaaaaaaaaaaa1",
    "private_ips": ["10.0.1.10", "10.0.1.50"]},
   {"id": "eni-0bbbbbbbbbbbbbbb2", "subnet": "subnet-0aaaaaaaaaaaaaaa1", "instance": "i-0bbbbbbbbbbbbbbb2",
    "private_ips": ["10.0.1.20"]},
   {"id": "eni-0ccccccccccccccc3", "subnet": "subnet-0bbbbbbbbbbbbbbb2", "private_ips": ["10.0.2.30"]}],
 "addresses": [{"allocation_id": "eipalloc-0eeeeeeeeeeeeeee1", "public_ip": "203.0.113.10",
                "eni": "eni-0aaaaaaaaaaaaaaa1", "private_ip": "10.0.1.50"},
               {"allocation_id": "eipalloc-0fffffffffffffff2", "public_ip": "203.0.113.20"}],
 "deny": [)" +
         deny + "]}";
}

class Ec2Network : public ::testing::Test {
 protected:
  void Start(const std::string& deny = "") {
    dir_ = fs::temp_directory_path() / ("ck-ec2net-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "state.json") << StateJson(deny);
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::string script = std::string(CK_SOURCE_DIR) + "/tests/fakes/ec2_emulator.py";
    std::string state = (dir_ / "state.json").string();
    const char* argv[] = {"/usr/bin/python3", script.c_str(), "--port", "0",
                          "--state",          state.c_str(),  nullptr};
    ASSERT_EQ(posix_spawn(&pid_, argv[0], &fa, nullptr, const_cast<char**>(argv), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    // The emulator prints "ec2-emulator listening on 127.0.0.1:PORT" once it listens.
    std::unique_ptr<FILE, decltype(&fclose)> f(fdopen(out[0], "r"), fclose);
    char line[256] = {};
    ASSERT_NE(fgets(line, sizeof line, f.get()), nullptr) << "emulator did not start";
    std::string l = line;
    auto colon = l.rfind(':');
    ASSERT_NE(colon, std::string::npos) << l;
    std::string port = l.substr(colon + 1);
    while (!port.empty() && (port.back() == '\n' || port.back() == '\r')) port.pop_back();
    setenv("AWS_ACCESS_KEY_ID", "AKIDNETWORKTEST00001", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "net-secret", 1);
    unsetenv("AWS_SESSION_TOKEN");
    ImdsOptions io;
    io.disabled = true;
    imds_ = std::make_unique<Imds>(io);
    ChainOptions co;
    co.region = "us-east-2";
    co.credentials_file = (dir_ / "none").string();
    co.config_file = (dir_ / "none").string();
    chain_ = std::make_unique<CredentialChain>(co, imds_.get());
    Ec2Options eo;
    eo.endpoint = "http://127.0.0.1:" + port;
    eo.region = "us-east-2";
    eo.max_attempts = 3;
    client_ = std::make_unique<Ec2Client>(eo, chain_.get());
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::vector<std::string> IpsOf(const std::string& eni) {
    auto r = client_->DescribeNetworkInterfaces({.ids = {eni}});
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok() || r->size() != 1) return {};
    std::vector<std::string> out;
    for (const auto& ip : (*r)[0].private_ips) out.push_back(ip.address);
    return out;
  }

  fs::path dir_;
  pid_t pid_ = -1;
  std::unique_ptr<Imds> imds_;
  std::unique_ptr<CredentialChain> chain_;
  std::unique_ptr<Ec2Client> client_;
};

TEST_F(Ec2Network, DescribeByInstanceAndByPrivateIp) {
  Start();
  auto by_instance = client_->DescribeNetworkInterfaces({.instance_id = kInstanceA});
  ASSERT_TRUE(by_instance.ok()) << by_instance.status().message();
  ASSERT_EQ(by_instance->size(), 1u);
  const auto& e = (*by_instance)[0];
  EXPECT_EQ(e.id, kEniA);
  EXPECT_EQ(e.instance_id, kInstanceA);
  EXPECT_EQ(e.device_index, 0);
  EXPECT_EQ(e.subnet_id, "subnet-0aaaaaaaaaaaaaaa1");
  EXPECT_EQ(e.private_ip, "10.0.1.10");
  ASSERT_EQ(e.private_ips.size(), 2u);
  EXPECT_TRUE(e.private_ips[0].primary);
  EXPECT_FALSE(e.private_ips[1].primary);
  EXPECT_EQ(e.private_ips[1].address, kServiceIp);
  EXPECT_EQ(e.private_ips[1].allocation_id, kEip);
  EXPECT_EQ(e.private_ips[1].public_ip, "203.0.113.10");

  // The holder of a secondary address, found by the address alone.
  auto by_ip = client_->DescribeNetworkInterfaces({.private_ip = kServiceIp});
  ASSERT_TRUE(by_ip.ok());
  ASSERT_EQ(by_ip->size(), 1u);
  EXPECT_EQ((*by_ip)[0].id, kEniA);
  auto none = client_->DescribeNetworkInterfaces({.private_ip = "10.0.1.99"});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto all = client_->DescribeNetworkInterfaces({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

TEST_F(Ec2Network, UnknownInterfaceIsNotFoundAndAUsageError) {
  Start();
  Ec2Error err;
  auto r = client_->DescribeNetworkInterfaces({.ids = {"eni-0123456789abcdef0"}}, &err);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(err.code, "InvalidNetworkInterfaceID.NotFound");
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
  auto a = client_->AssignPrivateIpAddresses("eni-0123456789abcdef0", {kServiceIp}, true, &err);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(err.code, "InvalidNetworkInterfaceID.NotFound");
  auto m = client_->AssignPrivateIpAddresses("eni-nothex", {kServiceIp}, true, &err);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(err.code, "InvalidNetworkInterfaceID.Malformed");
}

TEST_F(Ec2Network, ReassignmentNeedsAllowReassignmentAndTakesTheEipAlong) {
  Start();
  Ec2Error err;
  auto refused = client_->AssignPrivateIpAddresses(kEniB, {kServiceIp}, false, &err);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(err.code, "InvalidIPAddress.InUse");
  EXPECT_NE(refused.status().message().find("InvalidIPAddress.InUse"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(IpsOf(kEniA), (std::vector<std::string>{"10.0.1.10", kServiceIp})) << "nothing moved";

  auto moved = client_->AssignPrivateIpAddresses(kEniB, {kServiceIp}, true, &err);
  ASSERT_TRUE(moved.ok()) << moved.status().message();
  EXPECT_EQ(*moved, (std::vector<std::string>{kServiceIp}));
  EXPECT_TRUE(err.code.empty());
  EXPECT_EQ(IpsOf(kEniA), (std::vector<std::string>{"10.0.1.10"}));
  EXPECT_EQ(IpsOf(kEniB), (std::vector<std::string>{"10.0.1.20", kServiceIp}));
  auto eip = client_->DescribeAddresses({"203.0.113.10"}, "");
  ASSERT_TRUE(eip.ok()) << eip.status().message();
  ASSERT_EQ(eip->size(), 1u);
  EXPECT_EQ((*eip)[0].network_interface_id, kEniB);
  EXPECT_EQ((*eip)[0].instance_id, kInstanceB);
  EXPECT_EQ((*eip)[0].private_ip, kServiceIp);

  // Asking again for an address the interface already holds changes nothing.
  auto again = client_->AssignPrivateIpAddresses(kEniB, {kServiceIp}, true, &err);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(IpsOf(kEniB), (std::vector<std::string>{"10.0.1.20", kServiceIp}));

  // A primary address never moves.
  auto primary = client_->AssignPrivateIpAddresses(kEniB, {"10.0.1.10"}, true, &err);
  ASSERT_FALSE(primary.ok());
  EXPECT_EQ(err.code, "InvalidIPAddress.InUse");
}

TEST_F(Ec2Network, AddressOutsideTheSubnetOrReservedIsInvalidParameterValue) {
  Start();
  Ec2Error err;
  auto outside = client_->AssignPrivateIpAddresses(kEniB, {"10.0.2.50"}, true, &err);
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(err.code, "InvalidParameterValue");
  EXPECT_EQ(outside.status().code(), Status::Code::kUsage);
  // AWS keeps .0-.3 and the broadcast address of every subnet.
  for (const char* reserved : {"10.0.1.1", "10.0.1.3", "10.0.1.255"}) {
    auto r = client_->AssignPrivateIpAddresses(kEniB, {reserved}, true, &err);
    ASSERT_FALSE(r.ok()) << reserved;
    EXPECT_EQ(err.code, "InvalidParameterValue") << reserved;
  }
  auto garbage = client_->AssignPrivateIpAddresses(kEniB, {"10.0.1.300"}, true, &err);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(err.code, "InvalidParameterValue");
  EXPECT_EQ(IpsOf(kEniB), (std::vector<std::string>{"10.0.1.20"}));
}

TEST_F(Ec2Network, UnassignOnlyWhatTheInterfaceHoldsAndNeverThePrimary) {
  Start();
  Ec2Error err;
  Status notheld = client_->UnassignPrivateIpAddresses(kEniB, {kServiceIp}, &err);
  ASSERT_FALSE(notheld.ok());
  EXPECT_EQ(err.code, "InvalidParameterValue");
  Status primary = client_->UnassignPrivateIpAddresses(kEniA, {"10.0.1.10"}, &err);
  ASSERT_FALSE(primary.ok());
  EXPECT_EQ(err.code, "InvalidParameterValue");
  Status ok = client_->UnassignPrivateIpAddresses(kEniA, {kServiceIp}, &err);
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_EQ(IpsOf(kEniA), (std::vector<std::string>{"10.0.1.10"}));
  // EC2 disassociates the Elastic IP that was on the address.
  auto eip = client_->DescribeAddresses({"203.0.113.10"}, "");
  ASSERT_TRUE(eip.ok());
  ASSERT_EQ(eip->size(), 1u);
  EXPECT_TRUE((*eip)[0].association_id.empty());
  EXPECT_TRUE((*eip)[0].network_interface_id.empty());
}

TEST_F(Ec2Network, AssociateAddressNeedsAllowReassociationWhenAssociated) {
  Start();
  Ec2Error err;
  AssociateAddressRequest req{.allocation_id = kEip, .network_interface_id = kEniB};
  auto refused = client_->AssociateAddress(req, &err);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(err.code, "Resource.AlreadyAssociated");
  req.allow_reassociation = true;
  auto moved = client_->AssociateAddress(req, &err);
  ASSERT_TRUE(moved.ok()) << moved.status().message();
  EXPECT_TRUE(moved->starts_with("eipassoc-")) << *moved;
  auto eip = client_->DescribeAddresses({}, kInstanceB);
  ASSERT_TRUE(eip.ok());
  ASSERT_EQ(eip->size(), 1u);
  EXPECT_EQ((*eip)[0].allocation_id, kEip);
  EXPECT_EQ((*eip)[0].private_ip, "10.0.1.20") << "the interface's primary address by default";
  EXPECT_EQ((*eip)[0].association_id, *moved);
  auto none = client_->DescribeAddresses({}, kInstanceA);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  // An unassociated address needs no flag; an instance id means its primary interface.
  auto free_eip = client_->AssociateAddress(
      {.allocation_id = "eipalloc-0fffffffffffffff2", .instance_id = kInstanceA}, &err);
  ASSERT_TRUE(free_eip.ok()) << free_eip.status().message();
  auto unknown = client_->AssociateAddress(
      {.allocation_id = "eipalloc-0123456789abcdef0", .network_interface_id = kEniB}, &err);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(err.code, "InvalidAllocationID.NotFound");
  auto not_on_eni = client_->AssociateAddress({.allocation_id = kEip,
                                               .network_interface_id = kEniB,
                                               .private_ip = "10.0.1.77",
                                               .allow_reassociation = true},
                                              &err);
  ASSERT_FALSE(not_on_eni.ok());
  EXPECT_EQ(err.code, "InvalidParameterValue");
}

TEST_F(Ec2Network, DescribeAddressesOfAnAddressNotOursIsNotFound) {
  Start();
  Ec2Error err;
  auto r = client_->DescribeAddresses({"198.51.100.7"}, "", &err);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(err.code, "InvalidAddress.NotFound");
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
}

TEST_F(Ec2Network, DryRunChecksThePermissionOnly) {
  Start(R"("AssociateAddress")");
  Ec2Error err;
  Status allowed = client_->DryRun("AssignPrivateIpAddresses",
                                   {{"NetworkInterfaceId", kEniB},
                                    {"PrivateIpAddress.1", kServiceIp},
                                    {"AllowReassignment", "true"}},
                                   &err);
  EXPECT_TRUE(allowed.ok()) << allowed.message();
  EXPECT_EQ(err.code, "DryRunOperation");
  EXPECT_EQ(IpsOf(kEniB), (std::vector<std::string>{"10.0.1.20"})) << "DryRun changed nothing";
  Status denied = client_->DryRun("AssociateAddress",
                                  {{"AllocationId", kEip}, {"NetworkInterfaceId", kEniB}}, &err);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(err.code, "UnauthorizedOperation");
  EXPECT_NE(denied.message().find("ec2:AssociateAddress"), std::string::npos) << denied.message();
}

// --- eip_reverse_dns: the decisions of `mail ptr --set|--reset` on AWS ---

ForwardLookup Fwd(const std::string& status, std::vector<std::string> addresses = {},
                  bool failed = false, const std::string& error = "") {
  ForwardLookup f;
  f.status = status;
  f.addresses = std::move(addresses);
  f.failed = failed;
  f.error = error;
  return f;
}

TEST_F(Ec2Network, PtrFindsTheInstancesElasticIp) {
  Start();
  auto eip = FindElasticIp(*client_, "", kInstanceA);
  ASSERT_TRUE(eip.ok()) << eip.status().message();
  EXPECT_EQ(eip->public_ip, "203.0.113.10");
  EXPECT_EQ(eip->allocation_id, kEip);
  auto given = FindElasticIp(*client_, "203.0.113.20", "");
  ASSERT_TRUE(given.ok()) << given.status().message();
  EXPECT_EQ(given->allocation_id, "eipalloc-0fffffffffffffff2");
}

TEST_F(Ec2Network, PtrOnAnInstanceWithoutElasticIpIsOneLineWithTheFix) {
  Start();
  auto r = FindElasticIp(*client_, "", kInstanceB);
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().message();
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_NE(m.find("instance i-0bbbbbbbbbbbbbbb2 has no Elastic IP"), std::string::npos) << m;
  EXPECT_NE(m.find("aws ec2 allocate-address --region us-east-2"), std::string::npos) << m;
  EXPECT_NE(m.find("--instance-id i-0bbbbbbbbbbbbbbb2"), std::string::npos) << m;
  // No instance known and no --address: a usage error saying what to pass.
  auto unknown = FindElasticIp(*client_, "", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Status::Code::kUsage);
  EXPECT_NE(unknown.status().message().find("pass --address"), std::string::npos);
}

TEST_F(Ec2Network, PtrOfAnotherAccountsAddressIsOneLine) {
  Start();
  auto r = FindElasticIp(*client_, "198.51.100.7", kInstanceA);
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().message();
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_NE(m.find("198.51.100.7 is not an Elastic IP of this account in us-east-2"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("pass --address with one of yours"), std::string::npos) << m;
}

TEST_F(Ec2Network, PtrWithoutThePermissionNamesTheIamAction) {
  Start(R"("ModifyAddressAttribute", "ResetAddressAttribute")");
  auto eip = FindElasticIp(*client_, "203.0.113.10", "");
  ASSERT_TRUE(eip.ok()) << eip.status().message();
  ForwardLookup fwd = Fwd("NOERROR", {"203.0.113.10"});
  Status dry = DryRunPtrChange(*client_, *eip, "mail.example.test", fwd);
  ASSERT_FALSE(dry.ok());
  EXPECT_NE(dry.message().find("not authorized to call ec2:ModifyAddressAttribute"),
            std::string::npos)
      << dry.message();
  EXPECT_NE(dry.message().find("add ec2:ModifyAddressAttribute to the IAM policy"),
            std::string::npos);
  auto set = RequestPtrChange(*client_, *eip, "mail.example.test", fwd);
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.status().message().find("ec2:ModifyAddressAttribute"), std::string::npos);
  auto reset = RequestPtrChange(*client_, *eip, "", {});
  ASSERT_FALSE(reset.ok());
  EXPECT_NE(reset.status().message().find("not authorized to call ec2:ResetAddressAttribute"),
            std::string::npos)
      << reset.status().message();
}

// The A record is checked before EC2 is called: were it called, the denied
// permission would be the error instead.
TEST_F(Ec2Network, PtrWithTheWrongARecordIsRefusedBeforeAwsIsAsked) {
  Start(R"("ModifyAddressAttribute")");
  auto eip = FindElasticIp(*client_, "203.0.113.10", "");
  ASSERT_TRUE(eip.ok()) << eip.status().message();
  ForwardLookup elsewhere = Fwd("NOERROR", {"198.51.100.9", "198.51.100.10"});
  for (bool dry : {true, false}) {
    Status st = dry ? DryRunPtrChange(*client_, *eip, "Mail.Example.test.", elsewhere)
                    : RequestPtrChange(*client_, *eip, "Mail.Example.test.", elsewhere).status();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.message(),
              "mail.example.test resolves to 198.51.100.9, 198.51.100.10, not to 203.0.113.10: "
              "AWS refuses the PTR until it does; change the A record to 'mail.example.test. IN "
              "A 203.0.113.10'");
  }
}

TEST(PtrForwardRecord, EachCaseIsOneLine) {
  EXPECT_TRUE(
      CheckForwardRecord("mail.example.test", "203.0.113.10", Fwd("NOERROR", {"203.0.113.10"}))
          .ok());
  Status none = CheckForwardRecord("mail.example.test.", "203.0.113.10", Fwd("NXDOMAIN"));
  EXPECT_EQ(none.code(), Status::Code::kFailure);
  EXPECT_EQ(none.message(),
            "mail.example.test has no A record (NXDOMAIN): AWS sets the PTR only to a name that "
            "resolves to the address; publish 'mail.example.test. IN A 203.0.113.10' first");
  Status failed = CheckForwardRecord("mail.example.test", "203.0.113.10",
                                     Fwd("timeout", {}, true, "no answer from 127.0.0.1:53"));
  EXPECT_NE(failed.message().find("could not look up the A record of mail.example.test (timeout: "
                                  "no answer from 127.0.0.1:53)"),
            std::string::npos)
      << failed.message();
  // A lookup that failed is never taken as a match, whatever it carried.
  EXPECT_FALSE(CheckForwardRecord("mail.example.test", "203.0.113.10",
                                  Fwd("SERVFAIL", {"203.0.113.10"}, true))
                   .ok());
}

}  // namespace
}  // namespace cloudkeep::aws
