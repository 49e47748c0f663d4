// The agent's trust bundle keeps passthrough working (issue 8, item 7; DESIGN.md §3), root, netns.
// A real pod namespace with `airlock init` applied, the sidecar as UID 15000 (umask 077) trusting
// a private CA with --upstream-ca, and agent commands as UID 1000 whose environment holds only
// PATH, HOME and the five variables the webhook injects, all pointing at the bundle the sidecar
// wrote. Both a passthrough host (the private CA's certificate, end to end) and an inject host (the
// sidecar's CA) must verify in curl, Python, Node and git with verification on; the same commands
// without the variables, and with the bundle minus the upstream roots, must fail.
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { eventually } from "./helpers/eventually.ts";
import { NODE, scratchFile, type Background, type PodWorld } from "./helpers/netns.ts";
import {
  AGENT_UID as AGENT,
  PodHarness,
  runExact as run,
  SIDECAR_UID as SIDECAR,
  TEST_PATH as PATH,
  worldRecords,
} from "./helpers/pod-harness.ts";
import { credentialYaml, egressPolicyYaml } from "./helpers/policy-yaml.ts";

const SECRET = "trust-bundle-secret-5a4b3c2d";
const UPSTREAM = "10.77.1.10";
const PASSTHROUGH = "registry.example.test";
const INJECT = "api.example.test";
const CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g;

/** What the webhook sets in every agent container, all naming the one bundle. */
const injectedEnv = (bundle: string): Record<string, string> => ({
  PATH,
  HOME: "/tmp",
  SSL_CERT_FILE: bundle,
  REQUESTS_CA_BUNDLE: bundle,
  CURL_CA_BUNDLE: bundle,
  GIT_SSL_CAINFO: bundle,
  NODE_EXTRA_CA_CERTS: bundle,
});

/** GET argv[1] with urllib; prints the status, or "error" (the reason on stderr). */
const PY_URLLIB = `import sys,urllib.request,urllib.error
try:
  print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
  print(e.code)
except Exception as e:
  print('error'); print(repr(e), file=sys.stderr)`;

/** GET argv[1] with requests (verify on, the default); prints the status, or "error". */
const PY_REQUESTS = `import sys,requests
try:
  print(requests.get(sys.argv[1], timeout=5).status_code)
except Exception as e:
  print('error'); print(repr(e), file=sys.stderr)`;

/** GET argv[1] with Node's built-in fetch; prints the status, or "error" (the cause on stderr). */
const NODE_GET =
  "try { console.log((await fetch(process.argv[1])).status) } catch (e) { console.log('error'); console.error(String(e.cause ?? e)) }";

/** Each client: its command, and whether it prints a status (git does not: the world's log decides). */
const CLIENTS: Record<string, { command: (url: string) => string[]; status: boolean }> = {
  curl: {
    command: (url) => ["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", url],
    status: true,
  },
  "python3 urllib": { command: (url) => ["/usr/bin/python3", "-c", PY_URLLIB, url], status: true },
  "python3 requests": { command: (url) => ["/usr/bin/python3", "-c", PY_REQUESTS, url], status: true },
  node: { command: (url) => [NODE, "--input-type=module", "-e", NODE_GET, url], status: true },
  git: { command: (url) => ["git", "-c", "http.lowSpeedTime=5", "ls-remote", url], status: false },
};

interface WorldRecord {
  address: string;
  url?: string;
  headers?: Record<string, string>;
}

