// `cloudkeep mail dkim keygen|sign|verify|check`: flags in, the DKIM code of
// src/mail (RFC 6376, RFC 8463) does the work, a message, a table or one
// JSON document out.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/mail_cmd.h"
#include "core/fs.h"
#include "core/log.h"
#include "mail/dkim_check.h"
#include "mail/dkim_key.h"
#include "mail/dkim_keyfile.h"
#include "mail/dkim_sign.h"
#include "mail/dkim_verify.h"
#include "mail/resolver.h"

namespace cloudkeep::cli {

namespace {

// The message from FILE, or stdin for "" and "-".
Result<std::string> ReadMessage(const std::string& path) {
  if (path.empty() || path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  auto data = ReadFile(path);
  if (!data.ok())
    return Status::Usage(
        fmt::format("cannot read message '{}': {}", path, data.status().message()));
  return data;
}

// Zone-file form of the record, split into strings of at most 255 bytes
// (RFC 1035 §3.3: a character-string holds 255 bytes; a 2048-bit RSA key
// needs two of them).
std::string ZoneLine(const std::string& name, const std::string& record) {
  std::string strings;
  for (size_t i = 0; i < record.size(); i += 255) {
    if (i > 0) strings += "\n\t";
    strings += "\"" + record.substr(i, 255) + "\"";
  }
  if (record.size() <= 255) return fmt::format("{}. IN TXT {}", name, strings);
  return fmt::format("{}. IN TXT ( {} )", name, strings);
}

std::vector<std::string> SplitNames(const std::vector<std::string>& raw) {
  std::vector<std::string> out;
  for (const auto& item : raw) {
    std::string cur;
    for (char c : item + ",") {
      if (c == ',' || c == ':') {
        while (!cur.empty() && cur.back() == ' ') cur.pop_back();
        if (!cur.empty()) out.push_back(cur);
        cur.clear();
      } else if (!(c == ' ' && cur.empty())) {
        cur += c;
      }
    }
  }
  return out;
}

void AddKeygen(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string type = "rsa";
    int bits = 2048;
    std::string selector, domain, out;
    bool force = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd =
      group->add_subcommand("keygen", "Make a DKIM key pair and print the TXT record to publish");
  cmd->add_option("--type", f->type, "rsa (default) or ed25519 (RFC 8463)");
  cmd->add_option("--bits", f->bits, "RSA key size (default 2048)");
  cmd->add_option("--selector", f->selector,
                  "Selector: the key is published at SELECTOR._domainkey.DOMAIN")
      ->required();
  cmd->add_option("--domain", f->domain, "The signing domain (d=)")->required();
  cmd->add_option("--out", f->out, "Write the private key (PEM, mode 0600) to this file")
      ->required();
  cmd->add_flag("--force", f->force, "Overwrite --out if it exists");
  cmd->footer(
      "Examples:\n"
      "  cloudkeep mail dkim keygen --selector mail2026 --domain example.com --out "
      "/etc/dkim/mail2026.pem\n"
      "  cloudkeep mail dkim keygen --type ed25519 --selector ed2026 --domain example.com --out "
      "ed2026.pem");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    mail::DkimKeyType type;
    if (f->type == "rsa") {
      type = mail::DkimKeyType::kRsa;
    } else if (f->type == "ed25519") {
      type = mail::DkimKeyType::kEd25519;
    } else {
      return Status::Usage(fmt::format("--type '{}' is not rsa or ed25519", f->type));
    }
    // A key published under a name that is not a DNS name can never be found.
    CK_RETURN_IF_ERROR(mail::CheckDkimSelector(f->selector, "--selector"));
    CK_RETURN_IF_ERROR(mail::CheckDkimDomain(f->domain, "--domain"));
    CK_RETURN_IF_ERROR(mail::CheckDkimKeyName(f->selector, f->domain));
    if (type == mail::DkimKeyType::kRsa && (f->bits < 1024 || f->bits > 8192))
      return Status::Usage(fmt::format("--bits '{}' is outside 1024..8192", f->bits));
    if (!f->force && ::access(f->out.c_str(), F_OK) == 0)
      return Status::Usage(fmt::format("'{}' exists; pass --force to overwrite it", f->out));
    CK_ASSIGN_OR_RETURN(auto key, mail::DkimPrivateKey::Generate(type, f->bits));
    CK_ASSIGN_OR_RETURN(std::string pem, key.PrivatePem());
    CK_ASSIGN_OR_RETURN(std::string record, key.KeyRecord());
    CK_RETURN_IF_ERROR(WriteFileAtomic(f->out, pem, 0600));
    // The umask can only take bits away; make sure nothing else added any.
    ::chmod(f->out.c_str(), 0600);
    std::string name = mail::DkimKeyName(f->selector, f->domain);
    if (key.bits() < 2048 && type == mail::DkimKeyType::kRsa)
      log::Warn("RSA keys under 2048 bits are weak; mailbox providers expect 2048");
    log::Info("private key written to {} (mode 0600)", f->out);
    if (ctx.global.json) {
      PrintJson({{"name", name},
                 {"type", mail::DkimKeyTypeName(type)},
                 {"bits", key.bits()},
                 {"record", record},
                 {"zone_line", ZoneLine(name, record)},
                 {"private_key_file", f->out}});
    } else {
      PrintText(ZoneLine(name, record) + "\n");
    }
    return Status::Ok();
  }));
}

