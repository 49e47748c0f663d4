// I1 through transparent capture (root, netns; THREATS.md I1, I3, "Credentials"): the same
// hostile upstream and the same cases as i1-reflection.test.ts, but the agent ignores proxy
// settings. A pod namespace with `airlock init` applied, the sidecar as UID 15000, agent commands
// as UID 1000, and the hostile upstream in the world namespace on 10.77.1.20 (TLS 443, HTTP 80).
// Transparent TLS is intercepted and must not hand back the credential in any form; transparent
// cleartext HTTP never injects, and the same rules block before anything is sent.
import { expect } from "chai";
import { join } from "node:path";
import { CertificateAuthority } from "../../sidecar/tls/ca.ts";
import type { HostileRecord } from "../fixtures/hostile-upstream.ts";
import type { RawExchangeResult } from "../fixtures/raw-exchange.ts";
import { NODE, scratchFile, type Background, type PodWorld } from "../helpers/netns.ts";
import { AGENT_UID as AGENT, PodHarness, worldRecords } from "../helpers/pod-harness.ts";
import { credentialYaml, egressPolicyYaml } from "../helpers/policy-yaml.ts";
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
import { findLeaks, HEX_SECRET, parseAgentView, rawRequest, SECRET } from "./reflection-kit.ts";

const UPSTREAM_IP = "10.77.1.20";
const FIXTURES = join(import.meta.dirname, "../fixtures");

function policyYaml(): string {
  return (
    egressPolicyYaml("agent", [
      `{name: echo, hosts: [${HOSTS.echo}], credential: echo}`,
      `{name: hex, hosts: [${HOSTS.hex}], credential: hex}`,
      `{name: allow, hosts: [${HOSTS.allow}], paths: ["/**"]}`,
    ]) +
    credentialYaml("echo", SECRET) +
    credentialYaml("hex", HEX_SECRET)
  );
}

