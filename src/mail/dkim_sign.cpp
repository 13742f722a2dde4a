#include "mail/dkim_sign.h"

#include <fmt/format.h>

#include "mail/dkim_verify.h"

namespace cloudkeep::mail {

namespace {

// Builds a header field, folding before a piece that would make the line
// longer than 78 characters (RFC 5322 §2.1.1).
class Folder {
 public:
  explicit Folder(std::string start) : out_(std::move(start)) {}
  // Appends " piece", or a fold and the piece.
  void Add(std::string_view piece) { Append(piece, true); }
  // Appends the piece directly, or after a fold (FWS is allowed there).
  void Join(std::string_view piece) { Append(piece, false); }
  void Break() { out_ += "\r\n\t"; }
  const std::string& text() const { return out_; }

 private:
  void Append(std::string_view piece, bool space) {
    size_t nl = out_.rfind('\n');
    size_t line = nl == std::string::npos ? out_.size() : out_.size() - nl - 1;
    if (line + piece.size() + (space ? 1 : 0) > 78 && line > 1) {
      out_ += "\r\n\t";
    } else if (space) {
      out_ += ' ';
    }
    out_ += piece;
  }
  std::string out_;
};

}  // namespace

const std::vector<std::string>& DefaultDkimSignedHeaders() {
  static const std::vector<std::string> kHeaders = {"from",
                                                    "sender",
                                                    "reply-to",
                                                    "subject",
                                                    "date",
                                                    "message-id",
                                                    "to",
                                                    "cc",
                                                    "mime-version",
                                                    "content-type",
                                                    "content-transfer-encoding",
                                                    "in-reply-to",
                                                    "references",
                                                    "list-id",
                                                    "list-unsubscribe",
                                                    "list-unsubscribe-post"};
  return kHeaders;
}

Result<DkimSigned> DkimSign(std::string_view message, const DkimPrivateKey& key,
                            const DkimSignOptions& options) {
  CK_RETURN_IF_ERROR(CheckDkimDomain(options.domain));
  CK_RETURN_IF_ERROR(CheckDkimSelector(options.selector));
  CK_RETURN_IF_ERROR(CheckDkimKeyName(options.selector, options.domain));
  if (!options.identity.empty() &&
      !DkimDomainWithin(DkimIdentityDomain(options.identity), options.domain))
    return Status::Usage(
        fmt::format("identity '{}' is not within domain '{}'", options.identity, options.domain));
  auto parsed = ParseMailMessage(message);
  if (!parsed.ok()) return Status::Usage(fmt::format("message: {}", parsed.status().message()));
  const MailMessage& msg = *parsed;

  DkimSigned out;
  out.algorithm = key.type() == DkimKeyType::kEd25519 ? DkimAlgorithm::kEd25519Sha256
                                                      : DkimAlgorithm::kRsaSha256;
  bool message_has_from = false;
  for (const auto& h : msg.headers)
    if (EqualsIgnoreCase(h.name, "from")) message_has_from = true;
  // §5.4: the From header field must be signed, so it must be there.
  if (!message_has_from) return Status::Usage("the message has no From header field");
  if (options.headers.empty()) {
    for (const auto& name : DefaultDkimSignedHeaders())
      for (const auto& h : msg.headers)
        if (EqualsIgnoreCase(h.name, name)) out.signed_headers.push_back(name);
    out.signed_headers.push_back("from");
  } else {
    bool from = false;
    for (const auto& name : options.headers) {
      if (name.empty() || name.find_first_of(": \t;") != std::string::npos)
        return Status::Usage(fmt::format("bad header field name '{}'", name));
      if (EqualsIgnoreCase(name, "from")) from = true;
      out.signed_headers.push_back(ToLower(name));
    }
    if (!from) return Status::Usage("the signed header fields must include From (RFC 6376 §5.4)");
  }

  CK_ASSIGN_OR_RETURN(std::string body, DkimCanonicalBody(msg, options.canon.body, std::nullopt));
  out.body_hash = EncodeBase64(Sha256(body));

  Folder f("DKIM-Signature:");
  f.Add("v=1;");
  f.Add(fmt::format("a={};", DkimAlgorithmName(out.algorithm)));
  f.Add(fmt::format("c={}/{};", DkimCanonName(options.canon.header),
                    DkimCanonName(options.canon.body)));
  f.Add(fmt::format("d={};", options.domain));
  f.Add(fmt::format("s={};", options.selector));
  if (!options.identity.empty()) f.Add(fmt::format("i={};", options.identity));
  if (options.timestamp) f.Add(fmt::format("t={};", *options.timestamp));
  if (options.expiration) f.Add(fmt::format("x={};", *options.expiration));
  // h= may be long: each name is its own piece, folded at the colons.
  for (size_t i = 0; i < out.signed_headers.size(); ++i) {
    std::string piece = (i == 0 ? "h=" : "") + out.signed_headers[i] +
                        (i + 1 < out.signed_headers.size() ? ":" : ";");
    if (i == 0) {
      f.Add(piece);
    } else {
      f.Join(piece);
    }
  }
  f.Add(fmt::format("bh={};", out.body_hash));
  // b= starts a line of its own so that its folded value lines up.
  f.Break();
  f.Join("b=");
  std::string unsigned_field = f.text() + "\r\n";

  std::string data = DkimHeaderData(msg, out.signed_headers, unsigned_field, options.canon.header);
  CK_ASSIGN_OR_RETURN(std::string sig, DkimSignData(key, out.algorithm, data));
  std::string b64 = EncodeBase64(sig);
  std::string field = f.text();
  // "\tb=" + 72 characters, then "\t" + 74: lines of 76 columns.
  size_t pos = 0;
  for (size_t chunk = 72; pos < b64.size(); chunk = 74) {
    if (pos > 0) field += "\r\n\t";
    field += b64.substr(pos, chunk);
    pos += chunk;
  }
  field += "\r\n";
  if (msg.unix_line_endings) {
    std::string lf;
    for (char c : field)
      if (c != '\r') lf += c;
    field = std::move(lf);
  }
  out.field = field;
  out.message = field + std::string(message);
  return out;
}

}  // namespace cloudkeep::mail
