#include "aws/http.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "core/strings.h"

namespace cloudkeep::aws {

namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

CURL* ThreadHandle() {
  thread_local std::unique_ptr<CURL, CurlDeleter> handle;
  if (!handle) {
    GlobalInit();
    handle.reset(curl_easy_init());
  }
  curl_easy_reset(handle.get());
  return handle.get();
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    (*headers)[AsciiLower(line.substr(0, colon))] = Trim(line.substr(colon + 1));
  }
  return size * n;
}

}  // namespace

Result<HttpResponse> HttpSend(const HttpRequest& request) {
  CURL* c = ThreadHandle();
  if (!c) return Status::Failure("cannot initialise libcurl");
  HttpResponse resp;
  curl_slist* list = nullptr;
  for (const auto& [k, v] : request.headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  // curl would add "Expect: 100-continue" to larger POSTs; AWS does not need the round trip.
  list = curl_slist_append(list, "Expect:");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> guard(list, curl_slist_free_all);
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, request.timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, request.connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp.headers);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (request.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    auto u = ParseUrl(request.url);
    return Status::Failure(
        fmt::format("cannot reach {}: {}", u.ok() ? u->host : request.url, curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

Result<Url> ParseUrl(const std::string& url) {
  size_t sep = url.find("://");
  if (sep == std::string::npos)
    return Status::Usage(fmt::format("'{}' is not a URL (expected http[s]://HOST[:PORT])", url));
  Url u;
  u.scheme = url.substr(0, sep);
  if (u.scheme != "http" && u.scheme != "https")
    return Status::Usage(fmt::format("'{}': only http and https endpoints are supported", url));
  std::string rest = url.substr(sep + 3);
  size_t slash = rest.find('/');
  u.host = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (u.host.empty()) return Status::Usage(fmt::format("'{}' has no host", url));
  // Default ports are not part of the Host header (RFC 9110 section 7.2).
  if (u.scheme == "https" && u.host.size() > 4 && u.host.ends_with(":443"))
    u.host.resize(u.host.size() - 4);
  if (u.scheme == "http" && u.host.size() > 3 && u.host.ends_with(":80"))
    u.host.resize(u.host.size() - 3);
  return u;
}

}  // namespace cloudkeep::aws
