#include "coord/etcd_client.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "core/log.h"
#include "core/net.h"

namespace cloudkeep::coord {
namespace {

constexpr size_t kMaxReplyBytes = 16 << 20;

// The errno values that mark a Status as "no definite answer" (IsUnreachable).
constexpr int kRefused = ECONNREFUSED;  // no endpoint accepted a connection
constexpr int kTimedOut = ETIMEDOUT;    // the call's timeout passed
constexpr int kBroken = ECONNRESET;     // the connection failed after the request was sent
constexpr int kTls = EPROTO;            // TLS failed: handshake, certificate, alert
constexpr int kUndecided = EAGAIN;      // etcd answered that it could not decide

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnData(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() + size * n > kMaxReplyBytes) return 0;  // aborts the transfer
  out->append(data, size * n);
  return size * n;
}

uint64_t RemainingMs(uint64_t deadline_ns) {
  uint64_t now = MonoNs();
  return deadline_ns > now ? (deadline_ns - now) / 1000000 : 0;
}

std::string RangeEndForPrefix(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key: etcd's "range_end = \0"
}

Status Unreachable(const std::string& what, int err) {
  return Status::FromErrno(what, err);
}

// The transport of one etcd request on a reset handle, shared by unary calls
// and the watch stream: never a proxy from the environment, no redirects,
// the client's TLS files. `headers`, `body` and `errbuf` stay the caller's
// until the transfer ends; the write callback is the caller's to set.
void SetUpRequest(CURL* h, const EtcdOptions& o, const std::string& url, uint64_t timeout_ms,
                  curl_slist* headers, const std::string* body, char* errbuf) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<uint64_t>(timeout_ms, o.connect_timeout.count())));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  if (body != nullptr) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  }
  if (!o.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, o.ca_file.c_str());
  if (!o.cert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, o.cert_file.c_str());
    curl_easy_setopt(h, CURLOPT_SSLKEY, o.key_file.c_str());
  }
}

}  // namespace

bool IsUnreachable(const Status& status) {
  if (status.ok()) return false;
  switch (status.sys_errno()) {
    case kRefused:
    case kTimedOut:
    case kBroken:
    case kTls:
    case kUndecided:
      return true;
    default:
      return false;
  }
}

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {}

EtcdClient::~EtcdClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  GlobalInit();
  if (options.endpoints.empty()) return Status::Usage("etcd: no endpoints");
  for (auto& e : options.endpoints) {
    while (!e.empty() && e.back() == '/') e.pop_back();
    if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0)
      return Status::Usage(
          fmt::format("etcd endpoint '{}': expected http://HOST:PORT or https://HOST:PORT", e));
    if (e.find('/', e.find("//") + 2) != std::string::npos)
      return Status::Usage(fmt::format("etcd endpoint '{}': expected no path", e));
  }
  for (const std::string* f : {&options.ca_file, &options.cert_file, &options.key_file}) {
    if (!f->empty() && access(f->c_str(), R_OK) != 0)
      return Status::Usage(fmt::format("etcd tls file '{}': not readable", *f));
  }
  if (options.cert_file.empty() != options.key_file.empty())
    return Status::Usage("etcd: a client certificate needs both cert_file and key_file");
  if (options.username.empty() != options.password.empty())
    return Status::Usage("etcd: authentication needs both username and password");
  if (options.connect_timeout.count() <= 0) options.connect_timeout = std::chrono::seconds(1);
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(options)));
}

void* EtcdClient::TakeHandle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void EtcdClient::ReturnHandle(void* handle) {
  std::lock_guard lock(mu_);
  idle_.push_back(handle);
}

