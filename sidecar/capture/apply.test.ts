// `airlock init` applied in a real network namespace, and real agent traffic through the rules.
import { expect } from "chai";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AIRLOCK, airlock, ROOT } from "../../test/helpers/cli.ts";

const NS = `airlock-cap-${randomBytes(4).toString("hex")}`;
const PEER = `${NS}-peer`;
const NODE = process.execPath;
// The system python (a per-user shim under /root would not run as the agent's UID).
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const AGENT = words("--reuid 1000 --regid 1000 --clear-groups");
const SIDECAR = words("--reuid 15000 --regid 15000 --clear-groups");
// An agent whose primary and supplementary group is the sidecar's: groups must exempt nothing.
const AGENT_IN_SIDECAR_GROUP = words("--reuid 1000 --regid 15000 --groups 15000");
const FAMILIES = ["ipv4", "ipv6"] as const;

// The sidecar's stand-in (UID 15000 in the pod): the transparent listener answers with the local
// address a connection arrived on, the DNS port echoes, the explicit and control ports name themselves.
const SIDECAR_JS = `
const net = require("node:net"), dgram = require("node:dgram");
const tcp = (host, port, reply) => new Promise((ok) => net.createServer((s) => {
  s.on("error", () => {}); s.end(reply(s) + "\\n");
}).listen({ host, port, ipv6Only: false }, ok));
const udp = (type, host, port) => new Promise((ok) => {
  const s = dgram.createSocket(type);
  s.on("message", (m, r) => s.send("dns:" + m, r.port, r.address));
  s.bind(port, host, ok);
});
(async () => {
  await tcp("::", 15001, (s) => s.localAddress.replace(/^::ffff:/, "") + ":" + s.localPort);
  await tcp("127.0.0.1", 15080, () => "explicit");
  await tcp("127.0.0.1", 15443, () => "control");
  await udp("udp4", "127.0.0.1", 15053);
  await udp("udp6", "::1", 15053);
  console.log("ready");
})();`;

// A host outside the pod (its own namespace, across a veth pair): answers "peer" on TCP 80, 443
// and 8443, echoes UDP on 9999, and prints every datagram it gets.
const PEER_JS = `
const net = require("node:net"), dgram = require("node:dgram");
const listens = [80, 443, 8443].map((port) => new Promise((ok) =>
  net.createServer((s) => { s.on("error", () => {}); s.end("peer\\n"); }).listen({ host: "::", port, ipv6Only: false }, ok)));
const sink = dgram.createSocket("udp6");
sink.on("message", (m, r) => { console.log("udp:" + m); sink.send("peer:" + m, r.port, r.address); });
listens.push(new Promise((ok) => sink.bind(9999, "::", ok)));
Promise.all(listens).then(() => console.log("ready"));`;

// One client action; prints the reply, an error code, or "timeout".
const CLIENT_JS = `
const [mode, host, port, msg] = process.argv.slice(1);
const done = (s) => { process.stdout.write(String(s)); process.exit(0); };
setTimeout(() => done("timeout"), 1500);
if (mode === "tcp") {
  const s = require("node:net").connect({ host, port: Number(port) });
  let data = ""; s.on("data", (c) => (data += c)); s.on("end", () => done(data.trim())); s.on("error", (e) => done(e.code));
} else {
  const s = require("node:dgram").createSocket(host.includes(":") ? "udp6" : "udp4");
  s.on("message", (m) => done(m)); s.send(msg, Number(port), host, (e) => e && done(e.code));
}`;

// ICMP echo from an unprivileged ICMP socket (Node has none); prints "sent" or the errno.
const PING_PY = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
try:
    s.sendto(b"\\x08\\x00\\x00\\x00\\x00\\x01\\x00\\x01", ("10.77.0.2", 0)); print("sent")
