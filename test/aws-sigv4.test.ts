// AWS SigV4 at the boundary, verified by an independent implementation: for every request the
// upstream received, botocore (the AWS SDK for Python's signer) computes the signature for the
// same method, URL, signed headers, body and timestamp with the same keys, and it must equal the
// one the sidecar sent. The agent holds no key; its own Authorization, X-Amz-* headers and a
// presigned URL's query auth never reach the upstream; a reflected session token is scrubbed.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { curl, pemBundle } from "./helpers/curl.ts";
import { startTlsServer, type TlsTestServer } from "./helpers/tls-server.ts";
import { parseJson, policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

const AKID = "AKIDEXAMPLE7Q2W3E4R";
const SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION = "FwoGZXIvYXdzEXAMPLEsessionTOKEN0a9b8c7d";
const S3 = "agent-bucket.s3.eu-west-1.amazonaws.com";
const DYNAMO = "dynamodb.eu-west-1.amazonaws.com";
const PLAIN = "objects.example.test";
/** SHA-256 of an empty body. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

interface Received {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** botocore's signature for each request (argv: JSON list on stdin). */
const BOTOCORE = `import json, sys
from botocore.auth import SigV4Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
out = []
for r in json.load(sys.stdin):
    creds = Credentials(r["akid"], r["secret"], r.get("token"))
    auth = (S3SigV4Auth if r["service"] == "s3" else SigV4Auth)(creds, r["service"], r["region"])
    req = AWSRequest(method=r["method"], url=r["url"], data=r["body"].encode(), headers=r["headers"])
    req.context["timestamp"] = r["headers"]["x-amz-date"]
    canonical = auth.canonical_request(req)
    out.append(auth.signature(auth.string_to_sign(req, canonical), req))
print(json.dumps(out))
`;

function botocore(requests: object[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = execFile("/usr/bin/python3", ["-c", BOTOCORE], (err, stdout, stderr) => {
      if (err) reject(new Error(`botocore: ${stderr}`));
      else resolve(JSON.parse(stdout) as string[]);
    });
    child.stdin?.end(JSON.stringify(requests));
  });
}

