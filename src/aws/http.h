// A minimal HTTP client over libcurl for the EC2 Query API, S3 and IMDS.
//
// One blocking call per request. Each thread keeps its own curl handle so
// that connections are reused (keep-alive) across calls from that thread;
// calls from different threads never share a handle, which is what libcurl
// requires. Safe to call from any number of threads. Headers and bodies are
// never logged here: they may carry credentials.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace cloudkeep::aws {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  long timeout_ms = 30000;
  long connect_timeout_ms = 5000;
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// kFailure when no HTTP response came back (refused, timed out, TLS).
Result<HttpResponse> HttpSend(const HttpRequest& request);

struct Url {
  std::string scheme, host, path;  // host includes ":port" when one was given
};
// "https://ec2.us-east-1.amazonaws.com" -> {https, ec2.us-east-1.amazonaws.com, /}
Result<Url> ParseUrl(const std::string& url);

}  // namespace cloudkeep::aws