void AddSign(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string key, domain, selector, identity, message, out, expire;
    std::string canon = "relaxed/relaxed";
    std::string headers;
    bool no_timestamp = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd =
      group->add_subcommand("sign", "Sign a message (RFC 6376; rsa-sha256 or ed25519-sha256)");
  cmd->add_option("MESSAGE", f->message, "Message file (default: stdin)");
  cmd->add_option("--key", f->key, "Private key: PEM from keygen, or dkimpy's base64 Ed25519 seed")
      ->required();
  cmd->add_option("--domain", f->domain, "Signing domain (d=)")->required();
  cmd->add_option("--selector", f->selector, "Selector (s=)")->required();
  cmd->add_option("--canon", f->canon, "Header/body canonicalization (default relaxed/relaxed)");
  cmd->add_option("--headers", f->headers,
                  "Header fields to sign, e.g. from:to:subject (default: the usual ones present, "
                  "From over-signed)");
  cmd->add_option("--identity", f->identity,
                  "Agent or user identifier (i=), e.g. @news.example.com");
  cmd->add_option("--expire", f->expire, "Signature expires this long after signing (x=), e.g. 7d");
  cmd->add_flag("--no-timestamp", f->no_timestamp, "Leave out the signing time (t=)");
  cmd->add_option("--out", f->out, "Write the signed message here instead of stdout");
  cmd->footer(
      "Examples:\n"
      "  cloudkeep mail dkim sign --key mail2026.pem --domain example.com --selector mail2026 "
      "msg.eml > signed.eml\n"
      "  sendmail-filter | cloudkeep mail dkim sign --key ed.pem --domain example.com --selector "
      "ed2026 --canon "
      "relaxed/simple");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    // A signature whose s=/d= is not a DNS name can never be verified.
    CK_RETURN_IF_ERROR(mail::CheckDkimSelector(f->selector, "--selector"));
    CK_RETURN_IF_ERROR(mail::CheckDkimDomain(f->domain, "--domain"));
    CK_RETURN_IF_ERROR(mail::CheckDkimKeyName(f->selector, f->domain));
    auto key_text = ReadFile(f->key);
    if (!key_text.ok())
      return Status::Usage(
          fmt::format("cannot read key '{}': {}", f->key, key_text.status().message()));
    auto key = mail::DkimPrivateKey::Parse(*key_text);
    if (!key.ok())
      return Status::Usage(fmt::format("key '{}': {}", f->key, key.status().message()));
    mail::DkimSignOptions o;
    o.domain = f->domain;
    o.selector = f->selector;
    o.identity = f->identity;
    auto canon = mail::ParseDkimCanon(f->canon);
    if (!canon.ok())
      return Status::Usage(
          fmt::format("--canon '{}' is not simple|relaxed[/simple|relaxed]", f->canon));
    o.canon = *canon;
    o.headers = SplitNames({f->headers});
    if (!f->no_timestamp) o.timestamp = static_cast<int64_t>(std::time(nullptr));
    if (!f->expire.empty()) {
      CK_ASSIGN_OR_RETURN(Micros d, DurationFlag(f->expire, BareNumber::kDays, "--expire"));
      if (d.count() <= 0)
        return Status::Usage(fmt::format("--expire '{}' must be positive", f->expire));
      o.expiration = static_cast<int64_t>(std::time(nullptr)) + d.count() / 1000000;
    }
    CK_ASSIGN_OR_RETURN(std::string message, ReadMessage(f->message));
    CK_ASSIGN_OR_RETURN(auto s, mail::DkimSign(message, *key, o));
    if (!f->out.empty()) CK_RETURN_IF_ERROR(WriteFileAtomic(f->out, s.message, 0644));
    if (ctx.global.json) {
      Json doc = {{"domain", f->domain},
                  {"selector", f->selector},
                  {"algorithm", mail::DkimAlgorithmName(s.algorithm)},
                  {"canonicalization", fmt::format("{}/{}", mail::DkimCanonName(o.canon.header),
                                                   mail::DkimCanonName(o.canon.body))},
                  {"signed_headers", s.signed_headers},
                  {"body_hash", s.body_hash},
                  {"dkim_signature", s.field}};
      if (f->out.empty()) doc["message"] = s.message;
      PrintJson(doc);
    } else if (f->out.empty()) {
      std::fwrite(s.message.data(), 1, s.message.size(), stdout);
      std::fflush(stdout);
    }
    return Status::Ok();
  }));
}

