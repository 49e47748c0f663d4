// Faults (root, netns; THREATS.md I4 fail closed): the sidecar process killed (SIGKILL, as a crash
// or the OOM killer would) while `airlock init`'s capture rules stay in place. The agent (UID
// 1000) must reach nothing — no TCP connection to an allowed host, no DNS answer — and the world
// namespace's own records (its upstreams' request log, its resolver's query log) must show that
// nothing arrived. A restarted sidecar (UID 15000) restores service.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { chownSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { AIRLOCK } from "../helpers/cli.ts";
import {
  background,
  createPodWorld,
  NODE,
  requireNetnsPrerequisites,
  scratchFile,
  type Background,
  type PodWorld,
} from "../helpers/netns.ts";

const SECRET = "faults-netns-secret-41d2";
const AGENT = 1000;
const SIDECAR = 15000;
const UPSTREAM = "10.77.1.10";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      args[0] ?? "",
      args.slice(1),
      {
        encoding: "utf8",
        timeout: 15_000,
        env: { PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", HOME: "/tmp", ...env },
      },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

const POLICY = `apiVersion: airlock.dev/v1alpha1
kind: EgressPolicy
metadata: {name: agent, namespace: agents}
spec:
  podSelector: {}
  egress:
    - {name: api, hosts: [api.example.test], credential: api}
    - {name: registry, hosts: [registry.example.test]}
---
apiVersion: airlock.dev/v1alpha1
kind: Credential
metadata: {name: api, namespace: agents}
spec:
  secretRef: {name: api, key: token}
  injection: {header: {name: Authorization, valuePrefix: "Bearer "}}
---
apiVersion: v1
kind: Secret
metadata: {name: api, namespace: agents}
stringData: {token: ${SECRET}}
`;

/** Resolves argv[1] with the system resolver (the pod's resolv.conf); prints the address or "error". */
const PY_RESOLVE = `import socket,sys
try:
  print(socket.gethostbyname(sys.argv[1]))
except OSError as e:
  print('error', e)`;

describe("faults (root, netns): a killed sidecar leaves the agent with nothing; a restart restores it", function () {
  this.timeout(60_000);
  let pw: PodWorld;
  let upstreams: Background;
  let sidecar: Background;
  const cleanups: (() => unknown)[] = [];
  let sidecarArgs: string[];
  let worldCa: string;
  let bundle = "";
  const trustDir = (): string => join(pw.dir, "trust");
  const dnsLog = (): string => readFileSync(join(pw.dir, "dnsmasq.log"), "utf8");
  const records = (): { address: string; url?: string; headers?: Record<string, string> }[] =>
    upstreams
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{") && !l.includes('"ready"'))
      .map((l) => JSON.parse(l) as { address: string; url?: string; headers?: Record<string, string> });
  const agent = (command: string[]) =>
    run(pw.asUser(AGENT, command), { CURL_CA_BUNDLE: bundle, SSL_CERT_FILE: bundle });
  const curl = (args: string[]) =>
    agent(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", ...args]);
  const startSidecar = async (): Promise<void> => {
    sidecar = await background(sidecarArgs, /listening on/);
    // A new process has a new interception CA: the agent trusts the bundle it writes.
    bundle = scratchFile(
      pw,
      "agent-bundle.pem",
      readFileSync(join(trustDir(), "ca-bundle.pem"), "utf8") + worldCa,
    );
  };

  before(async function () {
    requireNetnsPrerequisites(["ip", "setpriv", "iptables-restore", "ip6tables-restore", "dnsmasq", "curl"]);
    requireNetnsPrerequisites(["python3"]);
    pw = createPodWorld([UPSTREAM]);
    cleanups.push(() => {
      pw.destroy();
    });
    upstreams = await background(
      pw.inWorld([NODE, join(import.meta.dirname, "../fixtures/world-upstream.ts"), UPSTREAM]),
      /"ready":true/,
    );
    cleanups.push(() => upstreams.stop());
    const ready = upstreams
      .output()
      .split("\n")
      .find((l) => l.includes('"ready"'));
    worldCa = (JSON.parse(ready ?? "{}") as { ca: string }).ca;
    // The world's resolver answers both names: a query that escapes the pod would succeed.
    const dnsmasq = await background(
      pw.inWorld([
        ...["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces"],
        `--listen-address=${pw.worldIp}`,
        "--user=root",
        `--pid-file=${join(pw.dir, "dnsmasq.pid")}`,
        "--log-queries",
        `--log-facility=${join(pw.dir, "dnsmasq.log")}`,
        `--address=/api.example.test/${UPSTREAM}`,
        `--address=/registry.example.test/${UPSTREAM}`,
      ]),
    );
    cleanups.push(() => dnsmasq.stop());
    const worldCaPath = scratchFile(pw, "world-ca.pem", worldCa);
    const policy = scratchFile(pw, "policy.yaml", POLICY);
    mkdirSync(trustDir(), { mode: 0o755 });
    chownSync(trustDir(), SIDECAR, SIDECAR);
    const init = await run(pw.inPod([AIRLOCK, "init"]));
    expect(init.code, `airlock init failed:\n${init.stderr}`).to.equal(0);
    sidecarArgs = pw.asUser(SIDECAR, [
      ...[AIRLOCK, "sidecar", "--policy", policy, "--trust-bundle", join(trustDir(), "ca-bundle.pem")],
      ...["--upstream-ca", worldCaPath, "--allow-address", `${UPSTREAM}/32`],
      ...["--metrics", "127.0.0.1:15090"],
    ]);
    await startSidecar();
    cleanups.push(() => sidecar.stop());
  });

  after(async function () {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it("with the sidecar running: inject, allow and DNS work through it", async function () {
    expect((await agent(["python3", "-c", PY_RESOLVE, "registry.example.test"])).stdout.trim()).to.equal(
      UPSTREAM,
    );
    expect((await curl(["https://registry.example.test/before"])).stdout).to.equal("200");
    expect((await curl(["https://api.example.test/before"])).stdout).to.equal("200");
    const injected = records().find((r) => r.url === "/before" && r.headers?.authorization !== undefined);
    expect(injected?.headers?.authorization).to.equal(`Bearer ${SECRET}`);
  });

  it("SIGKILL: no connection to an allowed host, no DNS answer, and the world received nothing", async function () {
    const pid = sidecar.child.pid ?? 0;
    // The PID is the sidecar itself (ip netns exec, setpriv and bin/airlock all exec).
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).to.include("sidecar/cli/main.ts");
    expect(readFileSync(`/proc/${pid}/status`, "utf8")).to.match(/\nUid:\s+15000\b/);
    sidecar.child.kill("SIGKILL");
    await new Promise<void>((resolve) => {
      if (sidecar.child.exitCode !== null || sidecar.child.signalCode !== null) resolve();
      else
        sidecar.child.once("exit", () => {
          resolve();
        });
    });
    const seen = records().length;
    const queriesBefore = dnsLog().split("\n").length;
    for (const [port, url] of [
      [443, "https://registry.example.test/down"],
      [80, "http://registry.example.test/down"],
    ] as const) {
      // The agent names the address itself: the only way out would be a direct connection.
      const res = await curl(["--resolve", `registry.example.test:${port}:${UPSTREAM}`, url]);
      expect(res.stdout, `${url}: ${res.stderr}`).to.equal("000");
      // curl 7: couldn't connect (refused at the capture target), not a TLS or HTTP error.
      expect(res.code, `${url}: ${res.stderr}`).to.equal(7);
    }
    const viaProxy = await curl(["-x", "http://127.0.0.1:15080", "https://registry.example.test/down"]);
    expect(viaProxy.code, viaProxy.stderr).to.equal(7);
    const resolved = await agent(["python3", "-c", PY_RESOLVE, "down.registry.example.test"]);
    expect(resolved.stdout).to.match(/^error/);
    const direct = await agent(["python3", "-c", PY_RESOLVE, "registry.example.test"]);
    expect(direct.stdout).to.match(/^error/);
    expect(records().slice(seen)).to.deep.equal([]);
    expect(
      dnsLog()
        .split("\n")
        .slice(queriesBefore - 1)
        .join("\n"),
    ).not.to.include("registry.example.test");
  });

  it("a restarted sidecar restores inject, allow and DNS", async function () {
    await startSidecar();
    expect((await agent(["python3", "-c", PY_RESOLVE, "registry.example.test"])).stdout.trim()).to.equal(
      UPSTREAM,
    );
    expect((await curl(["https://registry.example.test/again"])).stdout).to.equal("200");
    expect((await curl(["https://api.example.test/again"])).stdout).to.equal("200");
    const injected = records().find((r) => r.url === "/again" && r.headers?.authorization !== undefined);
    expect(injected?.headers?.authorization).to.equal(`Bearer ${SECRET}`);
  });
});