Result<nlohmann::json> EtcdClient::CallAt(const std::string& path, const std::string* body,
                                          bool repeatable, bool with_auth, uint64_t deadline_ns) {
  std::string token;
  if (with_auth) {
    std::lock_guard lock(mu_);
    token = token_;
  }
  const size_t n = options_.endpoints.size();
  const size_t first = preferred_.load() % n;
  std::vector<std::string> why;  // one reason per endpoint tried
  int err = kRefused;
  bool any_sent = false;  // some endpoint may have received the request
  for (size_t i = 0; i < n; ++i) {
    const size_t idx = (first + i) % n;
    const std::string& endpoint = options_.endpoints[idx];
    uint64_t remaining = RemainingMs(deadline_ns);
    if (remaining == 0) {
      why.push_back(endpoint + ": no time left");
      err = kTimedOut;
      break;
    }
    CURL* h = static_cast<CURL*>(TakeHandle());
    if (h == nullptr) return Status::Failure("etcd: curl_easy_init failed");
    curl_easy_reset(h);
    std::string url = endpoint + path;
    std::string reply;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: " + token).c_str());
    // A repeatable request leaves time for the endpoints after this one; any
    // other gets all that is left (it will not be sent anywhere else).
    const uint64_t budget = repeatable ? std::max<uint64_t>(1, remaining / (n - i)) : remaining;
    SetUpRequest(h, options_, url, budget, headers, body, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnData);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
    CURLcode rc = curl_easy_perform(h);
    long http = 0;
    long sent = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
    curl_slist_free_all(headers);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    ReturnHandle(h);

    if (rc != CURLE_OK) {
      std::string reason = errbuf[0] ? errbuf : curl_easy_strerror(rc);
      why.push_back(endpoint + ": " + reason);
      if (rc == CURLE_OPERATION_TIMEDOUT)
        err = kTimedOut;
      else if (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
               rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE ||
               std::string_view(reason).find("SSL") != std::string_view::npos)
        err = kTls;
      else if (sent == 0)
        err = kRefused;
      else
        err = kBroken;
      if (sent != 0) any_sent = true;
      // Nothing was sent (refused, unresolvable, no route, TLS handshake):
      // the next endpoint is safe. After sending, only a repeatable request.
      if (sent == 0 || repeatable) continue;
      break;
    }

    nlohmann::json j = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      std::string text = reply.substr(0, 80);
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      if (http >= 500) {
        why.push_back(fmt::format("{}: HTTP {}: {}", endpoint, http, text));
        err = kUndecided;
        any_sent = true;
        if (repeatable) continue;
        break;
      }
      return Status::Failure(
          fmt::format("etcd {}{}: HTTP {}: not a JSON reply: {}", endpoint, path, http, text));
    }
    if (auto e = ParseErrorReply(j)) {
      if (OutcomeUnknown(e->code)) {
        why.push_back(fmt::format("{}: {} (code {})", endpoint, e->message, int(e->code)));
        err = kUndecided;
        any_sent = true;
        if (repeatable) continue;
        break;
      }
      Status s = Status::Failure(fmt::format("etcd {}: {}", path, e->message));
      if (e->code == GrpcCode::kUnauthenticated && with_auth && !options_.username.empty()) {
        // The caller re-authenticates and retries once; mark it so.
        return Status::FromErrno(s.message(), EACCES);
      }
      return s;
    }
    if (http != 200)
      return Status::Failure(fmt::format("etcd {}{}: HTTP {}", endpoint, path, http));
    preferred_.store(idx);
    return j;
  }
  // Nothing sent anywhere: etcd certainly did not apply it, but it did not
  // answer either; both are IsUnreachable, the message says which.
  return Unreachable(
      fmt::format("etcd {}: {}: {}", path, any_sent ? "no answer, outcome unknown" : "unreachable",
                  fmt::join(why, "; ")),
      err);
}

Status EtcdClient::Authenticate(uint64_t deadline_ns) {
  nlohmann::json req = {{"name", options_.username}, {"password", options_.password}};
  std::string body = req.dump();
  CK_ASSIGN_OR_RETURN(nlohmann::json j,
                      CallAt("/v3/auth/authenticate", &body, true, false, deadline_ns));
  if (!j.contains("token") || !j["token"].is_string() || j["token"].get<std::string>().empty())
    return Status::Failure("etcd /v3/auth/authenticate: no token in the reply");
  std::lock_guard lock(mu_);
  token_ = j["token"].get<std::string>();
  return Status::Ok();
}

