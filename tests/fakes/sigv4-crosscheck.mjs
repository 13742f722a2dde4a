// Signs EC2 Query API requests with the official AWS SDK signer
// (@smithy/signature-v4, as used by the AWS SDK for JavaScript v3) and prints
// each Authorization header, so that a test can compare cloudkeep's signer
// with it request by request.
//
// Usage: node sigv4-crosscheck.mjs CASES.json  ->  JSON array of strings on stdout
// A case: {"host", "path", "body", "access_key_id", "secret_access_key",
//          "session_token"?, "region", "time" (RFC 3339)}
import { readFileSync } from "node:fs";
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/hash-node";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = [];
for (const c of cases) {
  const signer = new SignatureV4({
    service: "ec2",
    region: c.region,
    credentials: {
      accessKeyId: c.access_key_id,
      secretAccessKey: c.secret_access_key,
      ...(c.session_token ? { sessionToken: c.session_token } : {}),
    },
    sha256: Hash.bind(null, "sha256"),
    // The Query API does not use x-amz-content-sha256; the body hash is still signed.
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: "POST",
      protocol: "https:",
      hostname: c.host,
      path: c.path,
      query: {},
      headers: {
        host: c.host,
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
      },
      body: c.body,
    },
    { signingDate: new Date(c.time) },
  );
  out.push(signed.headers["authorization"]);
}
process.stdout.write(JSON.stringify(out) + "\n");
