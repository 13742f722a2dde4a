// Signs the cases of tests/fakes/sigv4-crosscheck.mjs with cloudkeep's signer
// and prints the Authorization headers as a JSON array, in the same order, for
// test_aws_sigv4_crosscheck.sh to compare with the AWS SDK's.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "aws/sigv4.h"

int main(int argc, char** argv) {
  using namespace cloudkeep;
  if (argc != 2) {
    std::cerr << "usage: aws_sigv4_tool CASES.json\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  nlohmann::json cases = nlohmann::json::parse(in);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : cases) {
    aws::SignableRequest r;
    r.method = "POST";
    r.path = c["path"];
    r.headers = {{"Host", c["host"]},
                 {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    r.body = c["body"];
    aws::Credentials creds{c["access_key_id"], c["secret_access_key"],
                           c.value("session_token", "")};
    aws::SigningParams p;
    p.region = c["region"];
    p.service = "ec2";
    auto t = ParseRfc3339(c["time"].get<std::string>());
    if (!t.ok()) return 1;
    p.time = *t;
    out.push_back(aws::SignHeaders(r, creds, p).authorization);
  }
  std::cout << out.dump() << "\n";
  return 0;
}