describe("agent trust bundle (root, netns): passthrough behind a private CA verifies in the agent", function () {
  this.timeout(60_000);
  const harness = new PodHarness();
  let pw: PodWorld;
  let upstreams: Background;
  let worldCa: string;
  let trustDir: string;
  let bundle: string;
  /** The bundle as it was before the fix: system roots and the sidecar's CA, no upstream roots. */
  let staleBundle: string;
  let hasRequests = false;
  const records = (): WorldRecord[] => worldRecords<WorldRecord>(upstreams);
  const recordsFor = (path: string): WorldRecord[] => records().filter((r) => r.url?.startsWith(path));
  /** Waits up to 3 s for a record for `path` (polling the world's output); returns them all (maybe none). */
  const awaitRecord = (path: string): Promise<WorldRecord[]> =>
    eventually(
      () => {
        expect(recordsFor(path), `a record of ${path}`).to.not.deep.equal([]);
        return recordsFor(path);
      },
      { timeoutMs: 3000, intervalMs: 25 },
    ).catch(() => recordsFor(path)); // none: the caller fails with the agent's stderr
  const agent = (command: string[], env: Record<string, string>) => run(pw.asUser(AGENT, command), env);

  before(async function () {
    pw = harness.create(
      [
        "ip",
        "setpriv",
        "iptables-restore",
        "ip6tables-restore",
        "dnsmasq",
        "curl",
        "git",
        "/usr/bin/python3",
      ],
      [UPSTREAM],
    );
    const world = await harness.startWorldUpstream([UPSTREAM]);
    upstreams = world.upstream;
    // The world's CA is private: in no system store, known to the sidecar only by --upstream-ca.
    worldCa = world.ca;
    await harness.startDnsmasq(
      pw.worldIp,
      [
        [PASSTHROUGH, UPSTREAM],
        [INJECT, UPSTREAM],
      ],
      false,
    );
    const policy = scratchFile(
      pw,
      "policy.yaml",
      egressPolicyYaml("agent", [
        `{name: registry, hosts: [${PASSTHROUGH}]}`,
        `{name: api, hosts: [${INJECT}], credential: api}`,
      ]) + credentialYaml("api", SECRET),
    );
    // The sidecar's folder, as it might come: not searchable by others. The sidecar must fix that.
    harness.makeTrustDir(0o700);
    trustDir = harness.trustDir;
    bundle = harness.trustBundle;
    await harness.init();
    const sidecarArgs = harness.sidecarArgs({
      wrapper: ["/bin/sh", "-c", 'umask 077 && exec "$0" "$@"'],
      policy,
      upstreamCa: scratchFile(pw, "world-ca.pem", worldCa),
      allow: [`${UPSTREAM}/32`],
    });
    await harness.start(sidecarArgs, /listening on/);
    const written = readFileSync(bundle, "utf8");
    staleBundle = scratchFile(pw, "stale-bundle.pem", written.replace(worldCa, ""));
    const probe = await agent(["/usr/bin/python3", "-c", "import requests"], { PATH, HOME: "/tmp" });
    hasRequests = probe.code === 0;
  });

  after(async function () {
    await harness.teardown();
  });

  it("the sidecar wrote system roots + the --upstream-ca roots + its CA, 0644 under umask 077, folder searchable", function () {
    const text = readFileSync(bundle, "utf8");
    const certs = text.match(CERT) ?? [];
    expect(certs).to.have.length(rootCertificates.length + 2);
    // Beyond the system roots: the private CA and the sidecar's own CA, nothing else.
    const system = new Set(rootCertificates.map((pem) => new X509Certificate(pem).fingerprint256));
    const extra = certs.map((pem) => new X509Certificate(pem)).filter((c) => !system.has(c.fingerprint256));
    expect(extra).to.have.length(2);
    expect(extra.map((c) => c.fingerprint256)).to.include(new X509Certificate(worldCa).fingerprint256);
    expect(extra.every((c) => c.ca)).to.equal(true);
    const stat = statSync(bundle);
    expect(stat.mode & 0o777).to.equal(0o644);
    expect(stat.uid).to.equal(SIDECAR);
    expect(statSync(trustDir).mode & 0o001).to.equal(0o001);
    expect(readdirSync(trustDir)).to.deep.equal(["ca-bundle.pem"]);
    // The stale control bundle really lacks the private CA, and only that.
    expect(readFileSync(staleBundle, "utf8").match(CERT)).to.have.length(rootCertificates.length + 1);
  });

  for (const [client, { command, status }] of Object.entries(CLIENTS)) {
    for (const [kind, host] of [
      ["passthrough (private CA via --upstream-ca)", PASSTHROUGH],
      ["inject (the sidecar's CA)", INJECT],
    ] as const) {
      it(`${client}: ${kind} verifies with only the injected env; fails without it`, async function () {
        if (client === "python3 requests" && !hasRequests)
          throw new Error(
            "/usr/bin/python3 has no requests module: apt-get install python3-requests (.ci/run does)",
          );
        const tag = `/${client.replace(/\W+/g, "-")}/${host}`;
        const failures: [string, Record<string, string>][] = [["none", { PATH, HOME: "/tmp" }]];
        if (host === PASSTHROUGH) failures.push(["stale", injectedEnv(staleBundle)]);
        for (const [name, env] of failures) {
          const res = await agent(command(`https://${host}${tag}/${name}`), env);
          if (status) expect(res.stdout.trim(), `${name}: ${res.stderr}`).to.match(/^(000|error)$/);
          else expect(res.code, `${name}: ${res.stderr}`).to.not.equal(0);
          expect(res.stderr, name).to.match(/certificate|CERT|verify/i);
        }
        const ok = await agent(command(`https://${host}${tag}/ok`), injectedEnv(bundle));
        if (status) expect(ok.stdout.trim(), ok.stderr).to.equal("200");
        else expect(ok.stderr).not.to.match(/certificate|SSL/i);
        expect(ok.stdout + ok.stderr).not.to.include(SECRET);
        const got = await awaitRecord(`${tag}/ok`);
        expect(got.length, ok.stderr).to.be.at.least(1);
        // Intercepted: the credential was attached; passthrough: the agent's bytes, untouched.
        for (const r of got)
          expect(r.headers?.authorization).to.equal(host === INJECT ? `Bearer ${SECRET}` : undefined);
        // The failed attempts ran first and sent nothing past the TLS handshake.
        for (const [name] of failures) expect(recordsFor(`${tag}/${name}`), name).to.deep.equal([]);
      });
    }
  }
});
