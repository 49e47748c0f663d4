// Faults (THREATS.md Availability, I4): an upstream that resets its connection mid-response. The
// agent's connection through the sidecar must end — an error or a visibly truncated body, never a
// hang — and another agent connection, streaming through the same sidecar at the same moment,
// must complete byte for byte. On every data path: CONNECT intercepted with a credential injected,
// CONNECT passed through (TLS end to end), and plain HTTP through the explicit proxy.
import { expect } from "chai";
import { CertificateAuthority } from "../../sidecar/tls/ca.ts";
import { credential, policy, secret, startTestSidecar, type TestSidecar } from "../helpers/sidecar.ts";
import {
  agentExchange,
  BODY_BYTES,
  FIRST_PART_BYTES,
  startScriptedUpstream,
  type AgentRoute,
  type ScriptedUpstream,
} from "./fault-peers.ts";

const SECRET = "fault-secret-5b1e";
/** A connection that has not ended this long after its upstream's RST is hung. */
const END_WITHIN_MS = 10_000;

describe("faults: an upstream reset mid-response ends that agent connection only", function () {
  this.timeout(60_000);
  const upstreamCa = new CertificateAuthority();
  let tlsUp: ScriptedUpstream;
  let plainUp: ScriptedUpstream;
  let sidecar: TestSidecar;

  before(async function () {
    tlsUp = await startScriptedUpstream(upstreamCa);
    plainUp = await startScriptedUpstream();
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "inject", hosts: ["inject.example.test"], ports: [tlsUp.port], credential: "api" },
          { name: "pass", hosts: ["pass.example.test"], ports: [tlsUp.port] },
          { name: "plain", hosts: ["plain.example.test"], ports: [plainUp.port] },
        ]),
      ],
      credentials: [credential("api", "api", { header: { name: "X-Key" } })],
      secrets: [secret("agents", "api", { token: SECRET })],
      pins: {
        "inject.example.test": "127.0.0.1",
        "pass.example.test": "127.0.0.1",
        "plain.example.test": "127.0.0.1",
      },
      upstreamCa: [upstreamCa.certificatePem],
    });
  });
  after(async function () {
    await sidecar.close();
    await tlsUp.close();
    await plainUp.close();
  });

  const PATHS: {
    name: string;
    upstream: () => ScriptedUpstream;
    route: (path: string) => AgentRoute;
    /** What the upstream must have received, proving which path the request took. */
    sent: (head: string) => void;
  }[] = [
    {
      name: "CONNECT, intercepted, credential injected",
      upstream: () => tlsUp,
      route: (path) => ({
        proxyPort: sidecar.proxyAddress.port,
        tunnel: { host: "inject.example.test", port: tlsUp.port, ca: sidecar.ca.certificatePem },
        request: `GET ${path} HTTP/1.1\r\nHost: inject.example.test:${tlsUp.port}\r\nConnection: close\r\n\r\n`,
      }),
      sent: (head) => expect(head.toLowerCase()).to.include(`x-key: ${SECRET}`),
    },
    {
      name: "CONNECT, passed through (TLS with the upstream itself)",
      upstream: () => tlsUp,
      route: (path) => ({
        proxyPort: sidecar.proxyAddress.port,
        tunnel: { host: "pass.example.test", port: tlsUp.port, ca: upstreamCa.certificatePem },
        request: `GET ${path} HTTP/1.1\r\nHost: pass.example.test:${tlsUp.port}\r\nConnection: close\r\n\r\n`,
      }),
      // The agent trusts only the upstream's CA: its handshake succeeding proves no interception.
      sent: (head) => expect(head.toLowerCase()).not.to.include("x-key"),
    },
    {
      name: "plain HTTP through the explicit proxy",
      upstream: () => plainUp,
      route: (path) => ({
        proxyPort: sidecar.proxyAddress.port,
        request: `GET http://plain.example.test:${plainUp.port}${path} HTTP/1.1\r\nHost: plain.example.test:${plainUp.port}\r\nConnection: close\r\n\r\n`,
      }),
      sent: (head) => expect(head.toLowerCase()).not.to.include("x-key"),
    },
  ];

  for (const [i, p] of PATHS.entries()) {
    it(`${p.name}: the agent sees an error or a truncated body, and a concurrent stream completes`, async function () {
      const up = p.upstream();
      const [victimPath, bystanderPath] = [`/reset-${i}`, `/bystander-${i}`];
      // The bystander is mid-response on its own connection when the victim's upstream resets.
      const bystander = await agentExchange(p.route(bystanderPath));
      const bystanderHeld = await up.held(bystanderPath);
      await bystander.bodyAtLeast(1);
      const victim = await agentExchange(p.route(victimPath));
      const victimHeld = await up.held(victimPath);
      await victim.bodyAtLeast(1); // mid-stream: the agent already has part of the body
      victimHeld.reset();
      const ended = await victim.ending(END_WITHIN_MS);
      expect(ended.how, "the victim's connection must end, not hang").to.not.equal("hang");
      expect(ended.status).to.equal(200);
      expect(ended.complete, "a reset response must not look complete").to.equal(false);
      expect(ended.bodyBytes).to.be.above(0);
      expect(ended.bodyBytes).to.be.at.most(FIRST_PART_BYTES);
      expect(ended.intact).to.equal(true);
      // The bystander was not touched: the rest of its body arrives, every byte where it belongs.
      bystanderHeld.finish();
      await bystander.bodyAtLeast(BODY_BYTES);
      const done = await bystander.ending(END_WITHIN_MS);
      expect(done).to.deep.include({ how: "end", bodyBytes: BODY_BYTES, intact: true, complete: true });
      for (const path of [victimPath, bystanderPath]) {
        const got = up.requests.find((r) => r.path === path);
        expect(got, `the upstream never received ${path}`).to.not.equal(undefined);
        p.sent(got?.head ?? "");
      }
      // And a new connection is served as before.
      const next = await agentExchange(p.route(`/after-${i}`));
      (await up.held(`/after-${i}`)).finish();
      await next.bodyAtLeast(BODY_BYTES);
    });
  }
});