except OSError as e:
    print(e.errno)`;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function words(text: string): string[] {
  return text.split(" ");
}

function exec(file: string, args: string[], timeout = 10_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, timeout, encoding: "utf8" }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Runs `args` in the pod's namespace (or `ns`); throws on a non-zero exit. */
async function must(args: string[], ns = NS): Promise<string> {
  const r = await exec("ip", ["netns", "exec", ns, ...args]);
  if (r.code !== 0) throw new Error(`${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

function init(...args: string[]): Promise<Result> {
  return exec("ip", ["netns", "exec", NS, AIRLOCK, "init", ...args]);
}

/** Our lines of one family's iptables-save, counters removed. */
async function ours(family: (typeof FAMILIES)[number]): Promise<string[]> {
  const text = await must([family === "ipv4" ? "iptables-save" : "ip6tables-save"]);
  return text
    .split("\n")
    .filter((line) => line.includes("AIRLOCK"))
    .map((line) => line.replace(/ \[\d+:\d+\]$/, ""));
}

async function client(cred: string[] | undefined, ...args: string[]): Promise<string> {
  const command = [NODE, "-e", CLIENT_JS, ...args];
  return (await must(cred ? ["setpriv", ...cred, ...command] : command)).trim();
}

/** Starts a long-running script in a namespace and resolves once it prints "ready". */
async function start(
  ns: string,
  prefix: string[],
  script: string,
  output: { text: string },
): Promise<ChildProcess> {
  const child = spawn("ip", ["netns", "exec", ns, ...prefix, NODE, "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${script.slice(0, 40)}... did not start: ${output.text}`));
    }, 5000);
    child.stdout.on("data", (chunk: Buffer) => {
      output.text += chunk.toString("utf8");
      if (output.text.includes("ready\n")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return child;
}

describe("capture (root, netns): airlock init in a real network namespace", function () {
  this.timeout(20_000);
  const children: ChildProcess[] = [];
  const peerOut = { text: "" };
  let tmp = "";

  before(async () => {
    const missing: string[] = [];
    if (process.getuid?.() !== 0) missing.push("root (run the tests as root)");
    for (const tool of words("ip iptables-restore ip6tables-restore iptables-save ip6tables-save setpriv"))
      if ((await exec("sh", ["-c", `command -v ${tool}`])).code !== 0) missing.push(tool);
    if ((await exec("setpriv", [...AGENT, PYTHON, "-c", "pass"])).code !== 0)
      missing.push(`${PYTHON} runnable by UID 1000 (for the ICMP check)`);
    if (missing.length > 0)
      throw new Error(
        `this test needs ${missing.join(", ")} (packages iptables, iproute2, util-linux, python3)`,
      );
    for (const ns of [NS, PEER]) {
      const added = await exec("ip", ["netns", "add", ns]);
      if (added.code !== 0) throw new Error(`cannot create network namespace ${ns}: ${added.stderr}`);
    }
    tmp = mkdtempSync(join(tmpdir(), "airlock-cap-"));
    // The pod (v0: 10.77.0.1, fd77::1) and a peer (v1: 10.77.0.2, fd77::2); nothing leaves the machine.
    await must(words(`ip link add v0 type veth peer name v1 netns ${PEER}`));
    for (const [ns, dev, n] of [
      [NS, "v0", 1],
      [PEER, "v1", 2],
    ] as const) {
      await must(words("ip link set lo up"), ns);
      await must(words(`ip addr add 10.77.0.${n}/24 dev ${dev}`), ns);
      await must(words(`ip -6 addr add fd77::${n}/64 dev ${dev} nodad`), ns);
      await must(words(`ip link set ${dev} up`), ns);
    }
    await must(["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"]);
    for (const bin of ["iptables", "ip6tables"])
      await must([bin, ...words("-A OUTPUT -p tcp --dport 9 -m comment --comment foreign -j ACCEPT")]);
    children.push(await start(PEER, [], PEER_JS, peerOut));
  });

  after(async () => {
    for (const child of children) child.kill("SIGKILL");
    for (const ns of [NS, PEER]) {
      // Anything still in our namespaces was started by this test.
      const pids = await exec("ip", ["netns", "pids", ns]);
      for (const pid of pids.stdout.split("\n").filter(Boolean)) process.kill(Number(pid), "SIGKILL");
      await exec("ip", ["netns", "del", ns]);
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("applies the rules in both families, each hook once and first, other rules kept", async () => {
    const r = await init();
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/^airlock init: every uid but 15000 captured/);
    for (const family of FAMILIES) {
      const lines = await ours(family);
      expect(lines.filter((l) => l.startsWith("-A OUTPUT"))).to.have.length(3); // filter, nat, raw
      expect(lines.filter((l) => l.startsWith("-A INPUT"))).to.have.length(1);
      expect(lines.filter((l) => l.startsWith("-A PREROUTING"))).to.have.length(1); // raw
      expect(lines.join("\n")).to.include("--uid-owner 0-14999").and.include("--uid-owner 15001-4294967294");
    }
    expect((await ours("ipv4")).join("\n")).to.include("--to-destination 127.0.1.187:15001");
    expect(await must(["iptables", "-S", "OUTPUT"])).to.match(
      /-A OUTPUT .*-j AIRLOCK_OUTPUT\n.*--comment foreign/,
    );
  });

  it("re-running changes nothing, and puts the hook back in first place", async () => {
    const before = { ipv4: await ours("ipv4"), ipv6: await ours("ipv6") };
    await must(words("iptables -I OUTPUT 1 -m comment --comment foreign-first -j ACCEPT"));
    const r = await init();
    expect(r.code, r.stderr).to.equal(0);
    expect({ ipv4: await ours("ipv4"), ipv6: await ours("ipv6") }).to.deep.equal(before);
    const output = (await must(["iptables", "-S", "OUTPUT"])).split("\n").filter((l) => l.startsWith("-A"));
    expect(output[0]).to.include("-j AIRLOCK_OUTPUT");
    expect(output.join("\n")).to.include("foreign-first").and.include("--comment foreign ");
    await must(words("iptables -D OUTPUT -m comment --comment foreign-first -j ACCEPT"));
  });

  it("--no-ipv6 is refused while IPv6 is on, and changes nothing", async () => {
    const before = await ours("ipv4");
    const r = await init("--no-ipv6");
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/--no-ipv6: this network namespace has IPv6 enabled/);
    expect(await ours("ipv4")).to.deep.equal(before);
  });

  describe("with the sidecar listening (UID 15000)", () => {
    before(async () => {
      children.push(await start(NS, ["setpriv", ...SIDECAR], SIDECAR_JS, { text: "" }));
    });

    it("the sidecar reaches the peer over IPv4 and IPv6 (kernel ARP and neighbour discovery pass)", async () => {
      expect(await client(SIDECAR, "tcp", "10.77.0.2", "443")).to.equal("peer");
      expect(await client(SIDECAR, "tcp", "fd77::2", "443")).to.equal("peer");
      expect(await client(SIDECAR, "udp", "fd77::2", "9999", "probe")).to.equal("peer:probe");
    });

    it("agent TCP to a loopback service lands on the transparent listener at 127.0.0.1 (port unknown)", async () => {
      expect(await client(AGENT, "tcp", "127.0.0.1", "8080")).to.equal("127.0.0.1:15001");
      expect(await client(undefined, "tcp", "127.0.0.1", "8080"), "root is an agent too").to.equal(
        "127.0.0.1:15001",
      );
    });

    it("agent TCP to captured ports carries the original port in the address (443 → 127.0.1.187)", async () => {
      expect(await client(AGENT, "tcp", "10.77.0.2", "443")).to.equal("127.0.1.187:15001");
      expect(await client(AGENT, "tcp", "10.77.0.2", "80")).to.equal("127.0.0.80:15001");
      expect(await client(AGENT, "tcp", "10.77.0.2", "8443"), "not captured: unknown").to.equal(
        "127.0.0.1:15001",
      );
    });

    it("agent TCP over IPv6 lands on ::1 (port unknown)", async () => {
      expect(await client(AGENT, "tcp", "fd77::2", "443")).to.equal("::1:15001");
      expect(await client(AGENT, "tcp", "::1", "8080")).to.equal("::1:15001");
    });

    it("the agent reaches the explicit proxy directly; the sidecar is not redirected", async () => {
      expect(await client(AGENT, "tcp", "127.0.0.1", "15080")).to.equal("explicit");
      expect(await client(SIDECAR, "tcp", "127.0.0.1", "8080")).to.equal("ECONNREFUSED");
    });

    it("agent DNS to any resolver is answered by the sidecar's DNS port, in both families", async () => {
      expect(await client(AGENT, "udp", "10.77.0.2", "53", "q4")).to.equal("dns:q4");
      expect(await client(AGENT, "udp", "fd77::2", "53", "q6")).to.equal("dns:q6");
    });

    it("agent UDP (QUIC too) and ICMP elsewhere are dropped; the sidecar's are not", async () => {
      const counter = async (): Promise<number> => {
        const listing = await must(["iptables", "-L", "AIRLOCK_AGENT", "-v", "-n", "-x"]);
        const drop = listing.split("\n").find((l) => /\bDROP\b/.test(l));
        return Number(drop?.trim().split(/\s+/)[0]);
      };
      const dropped = await counter();
      expect(await client(AGENT, "udp", "10.77.0.2", "9999", "leak4")).to.be.oneOf(["EPERM", "timeout"]);
      expect(await client(AGENT, "udp", "fd77::2", "9999", "leak6")).to.be.oneOf(["EPERM", "timeout"]);
      expect(await client(AGENT, "udp", "10.77.0.2", "443", "quic")).to.be.oneOf(["EPERM", "timeout"]);
      expect(await client(SIDECAR, "udp", "10.77.0.2", "9999", "sidecar")).to.equal("peer:sidecar");
      expect((await must(["setpriv", ...AGENT, PYTHON, "-c", PING_PY])).trim()).to.equal("1"); // EPERM
      expect((await must(["setpriv", ...SIDECAR, PYTHON, "-c", PING_PY])).trim()).to.equal("sent");
      expect(await counter()).to.be.at.least(dropped + 3); // IPv4: two datagrams and the echo
      expect(peerOut.text).to.include("udp:sidecar").and.not.include("leak").and.not.include("quic");
    });

    it("the control port refuses the agent, not the sidecar", async () => {
      expect(await client(AGENT, "tcp", "127.0.0.1", "15443")).to.equal("ECONNREFUSED");
      expect(await client(SIDECAR, "tcp", "127.0.0.1", "15443")).to.equal("control");
    });

    it("the sidecar's GID, primary or supplementary, exempts nothing", async () => {
      expect(await client(AGENT_IN_SIDECAR_GROUP, "tcp", "10.77.0.2", "443")).to.equal("127.0.1.187:15001");
      expect(await client(AGENT_IN_SIDECAR_GROUP, "tcp", "127.0.0.1", "15443")).to.equal("ECONNREFUSED");
      expect(await client(AGENT_IN_SIDECAR_GROUP, "udp", "10.77.0.2", "9999", "leak")).to.be.oneOf([
        "EPERM",
        "timeout",
      ]);
    });
  });

  describe("a failed apply leaves nothing of ours in either family", () => {
    afterEach(async () => {
      for (const family of FAMILIES) expect(await ours(family), family).to.deep.equal([]);
      expect(await must(["iptables", "-S", "OUTPUT"])).to.include("--comment foreign ");
      expect(await must(["ip6tables", "-S", "OUTPUT"])).to.include("--comment foreign ");
    });

    it("when ip6tables-restore cannot run (after IPv4 was applied)", async () => {
      const r = await init("--ip6tables-restore", "/nonexistent/ip6tables-restore");
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(
        /not applied: .*ip6tables-restore.*removed every Airlock rule \(ipv4, ipv6\)/,
      );
    });

    it("when ip6tables-restore applies its input and then fails", async () => {
      const liar = join(tmp, "ip6tables-restore");
      writeFileSync(
        liar,
        '#!/bin/sh\nip6tables-restore "$@" || exit\necho "simulated failure" >&2\nexit 1\n',
      );
      chmodSync(liar, 0o755);
      expect(await init()).to.have.property("code", 0);
      const r = await init("--ip6tables-restore", liar);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/simulated failure.*removed every Airlock rule/);
    });
  });
});

describe("airlock init flags", () => {
  it("--dry-run prints exactly the golden restore input", async () => {
    const r = await airlock(["init", "--dry-run"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(readFileSync(join(ROOT, "test/golden/capture/defaults.rules"), "utf8"));
  });

  it("bad flags exit 2 naming the flag", async () => {
    const cases: [string[], RegExp][] = [
      [["--capture-ports", "0,443"], /--capture-ports: 0: expected/],
      [["--capture-ports", "443,1"], /127\.0\.0\.1/],
      [["--capture-ports", "80,80"], /listed twice/],
      [["--dns-port", "fifty"], /--dns-port fifty: expected a whole number/],
      [["--sidecar-uid", "0"], /--sidecar-uid: 0/],
      [["--bogus"], /bogus/],
    ];
    const results = await Promise.all(cases.map(([args]) => airlock(["init", "--dry-run", ...args])));
    cases.forEach(([args, message], i) => {
      expect(results[i]?.code, args.join(" ")).to.equal(2);
      expect(results[i]?.stderr).to.match(message);
    });
  });

  it("--help documents every flag", async () => {
    const r = await airlock(["init", "--help"]);
    for (const flag of ["--dry-run", "--sidecar-uid", "--capture-ports", "--no-ipv6", "--ip6tables-restore"])
      expect(r.stdout).to.include(flag);
  });
});