void AddVerify(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string message, key_record, key_file;
    DnsFlags dns;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd =
      group->add_subcommand("verify", "Verify a message's DKIM signatures; exit 0 when one passes");
  cmd->add_option("MESSAGE", f->message, "Message file (default: stdin)");
  cmd->add_option("--key-record", f->key_record,
                  "Use this key record (\"v=DKIM1; k=…; p=…\") for every signature instead of DNS");
  cmd->add_option(
      "--key-file", f->key_file,
      "Read the key records from this file of zone lines (NAME IN TXT \"…\") instead of DNS");
  AddDnsFlags(cmd, &f->dns);
  cmd->footer(
      "Results are RFC 8601's: pass, fail, permerror, temperror, none. The exit code is 0 when at "
      "least\n"
      "one signature passes, 1 otherwise.\n\n"
      "Examples:\n"
      "  cloudkeep mail dkim verify received.eml\n"
      "  cloudkeep mail dkim verify --resolver 127.0.0.1:5353 < received.eml\n"
      "  cloudkeep mail dkim verify --key-file keys.zone signed.eml");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    if (!f->key_record.empty() && !f->key_file.empty())
      return Status::Usage("give --key-record or --key-file, not both");
    mail::DkimVerifyOptions o;
    o.now = static_cast<int64_t>(std::time(nullptr));
    std::unique_ptr<mail::Resolver> resolver;
    if (!f->key_record.empty()) {
      auto rec = mail::ParseDkimKeyRecord(f->key_record);
      if (!rec.ok())
        return Status::Usage(
            fmt::format("--key-record '{}': {}", f->key_record, rec.status().message()));
      o.key_record = f->key_record;
    } else if (!f->key_file.empty()) {
      auto text = ReadFile(f->key_file);
      if (!text.ok()) return Status::Usage(fmt::format("cannot read --key-file '{}'", f->key_file));
      auto loaded = mail::LoadDkimKeyFile(*text);
      if (!loaded.ok())
        return Status::Usage(
            fmt::format("--key-file '{}': {}", f->key_file, loaded.status().message()));
      resolver = std::move(*loaded);
    } else {
      CK_ASSIGN_OR_RETURN(resolver, MakeResolver(f->dns));
    }
    CK_ASSIGN_OR_RETURN(std::string message, ReadMessage(f->message));
    CK_ASSIGN_OR_RETURN(auto verdicts, mail::DkimVerify(message, resolver.get(), o));
    bool pass = false;
    for (const auto& v : verdicts) pass = pass || v.result == mail::DkimResult::kPass;
    if (ctx.global.json) {
      Json doc = {{"result", pass ? "pass" : mail::DkimResultName(verdicts.front().result)},
                  {"signatures", Json::array()}};
      for (const auto& v : verdicts) doc["signatures"].push_back(mail::DkimVerdictToJson(v));
      PrintJson(doc);
    } else {
      Table t({"RESULT", "DOMAIN", "SELECTOR", "ALGORITHM", "KEY", "REASON"});
      for (const auto& v : verdicts) {
        std::string key = v.key_type.empty() ? "-" : fmt::format("{}-{}", v.key_type, v.key_bits);
        if (v.testing) key += " t=y";
        t.AddRow({mail::DkimResultName(v.result), v.domain.empty() ? "-" : v.domain,
                  v.selector.empty() ? "-" : v.selector, v.algorithm.empty() ? "-" : v.algorithm,
                  key, v.reason.empty() ? "-" : v.reason});
      }
      PrintText(t.Render());
    }
    if (pass) return Status::Ok();
    const auto& first = verdicts.front();
    return Status::Failure(fmt::format("no valid DKIM signature: {}: {}",
                                       mail::DkimResultName(first.result), first.reason));
  }));
}

