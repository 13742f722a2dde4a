#include "latency/imds.h"

#include <curl/curl.h>

#include <cctype>
#include <cstdlib>
#include <memory>

#include "core/fs.h"

namespace cloudkeep::latency {

namespace {

size_t Append(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() + size * n > 4096) return 0;  // a zone id is a dozen bytes; refuse anything big
  out->append(data, size * n);
  return size * n;
}

bool OnEc2() {
  for (const char* path :
       {"/sys/devices/virtual/dmi/id/sys_vendor", "/sys/devices/virtual/dmi/id/board_vendor"}) {
    auto text = ReadFile(path);
    if (text.ok() && text->find("Amazon") != std::string::npos) return true;
  }
  return false;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

Result<std::string> Request(const std::string& url, bool put, const std::string& header,
                            std::chrono::milliseconds timeout) {
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  if (!c) return Status::Failure("imds: curl_easy_init failed");
  std::string body;
  std::unique_ptr<curl_slist, SlistDeleter> headers(curl_slist_append(nullptr, header.c_str()));
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
  if (put) {
    curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, "");
  }
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_NOPROXY, "*");  // IMDS must never go through a proxy
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(c.get());
  if (rc != CURLE_OK) return Status::Failure("imds: " + url + ": " + curl_easy_strerror(rc));
  long code = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) return Status::Failure("imds: " + url + ": HTTP " + std::to_string(code));
  return body;
}

}  // namespace

Result<std::string> ImdsAvailabilityZoneId(const ImdsOptions& opts) {
  const char* disabled = std::getenv("AWS_EC2_METADATA_DISABLED");
  if (disabled && std::string(disabled) == "true")
    return Status::Failure("imds: AWS_EC2_METADATA_DISABLED=true");
  std::string endpoint;
  if (const char* e = std::getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"); e && *e) {
    endpoint = e;
  } else {
    if (!OnEc2()) return Status::Failure("imds: not an EC2 instance");
    endpoint = "http://169.254.169.254";
  }
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  CK_ASSIGN_OR_RETURN(std::string token,
                      Request(endpoint + "/latest/api/token", true,
                              "X-aws-ec2-metadata-token-ttl-seconds: 60", opts.timeout));
  CK_ASSIGN_OR_RETURN(std::string zone,
                      Request(endpoint + "/latest/meta-data/placement/availability-zone-id", false,
                              "X-aws-ec2-metadata-token: " + token, opts.timeout));
  while (!zone.empty() && (zone.back() == '\n' || zone.back() == '\r' || zone.back() == ' '))
    zone.pop_back();
  if (zone.empty() || zone.size() > 64)
    return Status::Failure("imds: unexpected availability-zone-id '" + zone + "'");
  for (char ch : zone)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-'))
      return Status::Failure("imds: bad zone id");
  return zone;
}

}  // namespace cloudkeep::latency
