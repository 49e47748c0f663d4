// I1 through the explicit proxy (THREATS.md I1, I3, "Credentials"): a hostile upstream reflects
// the injected credential through every part of a response it controls — reason phrase, header
// names, 1xx, trailers, transfer- and content-codings, encodings of the value — and through
// reflecting methods. Through CONNECT (intercepted TLS) the agent receives no form of it, seen as
// exact bytes by a raw TLS client and as curl sees it; through the plain proxy (http://) the same
// rules block before anything is sent.
import { expect } from "chai";
import { exchange } from "../helpers/raw.ts";
import { pemBundle } from "../helpers/curl.ts";
import { credential, policy, secret, startTestSidecar, type TestSidecar } from "../helpers/sidecar.ts";
import { startHostileUpstream, type HostileUpstream } from "../fixtures/hostile-upstream.ts";
import { CertificateAuthority } from "../../sidecar/tls/ca.ts";
import {
  CASES,
  curlMethodArgs,
  curlStatus,
  expectAgentView,
  expectUpstreamSaw,
  HOSTS,
  runCommand,
  type ReflectionCase,
} from "./reflection-cases.ts";
import {
  connectExchange,
  findLeaks,
  HEX_SECRET,
  parseAgentView,
  rawRequest,
  SECRET,
} from "./reflection-kit.ts";

describe("I1 reflection through the explicit proxy: a hostile upstream gets no credential back to the agent", function () {
  let up: HostileUpstream;
  let sidecar: TestSidecar;
  let bundle: string;

  before(async function () {
    const upstreamCa = new CertificateAuthority();
    up = await startHostileUpstream({
      credentials: Object.values(HOSTS).map((h) => upstreamCa.serverCredentials(h)),
      plainPort: 0,
    });
    const ports = [up.port, up.plainPort];
    const bearer = { header: { name: "Authorization", valuePrefix: "Bearer " } };
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "echo", hosts: [HOSTS.echo], ports, credential: "echo" },
          { name: "hex", hosts: [HOSTS.hex], ports, credential: "hex" },
          // paths make the tunnel intercepted, so each request is decided on its method.
          { name: "allow", hosts: [HOSTS.allow], ports, paths: ["/**"] },
        ]),
      ],
      credentials: [credential("echo", "echo-token", bearer), credential("hex", "hex-token", bearer)],
      secrets: [
        secret("agents", "echo-token", { token: SECRET }),
        secret("agents", "hex-token", { token: HEX_SECRET }),
      ],
      pins: Object.fromEntries(Object.values(HOSTS).map((h) => [h, "127.0.0.1"])),
      upstreamCa: [upstreamCa.certificatePem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });
  after(async function () {
    await sidecar.close();
    await up.close();
  });

  const recordsSince = (before: number, c: ReflectionCase) =>
    up.records.slice(before).filter((r) => r.path === c.path && r.tls);

  describe("CONNECT, exact bytes through a raw TLS client", function () {
    for (const c of CASES) {
      it(c.title, async function () {
        const before = up.records.length;
        const host = HOSTS[c.host];
        const raw = await connectExchange(
          sidecar.proxyAddress.port,
          { host, port: up.port, ca: sidecar.ca.certificatePem },
          rawRequest(c.method, `${host}:${up.port}`, c.path),
        );
        expectAgentView(c, parseAgentView(raw));
        expectUpstreamSaw(c, recordsSince(before, c));
      });
    }
  });

  describe("CONNECT, as curl sees it", function () {
    for (const c of CASES) {
      it(c.title, async function () {
        const before = up.records.length;
        const res = await runCommand([
          "curl",
          "-sS",
          "-D",
          "-",
          "--max-time",
          "10",
          "--noproxy",
          "",
          "-x",
          sidecar.proxyUrl,
          "--cacert",
          bundle,
          ...curlMethodArgs(c.method),
          `https://${HOSTS[c.host]}:${up.port}${c.path}`,
        ]);
        const seen = res.stdout + res.stderr;
        expect(findLeaks(seen, [SECRET, HEX_SECRET]), seen).to.deep.equal([]);
        expect(curlStatus(res.stdout), seen).to.equal(c.status);
        expectUpstreamSaw(c, recordsSince(before, c));
      });
    }
  });

  it("plain proxy (http://): every request these rules would inject, and every reflecting method, is blocked and nothing is sent", async function () {
    // A credential never leaves over cleartext (CredentialRequiresTls); the allow-only rule has
    // no methods, so TRACE and PROPFIND are refused there too.
    const plainCases = CASES.filter((c) => c.host !== "allow" || c.sent === "nothing");
    const before = up.records.length;
    for (const c of plainCases) {
      const authority = `${HOSTS[c.host]}:${String(up.plainPort)}`;
      const text = await exchange(
        sidecar.proxyAddress.port,
        `${c.method} http://${authority}${c.path} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
      );
      const label = `${c.method} http://${authority}${c.path}`;
      expect(text, label).to.match(/^HTTP\/1\.1 403 Forbidden\r\n/);
      expect(text.toLowerCase(), label).to.include("\r\nx-airlock-decision: block\r\n");
      expect(findLeaks(text, [SECRET, HEX_SECRET]), label).to.deep.equal([]);
    }
    expect(
      up.records.slice(before).map((r) => `${r.method} ${r.path}`),
      "requests that reached the upstream",
    ).to.deep.equal([]);
  });

  it("the secrets never reach the audit log or the metrics", async function () {
    const text = sidecar.auditText() + (await sidecar.metrics.registry.metrics());
    expect(findLeaks(text, [SECRET, HEX_SECRET])).to.deep.equal([]);
  });
});