Result<nlohmann::json> EtcdClient::Call(const std::string& path, const nlohmann::json& body,
                                        bool repeatable, Timeout timeout) {
  const uint64_t deadline =
      MonoNs() + static_cast<uint64_t>(std::max<int64_t>(0, timeout.count())) * 1000000;
  const bool auth = !options_.username.empty();
  if (auth) {
    bool have;
    {
      std::lock_guard lock(mu_);
      have = !token_.empty();
    }
    if (!have) CK_RETURN_IF_ERROR(Authenticate(deadline));
  }
  std::string text = body.dump();
  auto r = CallAt(path, &text, repeatable, auth, deadline);
  if (!r.ok() && auth && r.status().sys_errno() == EACCES) {
    // The token expired (etcd's simple tokens live 5 minutes by default) or
    // the member restarted: the request was refused, so sending it again is safe.
    log::Debug("etcd {}: auth token refused, authenticating again", path);
    CK_RETURN_IF_ERROR(Authenticate(deadline));
    r = CallAt(path, &text, repeatable, auth, deadline);
  }
  if (!r.ok() && r.status().sys_errno() == EACCES) return Status::Failure(r.status().message());
  return r;
}

Status EtcdClient::Health(Timeout timeout) {
  const uint64_t deadline =
      MonoNs() + static_cast<uint64_t>(std::max<int64_t>(0, timeout.count())) * 1000000;
  CK_ASSIGN_OR_RETURN(nlohmann::json j, CallAt("/health", nullptr, true, false, deadline));
  if (j.contains("health") && j["health"] == "true") return Status::Ok();
  return Unreachable("etcd /health: not healthy: " + j.dump(), kUndecided);
}

Result<std::optional<KeyValue>> EtcdClient::Get(const std::string& key, Timeout timeout) {
  CK_ASSIGN_OR_RETURN(nlohmann::json j,
                      Call("/v3/kv/range", {{"key", Base64Encode(key)}}, true, timeout));
  CK_ASSIGN_OR_RETURN(RangeResponse r, ParseRangeResponse(j));
  if (r.kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(std::move(r.kvs.front()));
}

Result<RangeResponse> EtcdClient::GetPrefix(const std::string& prefix, Timeout timeout) {
  nlohmann::json req = {{"key", Base64Encode(prefix.empty() ? std::string(1, '\0') : prefix)},
                        {"range_end", Base64Encode(RangeEndForPrefix(prefix))}};
  CK_ASSIGN_OR_RETURN(nlohmann::json j, Call("/v3/kv/range", req, true, timeout));
  return ParseRangeResponse(j);
}

Result<int64_t> EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease,
                                Timeout timeout) {
  nlohmann::json req = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) req["lease"] = std::to_string(lease);
  CK_ASSIGN_OR_RETURN(nlohmann::json j, Call("/v3/kv/put", req, false, timeout));
  CK_ASSIGN_OR_RETURN(ResponseHeader h, ParseHeader(j));
  return h.revision;
}

Result<int64_t> EtcdClient::Delete(const std::string& key, Timeout timeout) {
  CK_ASSIGN_OR_RETURN(nlohmann::json j,
                      Call("/v3/kv/deleterange", {{"key", Base64Encode(key)}}, false, timeout));
  CK_RETURN_IF_ERROR(ParseHeader(j).status());
  return JsonInt64(j, "deleted");
}

Result<TxnResponse> EtcdClient::Txn(const TxnRequest& txn, Timeout timeout) {
  CK_ASSIGN_OR_RETURN(nlohmann::json j, Call("/v3/kv/txn", EncodeTxn(txn), false, timeout));
  return ParseTxnResponse(j);
}

Result<LeaseGrantResponse> EtcdClient::LeaseGrant(int64_t ttl_seconds, Timeout timeout) {
  if (ttl_seconds <= 0)
    return Status::Usage(fmt::format("etcd lease ttl {}: must be positive", ttl_seconds));
  // Not repeatable: a grant sent twice leaves a second lease (harmless, it
  // expires), but the caller would not know which one it holds.
  CK_ASSIGN_OR_RETURN(
      nlohmann::json j,
      Call("/v3/lease/grant", {{"TTL", std::to_string(ttl_seconds)}}, false, timeout));
  return ParseLeaseGrant(j);
}

Result<int64_t> EtcdClient::LeaseKeepAliveOnce(int64_t lease, Timeout timeout) {
  CK_ASSIGN_OR_RETURN(nlohmann::json j,
                      Call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}}, true, timeout));
  return ParseKeepAliveTtl(j);
}

