// AWS Signature Version 4: the request signer.
//
// Implements the signing process of the AWS General Reference ("Create a
// signed AWS API request"): canonical request -> string to sign -> signature
// from the HMAC-SHA256 key chain, either in the Authorization header or in
// the query string (presigned). It knows nothing of EC2 or of HTTP
// transport: it takes a request as data and returns the additions that sign
// it, so that the conformance suite (aws-c-auth's v4 cases) can drive it
// directly. Pure functions; safe to call from any thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace cloudkeep::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
  bool empty() const { return access_key_id.empty() || secret_access_key.empty(); }
};

struct SignableRequest {
  std::string method = "POST";
  // The path as a client would write it, not yet percent-encoded.
  std::string path = "/";
  // Query parameters, decoded. Order does not matter: signing sorts them.
  std::vector<std::pair<std::string, std::string>> query;
  // Header names in any case; duplicates are kept in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct SigningParams {
  std::string region;
  std::string service;
  TimePoint time{};
  bool normalize_path = true;  // remove dot segments (not for S3)
  bool sign_body = false;      // add x-amz-content-sha256
  // The session token is added after signing (as some services want), not signed.
  bool omit_session_token = false;
  int expires_seconds = 3600;  // query signing only
};

// What signing produced. The request passed in has been extended with the
// headers (header signing) or query parameters (query signing) to send.
struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lower-case hex
  std::string authorization;  // header signing: the Authorization value
};

Signature SignHeaders(SignableRequest& request, const Credentials& creds,
                      const SigningParams& params);
Signature SignQuery(SignableRequest& request, const Credentials& creds,
                    const SigningParams& params);

// RFC 3986 section 2.3: everything but unreserved characters is %XX
// (upper-case hex); '/' is kept when `keep_slash`.
std::string UriEncode(const std::string& s, bool keep_slash);
// Decodes %XX sequences; '+' is left as is (SigV4 does not treat it as space).
std::string UriDecode(const std::string& s);
// "20150830T123600Z"
std::string AmzDate(TimePoint t);
std::string Sha256Hex(const std::string& data);
std::string HmacSha256(const std::string& key, const std::string& data);
std::string Hex(const std::string& bytes);

}  // namespace cloudkeep::aws
