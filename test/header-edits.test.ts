// Static header edits through the data path (explicit proxy, real curl, real TLS upstream): a
// rule's setHeaders replace the agent's copies, its removeHeaders are gone upstream, the credential
// is attached after them and is still the only one; an allow-only rule with edits is intercepted
// (the agent sees the sidecar's certificate) so its requests can be edited.
import { expect } from "chai";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { credential, policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

const SECRET = "edits-s3cr3t-5b0c9e";

describe("rule header edits through the data path (curl, explicit proxy)", function () {
  let up: EchoUpstream;
  let sidecar: TestSidecar;
  let bundle: string;

  before(async function () {
    up = await startEchoUpstream({ tls: true });
    const ports = [up.port];
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          {
            name: "api",
            hosts: ["api.example.test"],
            ports,
            credential: "api",
            setHeaders: [{ name: "X-Client", value: "coding-agent/1.0" }],
            removeHeaders: ["Cookie", "X-Debug"],
          },
          {
            name: "docs",
            hosts: ["docs.example.test"],
            ports,
            setHeaders: [{ name: "User-Agent", value: "airlock-docs" }],
          },
        ]),
      ],
      credentials: [
        credential("api", "tokens", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
      ],
      secrets: [secret("agents", "tokens", { token: SECRET })],
      pins: { "api.example.test": "127.0.0.1", "docs.example.test": "127.0.0.1" },
      upstreamCa: [up.caPem],
    });
    // Only the sidecar's CA: a passed-through connection (the upstream's certificate) would fail.
    bundle = pemBundle(sidecar.ca.certificatePem);
  });

  after(async function () {
    await sidecar.close();
    await up.close();
  });

  const get = (host: string, path: string, extra: string[]) =>
    curl(["-x", sidecar.proxyUrl, "--cacert", bundle, ...extra, `https://${host}:${up.port}${path}`]);

  for (const version of ["--http1.1", "--http2"])
    it(`inject rule (${version}): set replaces the agent's copy, removed are gone, the credential is attached once`, async function () {
      const res = await get("api.example.test", "/edits", [
        version,
        ...["-H", "x-client: agent-says-otherwise", "-H", "Cookie: session=1", "-H", "X-DEBUG: on"],
        ...["-H", "X-Kept: yes", "-H", "Authorization: Bearer agent-own"],
      ]);
      expect(res.status, res.stderr).to.equal(200);
      const seen = up.received.at(-1);
      const raw = seen?.rawHeaders ?? [];
      const named = (name: string): string[] =>
        raw.filter((_, i) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === name);
      expect(named("x-client")).to.deep.equal(["coding-agent/1.0"]);
      expect(named("cookie")).to.deep.equal([]);
      expect(named("x-debug")).to.deep.equal([]);
      expect(named("x-kept")).to.deep.equal(["yes"]);
      expect(named("authorization")).to.deep.equal([`Bearer ${SECRET}`]);
      expect(res.body).not.to.include(SECRET);
    });

  it("allow-only rule with edits: intercepted (the sidecar's certificate verifies), the header set", async function () {
    const res = await get("docs.example.test", "/docs", ["-A", "curl-agent"]);
    expect(res.status, res.stderr).to.equal(200);
    const seen = up.received.at(-1);
    expect(seen?.url).to.equal("/docs");
    expect(seen?.headers["user-agent"]).to.equal("airlock-docs");
    expect(seen?.headers.authorization).to.equal(undefined);
  });
});
