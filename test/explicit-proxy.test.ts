// The three outcomes through the explicit proxy, with real clients (curl, Node fetch through an
// undici ProxyAgent) against real HTTP and HTTPS upstreams on loopback. The upstream's own record
// is the proof of what crossed the boundary (THREATS.md I1, I3, I4).
import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fetch, ProxyAgent } from "undici";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import {
  credential,
  parseJson,
  policy,
  secret,
  startTestSidecar,
  type TestSidecar,
} from "./helpers/sidecar.ts";

const SECRET = "s3cr3t-token-value-0123456789";

describe("explicit proxy: inject, allow, block with real clients", function () {
  let tlsUp: EchoUpstream;
  let plainUp: EchoUpstream;
  let sidecar: TestSidecar;
  let bundle: string;
  const names = ["api.example.test", "open.example.test", "evil.example.test", "plain.example.test"];

  before(async function () {
    tlsUp = await startEchoUpstream({ tls: true });
    plainUp = await startEchoUpstream();
    const ports = [tlsUp.port];
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "api", hosts: ["api.example.test"], ports, credential: "api-token" },
          { name: "open", hosts: ["open.example.test"], ports },
          { name: "plain", hosts: ["plain.example.test"], ports: [plainUp.port] },
          {
            name: "plain-inject",
            hosts: ["api.example.test"],
            ports: [plainUp.port],
            credential: "api-token",
          },
        ]),
      ],
      credentials: [
        credential("api-token", "api-secret", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
      ],
      secrets: [secret("agents", "api-secret", { token: SECRET })],
      pins: Object.fromEntries(names.map((n) => [n, "127.0.0.1"])),
      upstreamCa: [tlsUp.caPem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem, tlsUp.caPem);
  });

  after(async function () {
    await sidecar.close();
    await tlsUp.close();
    await plainUp.close();
  });

  const viaCurl = (url: string, extra: string[] = []) =>
    curl(["-x", sidecar.proxyUrl, "--cacert", bundle, ...extra, url]);

  it("inject (curl, CONNECT): the upstream receives the credential, the agent never sees it", async function () {
    const before = tlsUp.received.length;
    const res = await viaCurl(`https://api.example.test:${tlsUp.port}/v1/me`, [
      "-H",
      "Authorization: Bearer agent-guess",
    ]);
    expect(res.status).to.equal(200);
    expect(res.headers["x-airlock-decision"]).to.equal("inject");
    const got = tlsUp.received.slice(before);
    expect(got).to.have.length(1);
    expect(got[0]?.headers.authorization).to.equal(`Bearer ${SECRET}`);
    // The upstream echoed the request headers back: the secret must have been scrubbed.
    expect(res.body).to.include("[airlock:redacted]");
    expect(res.body + JSON.stringify(res.headers)).not.to.include(SECRET);
    expect(res.body).not.to.include("agent-guess");
  });

  it("inject with a request body: sized with Expect: 100-continue, and chunked, both arrive whole", async function () {
    const body = join(mkdtempSync(join(tmpdir(), "airlock-body-")), "body.bin");
    // 256 KiB: several TLS records and reads on each side, one marker line per KiB.
    const payload = Array.from({ length: 256 }, (_, i) =>
      `line ${String(i).padStart(4, "0")} `.padEnd(1023, "x"),
    )
      .map((line) => `${line}\n`)
      .join("");
    writeFileSync(body, payload);
    const url = `https://api.example.test:${tlsUp.port}/v1/upload`;
    for (const extra of [
      ["-H", "Expect: 100-continue"],
      ["-H", "Transfer-Encoding: chunked"],
    ]) {
      const before = tlsUp.received.length;
      const res = await viaCurl(url, ["-X", "POST", "--data-binary", `@${body}`, ...extra]);
      expect(res.status, `${extra.join(" ")}: ${res.stderr}`).to.equal(200);
      expect(res.headers["x-airlock-decision"]).to.equal("inject");
      const got = tlsUp.received.slice(before);
      expect(got).to.have.length(1);
      expect(got[0]?.body === payload, `${extra.join(" ")}: the body arrives whole`).to.equal(true);
      expect(got[0]?.headers.authorization).to.equal(`Bearer ${SECRET}`);
      // The sidecar met the expectation itself; the upstream is not asked for a 100.
      expect(got[0]?.headers.expect).to.equal(undefined);
    }
  });

  it("allow (curl, CONNECT): passthrough without interception and without a credential", async function () {
    const before = tlsUp.received.length;
    // Trusting only the upstream's own CA proves the sidecar did not terminate TLS.
    const only = pemBundle(tlsUp.caPem);
    const res = await curl([
      "-x",
      sidecar.proxyUrl,
      "--cacert",
      only,
      "-H",
      "Authorization: Bearer agent-own",
      `https://open.example.test:${tlsUp.port}/pkg`,
    ]);
    expect(res.status).to.equal(200);
    const got = tlsUp.received.slice(before);
    expect(got).to.have.length(1);
    expect(got[0]?.headers.authorization).to.equal("Bearer agent-own");
    expect(JSON.stringify(got[0]?.headers)).not.to.include(SECRET);
  });

  it("block (curl, CONNECT): 403 JSON naming the reason, nothing reaches the upstream", async function () {
    const before = tlsUp.received.length;
    const res = await viaCurl(`https://evil.example.test:${tlsUp.port}/x`);
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.match(/403/);
    expect(tlsUp.received.length).to.equal(before);
    const line = sidecar.audit.find((a) => a.host === "evil.example.test");
    expect(line).to.include({ outcome: "block", reason: "NoRuleMatched", entry: "connect" });
  });

  it("allow and block over plain HTTP (curl, absolute form)", async function () {
    const ok = await viaCurl(`http://plain.example.test:${plainUp.port}/hello`);
    expect(ok.status).to.equal(200);
    expect(ok.headers["x-airlock-decision"]).to.equal("allow");
    expect(plainUp.received.at(-1)?.url).to.equal("/hello");
    const before = plainUp.received.length;
    const blocked = await viaCurl(`http://evil.example.test:${plainUp.port}/hello`);
    expect(blocked.status).to.equal(403);
    expect(blocked.headers["x-airlock-decision"]).to.equal("block");
    expect(blocked.headers["content-type"]).to.equal("application/json");
    expect(parseJson(blocked.body)).to.include({
      error: "egress_blocked",
      reason: "NoRuleMatched",
      host: "evil.example.test",
    });
    expect(plainUp.received.length).to.equal(before);
  });

  it("a credential never leaves over cleartext: an inject rule on plain HTTP blocks", async function () {
    const before = plainUp.received.length;
    const res = await viaCurl(`http://api.example.test:${plainUp.port}/v1/me`);
    expect(res.status).to.equal(403);
    expect(parseJson(res.body)).to.include({ reason: "CredentialRequiresTls" });
    expect(plainUp.received.length).to.equal(before);
  });

  it("Node fetch through a ProxyAgent gets the same three outcomes", async function () {
    const dispatcher = new ProxyAgent({
      uri: sidecar.proxyUrl,
      requestTls: { ca: [sidecar.ca.certificatePem, tlsUp.caPem] },
    });
    try {
      const before = tlsUp.received.length;
      const inject = await fetch(`https://api.example.test:${tlsUp.port}/v1/me`, { dispatcher });
      const injectBody = await inject.text();
      expect(inject.headers.get("x-airlock-decision")).to.equal("inject");
      expect(injectBody).not.to.include(SECRET);
      expect(tlsUp.received[before]?.headers.authorization).to.equal(`Bearer ${SECRET}`);
      const allow = await fetch(`https://open.example.test:${tlsUp.port}/x`, { dispatcher });
      await allow.text();
      expect(allow.status).to.equal(200);
      expect(tlsUp.received.at(-1)?.headers.authorization).to.equal(undefined);
      const count = tlsUp.received.length;
      let failure: unknown;
      try {
        await fetch(`https://evil.example.test:${tlsUp.port}/fetch`, { dispatcher });
      } catch (err) {
        failure = err;
      }
      // undici reports a refused CONNECT as a failed fetch; the sidecar's record says why.
      expect(failure).to.be.instanceOf(Error);
      expect(tlsUp.received.length).to.equal(count);
      expect(
        sidecar.audit.filter((a) => a.host === "evil.example.test" && a.reason === "NoRuleMatched"),
      ).to.have.length.at.least(2);
    } finally {
      await dispatcher.close();
    }
  });

  it("Node's built-in fetch in a child process, proxied by HTTPS_PROXY (NODE_USE_ENV_PROXY)", async function () {
    const script = `const r = await fetch(process.argv[1]); console.log(JSON.stringify({ status: r.status, decision: r.headers.get("x-airlock-decision"), body: await r.text() }));`;
    const run = (url: string) =>
      new Promise<{ status: number; decision: string | null; body: string }>((resolve, reject) => {
        execFile(
          process.execPath,
          ["--input-type=module", "-e", script, url],
          {
            env: {
              PATH: process.env.PATH ?? "",
              NODE_USE_ENV_PROXY: "1",
              HTTPS_PROXY: sidecar.proxyUrl,
              HTTP_PROXY: sidecar.proxyUrl,
              NODE_EXTRA_CA_CERTS: bundle,
            },
            encoding: "utf8",
            timeout: 15_000,
          },
          (err, stdout, stderr) => {
            if (err) reject(new Error(`${err.message}\n${stderr}`));
            else resolve(JSON.parse(stdout) as { status: number; decision: string | null; body: string });
          },
        );
      });
    const before = tlsUp.received.length;
    const inject = await run(`https://api.example.test:${tlsUp.port}/v1/child`);
    expect(inject).to.include({ status: 200, decision: "inject" });
    expect(inject.body).not.to.include(SECRET);
    expect(tlsUp.received[before]?.headers.authorization).to.equal(`Bearer ${SECRET}`);
    // Node tunnels even http:// through CONNECT; the refused tunnel surfaces as the proxy's 403.
    let refused: unknown;
    await run(`http://evil.example.test:${plainUp.port}/x`).catch((err: unknown) => (refused = err));
    expect(String(refused)).to.match(/Proxy response \(403\)/);
  });

  it("audit lines name the credential, never its value; metrics count each outcome", async function () {
    expect(sidecar.auditText()).not.to.include(SECRET);
    const inject = sidecar.audit.find((a) => a.outcome === "inject");
    expect(inject).to.include({
      credential: "agents/api-token",
      policy: "agents/agent",
      rule: "api",
      host: "api.example.test",
    });
    const metrics = await sidecar.metrics.registry.metrics();
    expect(metrics).not.to.include(SECRET);
    expect(metrics).to.match(
      /airlock_decisions_total\{outcome="inject",reason="RuleMatched",policy="agents\/agent",rule="api"\} [1-9]/,
    );
    expect(metrics).to.match(
      /airlock_decisions_total\{outcome="block",reason="NoRuleMatched",policy="",rule=""\} [1-9]/,
    );
    expect(metrics).to.match(/airlock_credential_scrubbed_total\{credential="agents\/api-token"\} [1-9]/);
    expect(metrics).not.to.include("evil.example.test");
  });
});
