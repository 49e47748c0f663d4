// Faults (root, netns; THREATS.md I4 fail closed): the sidecar process killed (SIGKILL, as a crash
// or the OOM killer would) while `airlock init`'s capture rules stay in place. The agent (UID
// 1000) must reach nothing — no TCP connection to an allowed host, no DNS answer — and the world
// namespace's own records (its upstreams' request log, its resolver's query log) must show that
// nothing arrived. A restarted sidecar (UID 15000) restores service.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { background, scratchFile, type Background, type PodWorld } from "../helpers/netns.ts";
import { AGENT_UID as AGENT, PodHarness, run, worldRecords } from "../helpers/pod-harness.ts";
import { credentialYaml, egressPolicyYaml } from "../helpers/policy-yaml.ts";

const SECRET = "faults-netns-secret-41d2";
const UPSTREAM = "10.77.1.10";

const POLICY =
  egressPolicyYaml("agent", [
    "{name: api, hosts: [api.example.test], credential: api}",
    "{name: registry, hosts: [registry.example.test]}",
  ]) + credentialYaml("api", SECRET);

/** Resolves argv[1] with the system resolver (the pod's resolv.conf); prints the address or "error". */
const PY_RESOLVE = `import socket,sys
try:
  print(socket.gethostbyname(sys.argv[1]))
except OSError as e:
  print('error', e)`;

describe("faults (root, netns): a killed sidecar leaves the agent with nothing; a restart restores it", function () {
  this.timeout(60_000);
  const harness = new PodHarness();
  let pw: PodWorld;
  let upstreams: Background;
  let sidecar: Background;
  let sidecarArgs: string[];
  let worldCa: string;
  let bundle = "";
  const dnsLog = (): string => harness.dnsLog();
  const records = (): { address: string; url?: string; headers?: Record<string, string> }[] =>
    worldRecords(upstreams);
  const agent = (command: string[]) =>
    run(pw.asUser(AGENT, command), { CURL_CA_BUNDLE: bundle, SSL_CERT_FILE: bundle });
  const curl = (args: string[]) =>
    agent(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", ...args]);
  const startSidecar = async (): Promise<void> => {
    sidecar = await background(sidecarArgs, /listening on/);
    // A new process has a new interception CA: the agent trusts the bundle it writes.
    bundle = harness.agentBundle(worldCa);
  };

  before(async function () {
    pw = harness.create(
      ["ip", "setpriv", "iptables-restore", "ip6tables-restore", "dnsmasq", "curl", "python3"],
      [UPSTREAM],
    );
    const world = await harness.startWorldUpstream([UPSTREAM]);
    upstreams = world.upstream;
    worldCa = world.ca;
    // The world's resolver answers both names: a query that escapes the pod would succeed.
    await harness.startDnsmasq(pw.worldIp, [
      ["api.example.test", UPSTREAM],
      ["registry.example.test", UPSTREAM],
    ]);
    const worldCaPath = scratchFile(pw, "world-ca.pem", worldCa);
    const policy = scratchFile(pw, "policy.yaml", POLICY);
    harness.makeTrustDir();
    await harness.init();
    sidecarArgs = harness.sidecarArgs({ policy, upstreamCa: worldCaPath, allow: [`${UPSTREAM}/32`] });
    await startSidecar();
    harness.defer(() => sidecar.stop());
  });

  after(async function () {
    await harness.teardown();
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