describe("I1 reflection through transparent capture (root, netns): a hostile upstream gets no credential back to the agent", function () {
  this.timeout(60_000);
  const harness = new PodHarness();
  let pw: PodWorld;
  let upstream: Background;
  let bundle: string;

  const records = (): HostileRecord[] => worldRecords<HostileRecord>(upstream);
  let barriers = 0;
  /**
   * Every record so far but the barriers', once complete: a request the sidecar
   * forwarded was received (and printed) before the agent got its answer, so a marker request
   * sent now straight to the upstream, from the world, is printed after any of them.
   */
  const barrier = async (): Promise<HostileRecord[]> => {
    const marker = `/barrier-${String(++barriers)}`;
    const sent = await runCommand(
      pw.inWorld(["curl", "-sS", "--max-time", "5", `http://${UPSTREAM_IP}${marker}`]),
    );
    expect(sent.code, `barrier request failed: ${sent.stderr}`).to.equal(0);
    const deadline = Date.now() + 5000;
    while (!records().some((r) => r.path === marker)) {
      if (Date.now() >= deadline)
        throw new Error(`the upstream never printed ${marker}:\n${upstream.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return records().filter((r) => !r.path.startsWith("/barrier-"));
  };
  const recordsFor = async (from: number, c: ReflectionCase): Promise<HostileRecord[]> =>
    (await barrier()).slice(from).filter((r) => r.path === c.path && r.tls);
  const asAgent = (command: string[]) =>
    runCommand(pw.asUser(AGENT, command), { CURL_CA_BUNDLE: bundle, SSL_CERT_FILE: bundle });
  /** The exact bytes an agent receives for `request` on a captured connection. */
  const agentExchange = async (request: string, tlsName?: string): Promise<Buffer> => {
    const port = tlsName === undefined ? 80 : 443;
    const res = await asAgent([
      NODE,
      join(FIXTURES, "raw-exchange.ts"),
      "--connect",
      `${UPSTREAM_IP}:${port}`,
      ...(tlsName === undefined ? [] : ["--tls", tlsName, "--ca", bundle]),
      "--request",
      Buffer.from(request, "latin1").toString("base64"),
    ]);
    const line = res.stdout.split("\n").find((l) => l.startsWith("{"));
    if (line === undefined) throw new Error(`raw-exchange printed nothing:\n${res.stderr}`);
    const result = JSON.parse(line) as RawExchangeResult;
    const bytes = Buffer.from(result.bytes, "base64");
    if (result.error !== undefined && bytes.length === 0)
      throw new Error(`raw-exchange failed: ${result.error}\n${res.stderr}`);
    return bytes;
  };

  before(async function () {
    pw = harness.create(["ip", "setpriv", "iptables-restore", "ip6tables-restore", "curl"], [UPSTREAM_IP]);
    const upstreamCa = new CertificateAuthority();
    const tlsArgs = Object.values(HOSTS).flatMap((host) => {
      const { cert, key } = upstreamCa.serverCredentials(host);
      return ["--cert", scratchFile(pw, `${host}.pem`, cert), "--key", scratchFile(pw, `${host}.key`, key)];
    });
    upstream = await harness.start(
      pw.inWorld([
        NODE,
        join(FIXTURES, "hostile-upstream.ts"),
        "--listen",
        `${UPSTREAM_IP}:443`,
        "--listen-plain",
        `${UPSTREAM_IP}:80`,
        ...tlsArgs,
      ]),
      /"ready":true/,
    );
    const policy = scratchFile(pw, "policy.yaml", policyYaml());
    const worldCa = scratchFile(pw, "world-ca.pem", upstreamCa.certificatePem);
    harness.makeTrustDir();
    await harness.init();
    await harness.start(
      harness.sidecarArgs({
        policy,
        upstreamCa: worldCa,
        resolve: Object.values(HOSTS).map((h) => `${h}:${UPSTREAM_IP}`),
        allow: [`${UPSTREAM_IP}/32`],
      }),
      /listening on/,
    );
    // Every inject or path-constrained host is intercepted: the agent needs only the pod's bundle.
    bundle = harness.trustBundle;
  });

  after(async function () {
    await harness.teardown();
  });

  describe("transparent TLS, exact bytes through a raw TLS client as the agent", function () {
    for (const c of CASES) {
      it(c.title, async function () {
        const before = records().filter((r) => !r.path.startsWith("/barrier-")).length;
        const host = HOSTS[c.host];
        const raw = await agentExchange(rawRequest(c.method, host, c.path), host);
        expectAgentView(c, parseAgentView(raw));
        expectUpstreamSaw(c, await recordsFor(before, c));
      });
    }
  });

  describe("transparent TLS, as curl sees it (as the agent)", function () {
    for (const c of CASES) {
      it(c.title, async function () {
        const before = records().filter((r) => !r.path.startsWith("/barrier-")).length;
        const host = HOSTS[c.host];
        const res = await asAgent([
          "curl",
          "-sS",
          "-D",
          "-",
          "--max-time",
          "8",
          "--resolve",
          `${host}:443:${UPSTREAM_IP}`,
          ...curlMethodArgs(c.method),
          `https://${host}${c.path}`,
        ]);
        const seen = res.stdout + res.stderr;
        expect(findLeaks(seen, [SECRET, HEX_SECRET]), seen).to.deep.equal([]);
        expect(curlStatus(res.stdout), seen).to.equal(c.status);
        expectUpstreamSaw(c, await recordsFor(before, c));
      });
    }
  });

  it("transparent cleartext HTTP: every request these rules would inject, and every reflecting method, is blocked and nothing is sent", async function () {
    const plainCases = CASES.filter((c) => c.host !== "allow" || c.sent === "nothing");
    const before = records().filter((r) => !r.path.startsWith("/barrier-")).length;
    for (const c of plainCases) {
      const host = HOSTS[c.host];
      const text = (await agentExchange(rawRequest(c.method, host, c.path))).toString("latin1");
      const label = `${c.method} http://${host}${c.path}`;
      expect(text, label).to.match(/^HTTP\/1\.1 403 Forbidden\r\n/);
      expect(text.toLowerCase(), label).to.include("\r\nx-airlock-decision: block\r\n");
      expect(findLeaks(text, [SECRET, HEX_SECRET]), label).to.deep.equal([]);
    }
    const reached = (await barrier()).slice(before);
    expect(
      reached.map((r) => `${r.method} ${r.path}`),
      "requests that reached the upstream",
    ).to.deep.equal([]);
  });
});