void AddCheck(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string domain;
    std::vector<std::string> selectors;
    DnsFlags dns;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand("check", "Check a domain's published DKIM key records");
  cmd->add_option("DOMAIN", f->domain, "The signing domain")->required();
  cmd->add_option("--dkim-selector,--selector", f->selectors,
                  "Selector to check (repeatable; default: try common selectors)")
      ->allow_extra_args(false);
  AddDnsFlags(cmd, &f->dns);
  cmd->footer(
      "Each key record is judged: key type, size (RSA under 1024 bits fails, under 2048 warns), "
      "t=y\n"
      "testing, revoked (empty p=), s= and h= restrictions, several records, missing. Exit 1 when "
      "a\n"
      "check fails.\n\n"
      "Examples:\n"
      "  cloudkeep mail dkim check example.com --dkim-selector mail2026\n"
      "  cloudkeep --json mail dkim check example.com --resolver 127.0.0.1:5353");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    std::string domain = f->domain;
    if (!domain.empty() && domain.back() == '.') domain.pop_back();
    CK_RETURN_IF_ERROR(mail::CheckDkimDomain(domain, "domain"));
    for (const auto& s : f->selectors) {
      CK_RETURN_IF_ERROR(mail::CheckDkimSelector(s, "--selector"));
      CK_RETURN_IF_ERROR(mail::CheckDkimKeyName(s, domain));
    }
    CK_ASSIGN_OR_RETURN(auto resolver, MakeResolver(f->dns));
    mail::DkimCheckReport r = mail::CheckDkimSelectors(*resolver, domain, f->selectors);
    if (ctx.global.json) {
      PrintJson(mail::DkimCheckToJson(r));
    } else {
      std::string out;
      if (!r.selectors.empty()) {
        Table t(
            {"SELECTOR", "RESULT", "KEY", "BITS", "FLAGS", "NAME"},
            {Table::Align::kLeft, Table::Align::kLeft, Table::Align::kLeft, Table::Align::kRight});
        for (const auto& s : r.selectors) {
          std::string flags;
          if (s.testing) flags += "testing ";
          if (s.revoked) flags += "revoked ";
          if (s.lookup_failed)
            flags += "unchecked ";
          else if (!s.found)
            flags += "missing ";
          if (!flags.empty()) flags.pop_back();
          t.AddRow({s.selector, mail::DkimSeverityName(s.severity),
                    s.key_type.empty() ? "-" : s.key_type,
                    s.key_bits ? std::to_string(s.key_bits) : "-", flags.empty() ? "-" : flags,
                    s.name});
        }
        out += t.Render() + "\n";
      }
      Table t({"LEVEL", "SELECTOR", "FINDING", "FIX"});
      for (const auto& x : r.findings)
        t.AddRow({mail::DkimSeverityName(x.severity), x.selector.empty() ? "-" : x.selector,
                  x.message, x.fix.empty() ? "-" : x.fix});
      out += t.Render();
      out += fmt::format("\n{} of {} selector lookups answered\n", r.checked, r.tried);
      PrintText(out);
    }
    if (r.severity == mail::DkimSeverity::kFail)
      return Status::Failure(fmt::format("DKIM check of {} failed", domain));
    if (r.severity == mail::DkimSeverity::kUnknown)
      return Status::Failure(fmt::format("DKIM check of {} incomplete: {} of {} selectors checked",
                                         domain, r.checked, r.tried));
    return Status::Ok();
  }));
}

}  // namespace

void AddMailDkimCommands(CLI::App* group, Context& ctx) {
  auto* dkim =
      group->add_subcommand("dkim", "DKIM keys, signing and verification (RFC 6376, RFC 8463)");
  dkim->require_subcommand(1);
  dkim->footer(
      "keygen makes the key and prints the record to publish; sign and verify work on one message\n"
      "(file or stdin); check judges the key records a domain publishes. Keys come from DNS, or\n"
      "offline from --key-record / --key-file.");
  dkim->fallthrough();
  AddKeygen(dkim, ctx);
  AddSign(dkim, ctx);
  AddVerify(dkim, ctx);
  AddCheck(dkim, ctx);
  for (auto* sub : dkim->get_subcommands()) sub->fallthrough();
}

}  // namespace cloudkeep::cli