Status EtcdClient::LeaseRevoke(int64_t lease, Timeout timeout) {
  auto j = Call("/v3/lease/revoke", {{"ID", std::to_string(lease)}}, true, timeout);
  if (!j.ok()) {
    // etcd answers NotFound for a lease already gone: the goal is reached.
    if (!IsUnreachable(j.status()) &&
        j.status().message().find("requested lease not found") != std::string::npos)
      return Status::Ok();
    return j.status();
  }
  return ParseHeader(*j).status();
}

Result<LeaseTimeToLive> EtcdClient::LeaseTimeToLiveOf(int64_t lease, bool with_keys,
                                                      Timeout timeout) {
  nlohmann::json req = {{"ID", std::to_string(lease)}};
  if (with_keys) req["keys"] = true;
  CK_ASSIGN_OR_RETURN(nlohmann::json j, Call("/v3/lease/timetolive", req, true, timeout));
  return ParseTimeToLive(j);
}

namespace {

// The streamed reply of /v3/watch: one JSON message per line.
struct WatchStream {
  std::string buf;
  bool created = false;
  bool changed = false;
  std::string error;
};

void OnWatchMessage(WatchStream* w, const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  if (auto e = ParseErrorReply(j)) {
    w->error = e->message.empty() ? j["error"].dump() : e->message;
    return;
  }
  const nlohmann::json& r = j.contains("result") ? j["result"] : j;
  if (!r.is_object()) return;
  if (r.value("created", false)) w->created = true;
  if (r.contains("events") && r["events"].is_array() && !r["events"].empty()) w->changed = true;
  // Canceled (compacted past the revision, or by etcd): the caller re-reads.
  if (r.value("canceled", false)) w->changed = true;
  if (r.contains("compact_revision") && r["compact_revision"] != "0" && r["compact_revision"] != 0)
    w->changed = true;
}

size_t OnWatchData(char* data, size_t size, size_t n, void* user) {
  auto* w = static_cast<WatchStream*>(user);
  w->buf.append(data, size * n);
  size_t nl;
  while ((nl = w->buf.find('\n')) != std::string::npos) {
    OnWatchMessage(w, w->buf.substr(0, nl));
    w->buf.erase(0, nl + 1);
  }
  if (w->buf.size() > kMaxReplyBytes) return 0;
  // Ends the transfer as soon as the answer is known.
  if (w->changed || !w->error.empty()) return 0;
  return size * n;
}

}  // namespace

Result<bool> EtcdClient::WaitForChange(const std::string& key, int64_t after_revision,
                                       Timeout timeout) {
  const uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(1, timeout.count()));
  std::string token;
  {
    std::lock_guard lock(mu_);
    token = token_;
  }
  const std::string& endpoint = options_.endpoints[preferred_.load() % options_.endpoints.size()];
  nlohmann::json req = {
      {"create_request",
       {{"key", Base64Encode(key)}, {"start_revision", std::to_string(after_revision + 1)}}}};
  std::string body = req.dump();
  CURL* h = static_cast<CURL*>(TakeHandle());
  if (h == nullptr) return Status::Failure("etcd: curl_easy_init failed");
  curl_easy_reset(h);
  std::string url = endpoint + "/v3/watch";
  WatchStream w;
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: " + token).c_str());
  SetUpRequest(h, options_, url, ms, headers, &body, errbuf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnWatchData);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
  CURLcode rc = curl_easy_perform(h);
  long http = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
  curl_slist_free_all(headers);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  // A stream ended early leaves the connection unusable: never pooled.
  curl_easy_cleanup(h);
  if (!w.buf.empty() && !w.changed && w.error.empty()) OnWatchMessage(&w, w.buf);
  if (w.changed) return true;
  if (!w.error.empty()) return Status::Failure("etcd /v3/watch: " + w.error);
  if (rc == CURLE_OPERATION_TIMEDOUT && w.created) return false;
  if (rc == CURLE_OK && http != 200)
    return Status::Failure(fmt::format("etcd {}/v3/watch: HTTP {}", endpoint, http));
  std::string reason = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  return Unreachable(fmt::format("etcd {}/v3/watch: {}", endpoint,
                                 rc == CURLE_OK ? std::string("the stream ended") : reason),
                     rc == CURLE_OPERATION_TIMEDOUT ? kTimedOut : kBroken);
}

}  // namespace cloudkeep::coord