describe("AWS SigV4 credentials (signatures checked by botocore)", function () {
  let sidecar: TestSidecar;
  let server: TlsTestServer;
  let port = 0;
  let bundle = "";
  const received: Received[] = [];

  before(async function () {
    server = await startTlsServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const headers = Object.fromEntries(
          Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : (v ?? "")]),
        );
        received.push({
          method: req.method ?? "",
          url: req.url ?? "",
          headers,
          body: Buffer.concat(chunks).toString("utf8"),
        });
        // Reflects the session token, as an error page might.
        const signature = /Signature=([0-9a-f]+)/.exec(headers.authorization ?? "")?.[1] ?? "none";
        res
          .writeHead(200, { "content-type": "text/plain", "x-signature-provided": signature })
          .end(`token ${headers["x-amz-security-token"] ?? "none"} signature ${signature}`);
      });
    });
    port = server.port;
    const sigv4 = (name: string, awsSigV4: Record<string, unknown>) => ({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "Credential",
      metadata: { name, namespace: "agents" },
      spec: {
        secretRef: { name: "aws", key: "secret_access_key" },
        injection: { awsSigV4: { accessKeyIdKey: "access_key_id", ...awsSigV4 } },
      },
    });
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "s3", hosts: [S3], ports: [port], credential: "s3" },
          { name: "dynamo", hosts: [DYNAMO], ports: [port], credential: "dynamo" },
          { name: "plain", hosts: [PLAIN], ports: [port], credential: "explicit" },
          { name: "unscoped", hosts: ["unscoped.example.test"], ports: [port], credential: "dynamo" },
        ]),
      ],
      credentials: [
        sigv4("s3", { unsignedPayload: true }),
        sigv4("dynamo", { sessionTokenKey: "session_token" }),
        sigv4("explicit", { region: "us-east-2", service: "execute-api" }),
      ],
      secrets: [
        secret("agents", "aws", {
          secret_access_key: SECRET_KEY,
          access_key_id: AKID,
          session_token: SESSION,
        }),
      ],
      pins: Object.fromEntries([S3, DYNAMO, PLAIN, "unscoped.example.test"].map((h) => [h, "127.0.0.1"])),
      upstreamCa: [server.ca.certificatePem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });

  after(async function () {
    await sidecar.close();
    await server.close();
  });

  const call = (url: string, extra: string[] = []) =>
    curl(["-x", sidecar.proxyUrl, "--cacert", bundle, ...extra, url]);

  /** botocore's verdict on the last request the upstream received, for `host`. */
  async function expectBotocoreAgrees(
    host: string,
    scope: { region: string; service: string },
    token?: string,
  ): Promise<Received> {
    const last = received.at(-1);
    if (last === undefined) throw new Error("the upstream received nothing");
    const auth = last.headers.authorization ?? "";
    const match =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
        auth,
      );
    expect(match, auth).to.not.equal(null);
    const [, akid, , region, service, signedHeaders = "", signature] = match ?? [];
    expect({ akid, region, service }).to.deep.equal({ akid: AKID, ...scope });
    const signed = Object.fromEntries(
      signedHeaders
        .split(";")
        .filter((h) => h !== "host")
        .map((h) => [h, last.headers[h] ?? ""]),
    );
    const [expected] = await botocore([
      {
        akid: AKID,
        secret: SECRET_KEY,
        ...(token !== undefined ? { token } : {}),
        service: scope.service,
        region: scope.region,
        method: last.method,
        url: `https://${host}:${String(port)}${last.url}`,
        headers: signed,
        body: last.body,
      },
    ]);
    expect(signature).to.equal(expected);
    return last;
  }

  it("S3 GET with a query string (scope from the host, unsigned payload); the agent's own auth is removed", async function () {
    const res = await call(
      `https://${S3}:${String(port)}/reports/2026%2011/q.csv?versionId=3&acl&X-Amz-Signature=forged&list-type=2`,
      [
        ...["-H", "Authorization: AWS4-HMAC-SHA256 Credential=AGENT/x, SignedHeaders=host, Signature=00"],
        ...["-H", "X-Amz-Date: 19700101T000000Z", "-H", "X-Amz-Security-Token: agent-token"],
      ],
    );
    expect(res.status, res.body).to.equal(200);
    const last = await expectBotocoreAgrees(S3, { region: "eu-west-1", service: "s3" });
    expect(last.url).to.equal("/reports/2026%2011/q.csv?versionId=3&acl&list-type=2");
    expect(last.headers["x-amz-security-token"]).to.equal(undefined);
    expect(last.headers["x-amz-date"]).to.not.equal("19700101T000000Z");
    // No body: the empty body's hash, signed.
    expect(last.headers["x-amz-content-sha256"]).to.equal(EMPTY_SHA256);
  });

  it("S3 PUT: the body streams through unsigned (UNSIGNED-PAYLOAD) and arrives whole", async function () {
    const body = "x".repeat(300_000);
    const file = join(mkdtempSync(join(tmpdir(), "airlock-sigv4-")), "upload.bin");
    writeFileSync(file, body);
    const res = await call(`https://${S3}:${String(port)}/upload.bin`, [
      "-X",
      "PUT",
      "--data-binary",
      `@${file}`,
    ]);
    expect(res.status).to.equal(200);
    const last = await expectBotocoreAgrees(S3, { region: "eu-west-1", service: "s3" });
    expect(last.headers["x-amz-content-sha256"]).to.equal("UNSIGNED-PAYLOAD");
    expect(last.body).to.equal(body);
    rmSync(dirname(file), { recursive: true, force: true });
  });

  it("DynamoDB POST: the body's SHA-256 is signed, with a session token; its reflection is scrubbed", async function () {
    const body = JSON.stringify({ TableName: "agents", Key: { id: { S: "a b/c" } } });
    const res = await call(`https://${DYNAMO}:${String(port)}/`, [
      ...["-X", "POST", "-H", "Content-Type: application/x-amz-json-1.0", "--data-binary", body],
    ]);
    expect(res.status).to.equal(200);
    // The session token and the signature (replayable for this request) are scrubbed.
    expect(res.body).to.equal("token [airlock:redacted] signature [airlock:redacted]");
    expect(res.headers["x-signature-provided"]).to.equal("[airlock:redacted]");
    const last = await expectBotocoreAgrees(DYNAMO, { region: "eu-west-1", service: "dynamodb" }, SESSION);
    expect(last.body).to.equal(body);
    expect(last.headers["x-amz-security-token"]).to.equal(SESSION);
  });

  it("an explicit region and service for a host that is not *.amazonaws.com; a path URI-encoded again for non-S3", async function () {
    const res = await call(`https://${PLAIN}:${String(port)}/prod/items/a%2Fb?z=1&a=2`);
    expect(res.status).to.equal(200);
    await expectBotocoreAgrees(PLAIN, { region: "us-east-2", service: "execute-api" });
  });

  it("a host with no region or service to derive blocks with CredentialUnavailable", async function () {
    const before = received.length;
    const res = await call(`https://unscoped.example.test:${String(port)}/x`);
    expect(res.status).to.equal(403);
    expect(parseJson(res.body)).to.include({ reason: "CredentialUnavailable" });
    expect(received.length).to.equal(before);
  });
});
