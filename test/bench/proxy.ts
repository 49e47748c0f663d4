// `make bench` (data path): Airlock side by side with its peers, in one run on this machine.
//
// Origin: nginx-light serving 1 KiB over HTTP and HTTPS on BENCH_ORIGIN_IP (default 127.0.0.77,
// ports 80 and 443, so that a TLS client's Host and SNI carry no port). Peers: direct (no proxy),
// tinyproxy, a minimal node:http proxy (test/bench/node-proxy.ts, the Node ceiling) and
// squid-openssl with ssl-bump + request_header_add for the inject arms. Load: wrk (one thread, 50
// connections) for plain HTTP, hey (50 connections, keep-alive or a new connection per request)
// for TLS, hey -c 1 for sequential latency. CPUs are pinned with taskset: the load generator and
// the origin on CPU 0, each proxy alone on CPU 1. The sidecar runs as the image runs it (its
// TypeScript stripped to JavaScript beforehand); its VmRSS is read idle and after each of its arms,
// and again 5 s later with nothing sent to it (the sidecar gives memory back when quiet).
// Everything listens on loopback only. A missing peer is installed when the script runs as root;
// otherwise it says what to install and stops.
//
//   node test/bench/proxy.ts [--quick] [--seconds N] [--soak MINUTES] [--baseline DIR] [--no-record]
//
//   --quick          3 s per arm instead of 10
//   --seconds N      N s per arm
//   --soak MINUTES   also run MINUTES of mixed load on one sidecar (plain, inject keep-alive and
//                    new connection, passthrough new connection, an inject host whose upstream is
//                    down), sampling its RSS every 10 s (a leak shows as growth)
//   --baseline DIR   another checkout of this repository (its node_modules in place): its Airlock
//                    runs each Airlock arm right after this one, interleaved (A/B in one run)
//   --no-record      print only; do not append to docs/benchmarks.md
//   --only REGEX     only the arms whose name matches (for profiling one path)
//   --rounds N       run every arm N times, interleaved (all proxies once, then again), and report
//                    each cell's median: on a shared machine one sample can be off by a quarter
//
// BENCH_AIRLOCK_NODE_OPTIONS adds Node options to the Airlock processes only, e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/prof" (the profile is written when the bench stops them);
// BENCH_AIRLOCK_ENV ("NAME=value ...") adds environment variables to them. BENCH_BASELINE_NODE_OPTIONS
// and BENCH_BASELINE_ENV, when set, replace those for the baseline, so that `--baseline .` compares
// two settings of one checkout.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { cpus, homedir, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SIDECAR_MALLOC_ENV, SIDECAR_NODE_OPTIONS } from "../../operator/inject/injected.ts";
import { ROOT } from "../helpers/cli.ts";
import { flag, option } from "./args.ts";
import { recordBenchmark } from "./record.ts";

const QUICK = flag("--quick");
const SECONDS = Number(option("--seconds") ?? (QUICK ? 3 : 10));
const WARM_SECONDS = QUICK ? 1 : 2;
const SOAK_MINUTES = Number(option("--soak") ?? 0);
const BASELINE_OPTION = option("--baseline");
const BASELINE = BASELINE_OPTION === undefined ? undefined : resolve(BASELINE_OPTION);
const RECORD = !flag("--no-record");
const ROUNDS = Math.max(1, Number(option("--rounds") ?? 1));
const ONLY = option("--only") === undefined ? undefined : new RegExp(option("--only") ?? "");
const ORIGIN = process.env.BENCH_ORIGIN_IP ?? "127.0.0.77";
/** An address nothing listens on: the inject host whose upstream is down. */
const DOWN = process.env.BENCH_DOWN_IP ?? "127.0.0.78";
const SECRET = "bench-secret-3f9c2a7d51e8b046";
const PLAIN = "plain.example.test";
const PASS = "pass.example.test";
const INJECT = "inject.example.test";
const DOWN_HOST = "down.example.test";
const CONNS = 50;
/** The origin's HTTP/2 port (443 stays HTTP/1.1: the other arms, and squid, compare on it). */
const H2_PORT = 8443;
const DOC = join(ROOT, "docs/benchmarks.md");
const SECTION = "## Data path throughput";
const LOAD_CPU = "0";
const PROXY_CPU = "1";

const log = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sh(command: string): { code: number; out: string } {
  const res = spawnSync("bash", ["-c", command], { encoding: "utf8" });
  return { code: res.status ?? 1, out: `${res.stdout}${res.stderr}` };
}

function which(name: string): string | undefined {
  const found = sh(`command -v ${name}`).out.trim();
  return found === "" ? undefined : found;
}

/** What installs a missing peer: a Debian package, or a Go module (hey is not packaged). */
type Install = { apt: string; why?: string } | { go: string };
const HEY_MODULE = "github.com/rakyll/hey@v0.1.5";

/** The tools this bench drives, and what is missing (with what installs it). */
function findTools(): {
  found: { nginx: string; tinyproxy: string; squid: string; wrk: string; hey: string };
  missing: Install[];
} {
  const goBin = sh("go env GOPATH 2>/dev/null").out.trim();
  const hey =
    which("hey") ??
    [join(homedir(), "go/bin/hey"), goBin === "" ? "" : join(goBin, "bin/hey")].find(
      (p) => p !== "" && existsSync(p),
    );
  const missing: Install[] = [];
  const need = (path: string | undefined, install: Install): string => {
    if (path === undefined) missing.push(install);
    return path ?? "";
  };
  const found = {
    nginx: need(which("nginx") ?? which("/usr/sbin/nginx"), { apt: "nginx-light" }),
    tinyproxy: need(which("tinyproxy"), { apt: "tinyproxy" }),
    squid: need(which("squid") ?? which("/usr/sbin/squid"), { apt: "squid-openssl" }),
    wrk: need(which("wrk"), { apt: "wrk" }),
    hey: need(hey, { go: HEY_MODULE }),
  };
  need(which("taskset"), { apt: "util-linux" });
  need(which("openssl"), { apt: "openssl" });
  need(which("curl"), { apt: "curl" });
  if (found.squid !== "" && !/--with-openssl/.test(sh(`${found.squid} -v`).out))
    missing.push({ apt: "squid-openssl", why: "the installed squid has no TLS: ssl-bump needs it" });
  else if (found.squid !== "" && !existsSync(CERTGEN))
    missing.push({ apt: "squid-openssl", why: "security_file_certgen" });
  return { found, missing };
}

/**
 * The tools this bench drives. Missing peers are installed (as root: Debian's packages, and hey
 * with `go install`), then looked for again; without root, or with BENCH_NO_INSTALL=1, the bench
 * names the commands and stops.
 */
function tools(): { nginx: string; tinyproxy: string; squid: string; wrk: string; hey: string } {
  if (sh("nproc").out.trim() === "1") {
    process.stderr.write("bench: needs a machine with at least 2 CPUs (load on CPU 0, proxy on CPU 1)\n");
    process.exit(2);
  }
  let { found, missing } = findTools();
  const apt = [...new Set(missing.flatMap((m) => ("apt" in m ? [m.apt] : [])))];
  const go = [...new Set(missing.flatMap((m) => ("go" in m ? [m.go] : [])))];
  const commands = [
    ...(apt.length > 0
      ? [`apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${apt.join(" ")}`]
      : []),
    ...go.map((module) => `go install ${module}`),
  ];
  if (commands.length > 0 && process.getuid?.() === 0 && process.env.BENCH_NO_INSTALL !== "1") {
    for (const command of commands) {
      log(`installing peers: ${command}`);
      const res = sh(command);
      if (res.code !== 0) {
        process.stderr.write(`bench: could not install peers (${command}):\n${res.out}\n`);
        process.exit(2);
      }
    }
    ({ found, missing } = findTools());
  }
  if (missing.length > 0) {
    const why = missing.flatMap((m) =>
      "why" in m && m.why !== undefined ? [`squid-openssl: ${m.why}`] : [],
    );
    process.stderr.write(
      `bench: missing peers; install them (as root) and run again:\n  ${commands.join("\n  ")}\n` +
        why.map((w) => `  (${w})\n`).join(""),
    );
    process.exit(2);
  }
  return found;
}
const CERTGEN = "/usr/lib/squid/security_file_certgen";

function mustRun(command: string): void {
  const res = sh(command);
  if (res.code !== 0) throw new Error(`${command}\n${res.out}`);
}

/** The origin's CA and certificate (every bench name), and the CA squid signs its leaves with. */
function certificates(dir: string): void {
  const ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  mustRun(
    `cd ${dir} && openssl req -x509 ${ec} -keyout origin-ca.key -out origin-ca.pem -days 2 -subj /CN=bench-origin-ca ` +
      `-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>&1`,
  );
  writeFileSync(
    join(dir, "origin.ext"),
    `subjectAltName=DNS:${INJECT},DNS:${PASS},DNS:${PLAIN},DNS:${DOWN_HOST}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  mustRun(
    `cd ${dir} && openssl req ${ec} -keyout origin.key -out origin.csr -subj /CN=${INJECT} 2>&1 && ` +
      `openssl x509 -req -in origin.csr -CA origin-ca.pem -CAkey origin-ca.key -CAcreateserial -out origin.pem ` +
      `-days 2 -extfile origin.ext 2>&1`,
  );
  mustRun(
    `cd ${dir} && openssl req -x509 ${ec} -keyout squid-ca.key -out squid-ca.pem -days 2 -subj /CN=bench-squid-ca ` +
      `-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>&1`,
  );
}

/** A started peer process. */
interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  port: number;
  output: () => string;
}

function start(
  name: string,
  cpu: string,
  command: string,
  args: string[],
  port: number,
  env: Record<string, string> = {},
): Proc {
  const child = spawn("taskset", ["-c", cpu, command, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  let output = "";
  child.stderr.on("data", (c: Buffer) => {
    output = (output + c.toString("utf8")).slice(-20_000);
  });
  return { name, child, pid: child.pid ?? 0, port, output: () => output };
}

async function stop(proc: Proc): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once("exit", resolve));
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function listening(proc: Proc, host: string, port: number, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited:\n${proc.output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => {
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${proc.name} not listening on ${host}:${port}:\n${proc.output()}`);
    await sleep(100);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

function startNginx(nginx: string, dir: string): Proc {
  mkdirSync(join(dir, "www"), { recursive: true });
  // 1 KiB of text, the same bytes every time.
  const line =
    "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghij\n";
  writeFileSync(join(dir, "www/1k"), line.repeat(11).slice(0, 1023) + "\n");
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes 1;
daemon off;
master_process off;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  default_type text/plain;
  sendfile on;
  map $http_x_api_key $has_key { default yes; "" no; }
  server {
    listen ${ORIGIN}:80 reuseport;
    listen ${ORIGIN}:443 ssl reuseport;
    listen ${ORIGIN}:${H2_PORT} ssl http2 reuseport;
    ssl_certificate ${dir}/origin.pem;
    ssl_certificate_key ${dir}/origin.key;
    ssl_session_cache shared:bench:10m;
    root ${dir}/www;
    location = /seen { return 200 "key:$has_key\\n"; }
  }
}
`,
  );
  return start(
    "nginx",
    LOAD_CPU,
    nginx,
    ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "nginx-error.log")],
    80,
  );
}

async function startTinyproxy(tinyproxy: string, dir: string): Promise<Proc> {
  const port = await freePort();
  writeFileSync(
    join(dir, "tinyproxy.conf"),
    `User nobody\nGroup nogroup\nPort ${port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 4096\nLogLevel Critical\nDisableViaHeader Yes\n`,
  );
  return start("tinyproxy", PROXY_CPU, tinyproxy, ["-d", "-c", join(dir, "tinyproxy.conf")], port);
}

async function startNodeProxy(dir: string): Promise<Proc> {
  const port = await freePort();
  const mitm = ["--mitm", INJECT, "--address", ORIGIN, "--header", `X-Api-Key:${SECRET}`];
  const files = ["--cert", "origin.pem", "--key", "origin.key", "--ca", "origin-ca.pem"].map((arg, i) =>
    i % 2 === 1 ? join(dir, arg) : arg,
  );
  return start(
    "node-proxy",
    PROXY_CPU,
    process.execPath,
    [join(ROOT, "test/bench/node-proxy.ts"), String(port), ...mitm, ...files],
    port,
  );
}

async function startSquid(squid: string, dir: string): Promise<Proc> {
  const port = await freePort();
  const db = join(dir, "squid-ssl-db");
  rmSync(db, { recursive: true, force: true });
  mustRun(`${CERTGEN} -c -s ${db} -M 16MB 2>&1`);
  writeFileSync(join(dir, "hosts"), `${ORIGIN} ${INJECT} ${PASS} ${PLAIN}\n${DOWN} ${DOWN_HOST}\n`);
  writeFileSync(
    join(dir, "squid.conf"),
    `http_port 127.0.0.1:${port} ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=16MB tls-cert=${dir}/squid-ca.pem tls-key=${dir}/squid-ca.key
sslcrtd_program ${CERTGEN} -s ${db} -M 16MB
sslcrtd_children 4 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile=${dir}/origin-ca.pem
request_header_add X-Api-Key "${SECRET}" all
http_access allow all
cache deny all
cache_mem 0
access_log none
cache_log ${dir}/squid-cache.log
pid_filename ${dir}/squid.pid
hosts_file ${dir}/hosts
coredump_dir ${dir}
cache_effective_user proxy
max_filedescriptors 16384
shutdown_lifetime 1 seconds
`,
  );
  mustRun(`chown -R proxy:proxy ${db} && chmod -R a+rX ${dir}`);
  return start("squid", PROXY_CPU, squid, ["-N", "-f", join(dir, "squid.conf")], port);
}

function writePolicy(dir: string): string {
  const path = join(dir, "airlock-policy.yaml");
  writeFileSync(
    path,
    `apiVersion: airlock.dev/v1alpha1
kind: EgressPolicy
metadata: {name: bench, namespace: agents}
spec:
  podSelector: {}
  egress:
    - {name: plain, hosts: [${PLAIN}], ports: [80]}
    - {name: pass, hosts: [${PASS}], ports: [443]}
    - {name: inject, hosts: [${INJECT}, ${DOWN_HOST}], ports: [443, ${H2_PORT}], credential: api}
---
apiVersion: airlock.dev/v1alpha1
kind: Credential
metadata: {name: api, namespace: agents}
spec:
  secretRef: {name: api, key: token}
  injection: {header: {name: X-Api-Key}}
---
apiVersion: v1
kind: Secret
metadata: {name: api, namespace: agents}
stringData: {token: ${SECRET}}
`,
  );
  return path;
}

/**
 * The sidecar as the image runs it: a copy of `root`'s bin/ and sidecar/ with the TypeScript
 * stripped to JavaScript ahead of time (image/strip-types.ts), so that Node's stripper (about
 * 20 MiB resident) is not in the measured process, and the entry point bundled
 * (image/bundle.ts), which bin/airlock then runs. node_modules is linked, not copied.
 */
function strippedCopy(root: string, dir: string, name: string): string {
  const copy = join(dir, `${name}-js`);
  mkdirSync(copy, { recursive: true });
  mustRun(
    `cp -r ${root}/bin ${root}/sidecar ${root}/package.json ${copy}/ && ln -s ${root}/node_modules ${copy}/node_modules`,
  );
  mustRun(`${process.execPath} ${join(ROOT, "image/strip-types.ts")} ${copy}/sidecar 2>&1`);
  mustRun(`${process.execPath} ${join(ROOT, "image/bundle.ts")} ${copy} 2>&1`);
  return copy;
}

/** Node options and environment variables one Airlock of the bench gets on top of the sidecar's. */
interface AirlockSettings {
  nodeOptions: string;
  env: Record<string, string>;
}

/** `BENCH_<who>_NODE_OPTIONS` and `BENCH_<who>_ENV` ("NAME=value NAME=value"); the baseline falls back to the Airlock's. */
function settingsFor(who: "AIRLOCK" | "BASELINE"): AirlockSettings {
  const pick = (what: string): string | undefined =>
    process.env[`BENCH_${who}_${what}`] ??
    (who === "BASELINE" ? process.env[`BENCH_AIRLOCK_${what}`] : undefined);
  const env: Record<string, string> = {};
  for (const pair of (pick("ENV") ?? "").split(/\s+/).filter((p) => p !== "")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`BENCH_${who}_ENV: "${pair}" is not NAME=value`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { nodeOptions: pick("NODE_OPTIONS") ?? "", env };
}

async function startAirlock(
  name: string,
  root: string,
  dir: string,
  settings: AirlockSettings,
): Promise<Proc> {
  const runnable = strippedCopy(root, dir, name);
  const port = await freePort();
  const args = [
    ...["run", "--policy", writePolicy(dir), "--listen", `127.0.0.1:${port}`, "--metrics", "127.0.0.1:0"],
    ...["--upstream-ca", join(dir, "origin-ca.pem"), "--allow-address", `${ORIGIN}/32`],
    ...["--allow-address", `${DOWN}/32`],
    ...[
      "--resolve",
      `${PLAIN}:${ORIGIN}`,
      "--resolve",
      `${PASS}:${ORIGIN}`,
      "--resolve",
      `${INJECT}:${ORIGIN}`,
    ],
    ...["--resolve", `${DOWN_HOST}:${DOWN}`],
  ];
  // The audit log (one JSON line per request) goes to /dev/null: written, as in production, not read.
  // The V8 heap bounds and malloc settings every injected sidecar runs with (operator/inject/injected.ts).
  return start(name, PROXY_CPU, join(runnable, "bin/airlock"), args, port, {
    NODE_OPTIONS: `${SIDECAR_NODE_OPTIONS} ${settings.nodeOptions}`.trim(),
    ...Object.fromEntries(SIDECAR_MALLOC_ENV.map(({ name: variable, value }) => [variable, value])),
    ...settings.env,
  });
}

/** VmRSS of `pid` in MiB (its children, e.g. squid's certificate helpers, not counted). */
function rssMiB(pid: number): number {
  return statusMiB(pid, "VmRSS");
}

/** One `kB` field of /proc/PID/status, in MiB. */
function statusMiB(pid: number, field: string): number {
  const match = new RegExp(`\\n${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? NaN) / 1024;
}

/** What the resident memory is: anonymous (heaps, buffers) and file-backed (Node's binary, libraries). */
function rssParts(pid: number): string {
  return `anon ${statusMiB(pid, "RssAnon").toFixed(0)} + file ${statusMiB(pid, "RssFile").toFixed(0)} MiB`;
}

/** CPU time (user + system) of `pid` so far, in ms; threads included, children not. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(sh("getconf CLK_TCK").out.trim()) || 100;

/** One load run's figures. */
interface Load {
  rps: number;
  p50?: number;
  p99?: number;
  errors: number;
  ok: number;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn("taskset", ["-c", LOAD_CPU, command, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (out += c.toString("utf8")));
    child.on("exit", () => {
      resolve(out);
    });
  });
}

let TOOLS: ReturnType<typeof tools>;

/** wrk, one thread, CONNS connections; `proxy` given: absolute-form requests to it. */
async function wrk(
  url: { host: string; hostHeader: string },
  proxy: number | undefined,
  seconds: number,
  conns = CONNS,
  dir = tmpdir(),
): Promise<Load> {
  const script = join(dir, `wrk-${url.host}-${proxy ?? "direct"}.lua`);
  writeFileSync(
    script,
    `wrk.path = "${proxy === undefined ? "/1k" : `http://${url.host}/1k`}"\nwrk.headers["Host"] = "${url.hostHeader}"\n`,
  );
  const target = proxy === undefined ? `http://${url.host}/` : `http://127.0.0.1:${proxy}/`;
  const out = await run(TOOLS.wrk, ["-t1", `-c${conns}`, `-d${seconds}s`, "--latency", "-s", script, target]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  // Read errors are not counted: tinyproxy closes every connection after its answer (HTTP/1.0).
  const errors =
    non2xx + (socketErrors ? Number(socketErrors[1]) + Number(socketErrors[3]) + Number(socketErrors[4]) : 0);
  if (Number.isNaN(rps)) log(`wrk output: ${out}`);
  return { rps, errors, ok: total - non2xx };
}

const secs = (text: string | undefined): number => Number(text ?? NaN) * 1000;

/** hey against https://`host`/1k (Host and SNI `sni`), through `proxy` if given. */
async function hey(
  target: { url: string; sni: string },
  proxy: number | undefined,
  options: { seconds: number; conns: number; keepAlive: boolean },
): Promise<Load> {
  const args = ["-z", `${options.seconds}s`, "-c", String(options.conns), "-host", target.sni];
  if (!options.keepAlive) args.push("-disable-keepalive");
  if (proxy !== undefined) args.push("-x", `http://127.0.0.1:${proxy}`);
  args.push(target.url);
  const out = await run(TOOLS.hey, args);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const ok = Number(/\[200\]\s+(\d+) responses/.exec(out)?.[1] ?? 0);
  const statuses = [...out.matchAll(/\[(\d+)\]\s+(\d+) responses/g)];
  const other = statuses.filter((m) => m[1] !== "200").reduce((a, m) => a + Number(m[2]), 0);
  const errorLines = out.split("Error distribution:")[1] ?? "";
  const errors = other + [...errorLines.matchAll(/\[(\d+)\]/g)].reduce((a, m) => a + Number(m[1]), 0);
  if (Number.isNaN(rps) || (errors > 0 && ok === 0)) log(`hey output: ${out.slice(-2000)}`);
  return {
    rps,
    p50: secs(/50%+ in ([\d.]+) secs/.exec(out)?.[1]),
    p99: secs(/99%+ in ([\d.]+) secs/.exec(out)?.[1]),
    errors,
    ok,
  };
}

/** test/bench/h2-load.ts against https://INJECT:H2_PORT/1k, direct to `address` or through `proxy`. */
async function h2load(via: { address: string } | { proxy: number }, seconds: number): Promise<Load> {
  const target = "address" in via ? ["--address", via.address] : ["--proxy", String(via.proxy)];
  const out = await run(process.execPath, [
    join(ROOT, "test/bench/h2-load.ts"),
    ...["--url", `https://${INJECT}:${H2_PORT}/1k`, ...target, "--seconds", String(seconds)],
  ]);
  try {
    return JSON.parse(out.trim().split("\n").pop() ?? "") as Load;
  } catch {
    log(`h2-load output: ${out.slice(-2000)}`);
    return { rps: NaN, errors: 1, ok: 0 };
  }
}

/** One measured cell: which arm, which proxy. */
interface Cell {
  arm: string;
  proxy: string;
  load: Load;
  /** The proxy's own CPU time per answered request, µs: steadier than req/s on a shared machine. */
  cpuUs?: number;
}

const results: Cell[] = [];
/**
 * The sidecar's VmRSS at a moment (idle, or the end of an arm) and again QUIET_SECONDS later, with
 * nothing sent to it in between: the sidecar gives memory back once it has been quiet for a few
 * seconds (sidecar/process/memory.ts), so the two differ.
 */
interface RssSample {
  moment: string;
  proxy: string;
  mib: number;
  parts: string;
  settled?: { mib: number; parts: string };
}
const rssSamples: RssSample[] = [];
const QUIET_SECONDS = 5;

/** Samples the RSS of each Airlock in `procs` now and, with nothing sent, QUIET_SECONDS later. */
async function sampleRss(moment: string, procs: Proc[]): Promise<RssSample[]> {
  const read = (pid: number) => ({ mib: rssMiB(pid), parts: rssParts(pid) });
  const now = procs.map((a) => ({ moment, proxy: a.name, pid: a.pid, ...read(a.pid) }));
  await sleep(QUIET_SECONDS * 1000);
  const samples = now.map(({ pid, ...sample }) => ({ ...sample, settled: read(pid) }));
  rssSamples.push(...samples);
  return samples;
}

function tlsTarget(host: string, viaName: boolean): { url: string; sni: string } {
  return { url: `https://${viaName ? host : ORIGIN}/1k`, sni: host };
}

interface Peers {
  tinyproxy: Proc;
  node: Proc;
  squid: Proc;
  airlock: Proc;
  base?: Proc;
}

/** The Airlock processes to measure, this checkout first. */
const airlocks = (p: Peers): Proc[] => (p.base ? [p.airlock, p.base] : [p.airlock]);

async function measure(
  arm: string,
  proxy: Proc | undefined,
  go: (seconds: number) => Promise<Load>,
): Promise<void> {
  if (ONLY !== undefined && !ONLY.test(arm)) return;
  await go(WARM_SECONDS);
  const cpuBefore = proxy ? cpuMs(proxy.pid) : 0;
  const load = await go(SECONDS);
  const name = proxy?.name ?? "direct";
  const cell: Cell = { arm, proxy: name, load };
  if (proxy) cell.cpuUs = ((cpuMs(proxy.pid) - cpuBefore) * 1000) / Math.max(1, load.ok + load.errors);
  let rss: RssSample | undefined;
  if (proxy && name.startsWith("airlock")) {
    [rss] = await sampleRss(`after ${arm}`, [proxy]);
  }
  results.push(cell);
  const lat =
    load.p50 !== undefined && !Number.isNaN(load.p50)
      ? ` p50 ${load.p50.toFixed(2)} p99 ${(load.p99 ?? NaN).toFixed(2)} ms`
      : "";
  log(
    `${arm} / ${name}: ${load.rps.toFixed(0)} req/s${lat}, ${load.ok} ok, ${load.errors} errors${cell.cpuUs !== undefined ? `, ${cell.cpuUs.toFixed(0)} µs CPU/req` : ""}${rss ? `, RSS ${rss.mib.toFixed(0)} MiB (${rss.parts}), ${QUIET_SECONDS} s later ${rss.settled?.mib.toFixed(0) ?? "?"} MiB` : ""}`,
  );
}

async function arms(p: Peers, dir: string): Promise<void> {
  const http = { host: ORIGIN, hostHeader: ORIGIN };
  const named = { host: PLAIN, hostHeader: PLAIN };
  const ka = { conns: CONNS, keepAlive: true };
  const fresh = { conns: CONNS, keepAlive: false };
  const seq = { conns: 1, keepAlive: true };
  const PLAIN_ARM = "plain HTTP forward, wrk 50 conns";
  await measure(PLAIN_ARM, undefined, (s) =>
    wrk({ host: ORIGIN, hostHeader: PLAIN }, undefined, s, CONNS, dir),
  );
  await measure(PLAIN_ARM, p.tinyproxy, (s) => wrk(http, p.tinyproxy.port, s, CONNS, dir));
  await measure(PLAIN_ARM, p.node, (s) => wrk(http, p.node.port, s, CONNS, dir));
  for (const a of airlocks(p)) await measure(PLAIN_ARM, a, (s) => wrk(named, a.port, s, CONNS, dir));

  for (const [arm, opts] of [
    ["CONNECT passthrough, keep-alive, hey 50 conns", ka],
    ["CONNECT passthrough, new connection per request, hey 50 conns", fresh],
  ] as const) {
    await measure(arm, undefined, (s) => hey(tlsTarget(PASS, false), undefined, { ...opts, seconds: s }));
    await measure(arm, p.tinyproxy, (s) =>
      hey(tlsTarget(PASS, false), p.tinyproxy.port, { ...opts, seconds: s }),
    );
    await measure(arm, p.node, (s) => hey(tlsTarget(PASS, false), p.node.port, { ...opts, seconds: s }));
    for (const a of airlocks(p))
      await measure(arm, a, (s) => hey(tlsTarget(PASS, true), a.port, { ...opts, seconds: s }));
  }

  for (const [arm, opts] of [
    ["intercept + inject, keep-alive, hey 50 conns", ka],
    ["intercept + inject, new connection per request, hey 50 conns", fresh],
    ["sequential HTTPS (hey -c 1), keep-alive", seq],
  ] as const) {
    await measure(arm, undefined, (s) => hey(tlsTarget(INJECT, false), undefined, { ...opts, seconds: s }));
    await measure(arm, p.squid, (s) => hey(tlsTarget(INJECT, true), p.squid.port, { ...opts, seconds: s }));
    await measure(arm, p.node, (s) => hey(tlsTarget(INJECT, true), p.node.port, { ...opts, seconds: s }));
    for (const a of airlocks(p))
      await measure(arm, a, (s) => hey(tlsTarget(INJECT, true), a.port, { ...opts, seconds: s }));
  }
  // HTTP/2 from the agent (10 connections × 10 streams in flight); the origin speaks it too.
  const H2_ARM = "intercept + inject over HTTP/2, node:http2 client 10 conns × 10 streams";
  const h2 =
    (via: { address: string } | { proxy: number }) =>
    (s: number): Promise<Load> =>
      h2load(via, s);
  await measure(H2_ARM, undefined, h2({ address: ORIGIN }));
  for (const a of airlocks(p)) await measure(H2_ARM, a, h2({ proxy: a.port }));
  const SEQ_PLAIN = "sequential plain HTTP (hey -c 1)";
  const plainSeq =
    (proxy: number | undefined) =>
    (s: number): Promise<Load> =>
      runHeyPlain(proxy === undefined ? `http://${PLAIN}/1k` : `http://${PLAIN}/1k`, proxy, s);
  await measure(SEQ_PLAIN, undefined, plainSeq(undefined));
  for (const a of airlocks(p)) await measure(SEQ_PLAIN, a, plainSeq(a.port));

  // The error path: every upstream connection refused (a 502 each); memory must stay bounded.
  const DOWN_ARM = "intercept + inject, upstream refused (502), hey 50 conns";
  for (const a of airlocks(p))
    await measure(DOWN_ARM, a, (s) => hey(tlsTarget(DOWN_HOST, true), a.port, { ...ka, seconds: s }));
}

/** hey -c 1 over plain HTTP; direct needs the name resolved, so it goes to the origin's address. */
async function runHeyPlain(url: string, proxy: number | undefined, seconds: number): Promise<Load> {
  const args = ["-z", `${seconds}s`, "-c", "1"];
  if (proxy !== undefined) args.push("-x", `http://127.0.0.1:${proxy}`, url);
  else args.push("-host", PLAIN, `http://${ORIGIN}/1k`);
  const out = await run(TOOLS.hey, args);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: secs(/50%+ in ([\d.]+) secs/.exec(out)?.[1]),
    p99: secs(/99%+ in ([\d.]+) secs/.exec(out)?.[1]),
    ok: Number(/\[200\]\s+(\d+) responses/.exec(out)?.[1] ?? 0),
    errors: 0,
  };
}

/** Each injecting proxy must deliver the credential (nginx answers whether it saw one). */
function checkInjection(p: Peers): void {
  for (const proxy of [p.squid, p.node, ...airlocks(p)]) {
    const out = sh(
      `curl -sk --max-time 10 -x http://127.0.0.1:${proxy.port} https://${INJECT}/seen`,
    ).out.trim();
    if (out !== "key:yes")
      throw new Error(`${proxy.name} did not inject the credential: ${JSON.stringify(out)}`);
  }
}

/**
 * The result of `proxy` on `arm`: with --rounds, the median of its rounds (req/s, latencies and
 * CPU per request each their own median; the first round's arm name and errors).
 */
function cell(arm: string, proxy: string): Cell | undefined {
  const all = results.filter((c) => c.arm.startsWith(arm) && c.proxy === proxy);
  const first = all[0];
  if (first === undefined || all.length === 1) return first;
  const median = (values: (number | undefined)[]): number | undefined => {
    const known = values
      .filter((v): v is number => v !== undefined && !Number.isNaN(v))
      .sort((a, b) => a - b);
    if (known.length === 0) return undefined;
    const mid = known.length >> 1;
    return known.length % 2 === 1 ? known[mid] : ((known[mid - 1] as number) + (known[mid] as number)) / 2;
  };
  const load: Load = {
    ...first.load,
    rps: median(all.map((c) => c.load.rps)) ?? NaN,
    errors: all.reduce((sum, c) => sum + c.load.errors, 0),
    ok: all.reduce((sum, c) => sum + c.load.ok, 0),
  };
  const p50 = median(all.map((c) => c.load.p50));
  const p99 = median(all.map((c) => c.load.p99));
  if (p50 !== undefined) load.p50 = p50;
  if (p99 !== undefined) load.p99 = p99;
  const cpuUs = median(all.map((c) => c.cpuUs));
  return { ...first, load, ...(cpuUs === undefined ? {} : { cpuUs }) };
}
const rps = (arm: string, proxy: string): number => cell(arm, proxy)?.load.rps ?? NaN;

function tables(p: Peers): string {
  const proxies = ["direct", "tinyproxy", "node-proxy", "squid", ...airlocks(p).map((a) => a.name)];
  const heads = [
    "direct",
    "tinyproxy",
    "node:http",
    "squid-openssl",
    ...airlocks(p).map((a) => (a.name === "airlock" ? "Airlock" : "Airlock (baseline)")),
  ];
  const arms = [...new Set(results.map((c) => c.arm))];
  const fmt = (c: Cell | undefined): string => {
    if (!c) return "—";
    const lat = c.arm.startsWith("sequential")
      ? `${c.load.p50?.toFixed(2)} / ${c.load.p99?.toFixed(2)} ms`
      : c.load.rps.toFixed(0);
    return c.load.errors > 0 && !c.arm.includes("refused") ? `${lat} (${c.load.errors} errors)` : lat;
  };
  const throughput = [
    `| arm (req/s; sequential: p50 / p99) | ${heads.join(" | ")} |`,
    `| --- | ${heads.map(() => "---").join(" | ")} |`,
    ...arms.map((arm) => `| ${arm} | ${proxies.map((name) => fmt(cell(arm, name))).join(" | ")} |`),
  ];
  const cpuRows = [
    `| proxy CPU per request, µs (user + system) | ${heads.slice(1).join(" | ")} |`,
    `| --- | ${heads
      .slice(1)
      .map(() => "---")
      .join(" | ")} |`,
    ...arms.map(
      (arm) =>
        `| ${arm} | ${proxies
          .slice(1)
          .map((name) => cell(arm, name)?.cpuUs?.toFixed(0) ?? "—")
          .join(" | ")} |`,
    ),
  ];
  const seqHttps = (name: string) => cell("sequential HTTPS", name)?.load;
  const seqPlain = (name: string) => cell("sequential plain", name)?.load;
  const added = (a: Load | undefined, d: Load | undefined, k: "p50" | "p99"): number =>
    (a?.[k] ?? NaN) - (d?.[k] ?? NaN);
  // The figure as printed, or with one more decimal where rounding would make a missed target look
  // met (1.196 printed as "1.20" against 1.2).
  const shown = (x: number, digits: number, meets: (v: number) => boolean): string =>
    meets(Number(x.toFixed(digits))) === meets(x) ? x.toFixed(digits) : x.toFixed(digits + 1);
  const ratio = (x: number, want: number): string => `${shown(x, 2, (v) => v >= want)}×`;
  const pct = (x: number, want: number): string => `${shown(x * 100, 0, (v) => v >= want * 100)} %`;
  // The targets say MB: 10^6 bytes, compared as such (120 MB is 114.4 MiB).
  const MB_PER_MIB = 1.048576;
  const verdict = (ok: boolean): string => (ok ? "met" : "**missed**");
  const A = "airlock";
  const rows: [string, string, string, boolean][] = [];
  const inj = rps("intercept + inject, keep-alive", A) / rps("intercept + inject, keep-alive", "squid");
  rows.push(["inject keep-alive vs squid-openssl", ratio(inj, 0.5), "≥ 0.5× (goal 1×)", inj >= 0.5]);
  const injNew =
    rps("intercept + inject, new connection", A) / rps("intercept + inject, new connection", "squid");
  rows.push(["inject new connection vs squid-openssl", ratio(injNew, 1.5), "≥ 1.5×", injNew >= 1.5]);
  const a50 = added(seqHttps(A), seqHttps("direct"), "p50");
  const a99 = added(seqHttps(A), seqHttps("direct"), "p99");
  rows.push(["inject sequential, added p50 over direct", `+${a50.toFixed(2)} ms`, "≤ +0.5 ms", a50 <= 0.5]);
  rows.push(["inject sequential, added p99 over direct", `+${a99.toFixed(2)} ms`, "≤ +1.5 ms", a99 <= 1.5]);
  const pt = rps("plain HTTP", A) / rps("plain HTTP", "tinyproxy");
  const pn = rps("plain HTTP", A) / rps("plain HTTP", "node-proxy");
  rows.push(["plain forward vs tinyproxy", ratio(pt, 1.2), "≥ 1.2×", pt >= 1.2]);
  rows.push(["plain forward vs node:http", pct(pn, 0.9), "≥ 90 %", pn >= 0.9]);
  const ct = rps("CONNECT passthrough, keep-alive", A) / rps("CONNECT passthrough, keep-alive", "tinyproxy");
  const cd = rps("CONNECT passthrough, keep-alive", A) / rps("CONNECT passthrough, keep-alive", "direct");
  rows.push(["passthrough keep-alive vs tinyproxy", ratio(ct, 1.2), "≥ 1.2×", ct >= 1.2]);
  rows.push(["passthrough keep-alive vs direct", pct(cd, 0.75), "≥ 75 %", cd >= 0.75]);
  const idle = rssSamples.find((r) => r.proxy === A && r.moment === "idle");
  const afterArms = rssSamples.filter((r) => r.proxy === A && r.moment !== "idle");
  const peak = Math.max(...afterArms.map((r) => r.mib));
  const peakSettled = Math.max(...afterArms.map((r) => r.settled?.mib ?? NaN));
  const mb = (mib: number, want: number): string =>
    `${mib.toFixed(0)} MiB (${shown(mib * MB_PER_MIB, 0, (v) => v <= want)} MB)`;
  const idleNow = idle?.mib ?? NaN;
  const idleSettled = idle?.settled?.mib ?? NaN;
  rows.push(["sidecar RSS idle, 1 s after start", mb(idleNow, 60), "≤ 60 MB", idleNow * MB_PER_MIB <= 60]);
  rows.push([
    `sidecar RSS idle, ${1 + QUIET_SECONDS} s after start`,
    mb(idleSettled, 60),
    "≤ 60 MB",
    idleSettled * MB_PER_MIB <= 60,
  ]);
  rows.push([
    "sidecar RSS at the end of every arm (largest)",
    mb(peak, 120),
    "≤ 120 MB",
    peak * MB_PER_MIB <= 120,
  ]);
  rows.push([
    `sidecar RSS ${QUIET_SECONDS} s after every arm (largest)`,
    mb(peakSettled, 120),
    "≤ 120 MB",
    peakSettled * MB_PER_MIB <= 120,
  ]);
  const plainAdded = added(seqPlain(A), seqPlain("direct"), "p50");
  const targets = [
    "| target | measured | wanted | |",
    "| --- | --- | --- | --- |",
    // A row whose arms were not run (--only) says so rather than "missed".
    ...rows.map(([what, got, want, ok]) =>
      got.includes("NaN")
        ? `| ${what} | not run | ${want} | |`
        : `| ${what} | ${got} | ${want} | ${verdict(ok)} |`,
    ),
    ...(Number.isNaN(plainAdded)
      ? []
      : [
          `| plain forward sequential, added p50 over direct (no target) | +${plainAdded.toFixed(2)} ms | — | |`,
        ]),
  ];
  const rss = [
    `| sidecar VmRSS, MiB (anonymous + file-backed); then ${QUIET_SECONDS} s later | ${airlocks(p)
      .map((a) => a.name)
      .join(" | ")} |`,
    `| --- | ${airlocks(p)
      .map(() => "---")
      .join(" | ")} |`,
    ...[...new Set(rssSamples.map((r) => r.moment))].map(
      (m) =>
        `| ${m} | ${airlocks(p)
          // With --rounds, the last sample of each moment (the process is the same throughout).
          .map((a) => {
            const sample = rssSamples.findLast((r) => r.moment === m && r.proxy === a.name);
            if (sample === undefined) return "—";
            const later = sample.settled
              ? `; ${sample.settled.mib.toFixed(0)} (${sample.settled.parts})`
              : "";
            return `${sample.mib.toFixed(0)} (${sample.parts})${later}`;
          })
          .join(" | ")} |`,
    ),
  ];
  return [throughput.join("\n"), cpuRows.join("\n"), targets.join("\n"), rss.join("\n"), plot()].join("\n\n");
}

/** A text bar chart of req/s per arm and proxy (the "plot"). */
function plot(): string {
  const pairs = [...new Map(results.map((c) => [`${c.arm}\u0000${c.proxy}`, c])).values()];
  const bars = pairs
    .filter((c) => !c.arm.startsWith("sequential") && !c.arm.includes("refused"))
    .map((c) => cell(c.arm, c.proxy) ?? c);
  const max = Math.max(...bars.map((c) => c.load.rps));
  const lines: string[] = [];
  let arm = "";
  for (const c of bars) {
    if (c.arm !== arm) {
      arm = c.arm;
      lines.push(arm);
    }
    const width = Math.round((40 * c.load.rps) / max);
    lines.push(`  ${c.proxy.padEnd(16)} ${"█".repeat(width).padEnd(40)} ${c.load.rps.toFixed(0)}`);
  }
  return ["```text", ...lines, "```"].join("\n");
}

/** Mixed load on one sidecar for `minutes`, its RSS sampled every 10 s. */
async function soak(p: Peers, dir: string, minutes: number): Promise<string> {
  const a = p.airlock;
  const seconds = Math.round(minutes * 60);
  const samples: { t: number; mib: number }[] = [{ t: 0, mib: rssMiB(a.pid) }];
  const started = Date.now();
  const sampler = setInterval(() => {
    samples.push({ t: (Date.now() - started) / 1000, mib: rssMiB(a.pid) });
  }, 10_000);
  log(`soak: ${minutes} min of mixed load on ${a.name}`);
  const loads = await Promise.all([
    wrk({ host: PLAIN, hostHeader: PLAIN }, a.port, seconds, 10, dir),
    hey(tlsTarget(INJECT, true), a.port, { seconds, conns: 10, keepAlive: true }),
    hey(tlsTarget(INJECT, true), a.port, { seconds, conns: 5, keepAlive: false }),
    hey(tlsTarget(PASS, true), a.port, { seconds, conns: 5, keepAlive: false }),
    hey(tlsTarget(DOWN_HOST, true), a.port, { seconds, conns: 5, keepAlive: true }),
  ]);
  clearInterval(sampler);
  samples.push({ t: (Date.now() - started) / 1000, mib: rssMiB(a.pid) });
  await sleep(QUIET_SECONDS * 1000);
  const settled = rssMiB(a.pid);
  const total = loads.reduce((s, l) => s + l.ok + l.errors, 0);
  const firstMinute = samples.filter((s) => s.t <= 60);
  const lastMinute = samples.filter((s) => s.t >= seconds - 60);
  const maxOf = (xs: { mib: number }[]) => Math.max(...xs.map((x) => x.mib));
  const line =
    `Soak, ${minutes} min of mixed load (plain c10, inject keep-alive c10, inject new-connection c5, ` +
    `passthrough new-connection c5, upstream-down inject c5; ${total} requests): RSS at start ${samples[0]?.mib.toFixed(0)} MiB, ` +
    `largest in the first minute ${maxOf(firstMinute).toFixed(0)} MiB, largest in the last minute ${maxOf(lastMinute).toFixed(0)} MiB, ` +
    `at the end ${samples.at(-1)?.mib.toFixed(0)} MiB, ${QUIET_SECONDS} s later ${settled.toFixed(0)} MiB; samples every 10 s: ${samples.map((s) => s.mib.toFixed(0)).join(" ")}.`;
  log(line);
  return line;
}

async function main(): Promise<void> {
  TOOLS = tools();
  // This script's own work (parsing, bookkeeping) stays off the proxies' CPU.
  sh(`taskset -p -c ${LOAD_CPU} ${process.pid}`);
  const load = loadavg()[0] ?? 0;
  const dir = mkdtempSync(join(tmpdir(), "airlock-bench-proxy-"));
  chmodSync(dir, 0o755);
  certificates(dir);
  const procs: Proc[] = [];
  // Interrupted (^C, or a timeout's SIGTERM): the peers it started stop too, and the folder goes.
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.once(signal, () => {
      log(`${signal}: stopping the peers`);
      void Promise.all(procs.map(stop)).finally(() => {
        rmSync(dir, { recursive: true, force: true });
        process.exit(130);
      });
    });
  try {
    const nginx = startNginx(TOOLS.nginx, dir);
    procs.push(nginx);
    await listening(nginx, ORIGIN, 443);
    const peers: Peers = {
      tinyproxy: await startTinyproxy(TOOLS.tinyproxy, dir),
      node: await startNodeProxy(dir),
      squid: await startSquid(TOOLS.squid, dir),
      airlock: await startAirlock("airlock", ROOT, dir, settingsFor("AIRLOCK")),
    };
    if (BASELINE !== undefined)
      peers.base = await startAirlock("airlock-baseline", BASELINE, dir, settingsFor("BASELINE"));
    const all = [peers.tinyproxy, peers.node, peers.squid, ...airlocks(peers)];
    procs.push(...all);
    for (const proc of all) await listening(proc, "127.0.0.1", proc.port);
    checkInjection(peers);
    await sleep(1000);
    await sampleRss("idle", airlocks(peers));
    // With --rounds, the arms run again in the same order; the tables take each cell's median.
    for (let round = 0; round < ROUNDS; round++) await arms(peers, dir);
    const soakLine = SOAK_MINUTES > 0 ? await soak(peers, dir, SOAK_MINUTES) : undefined;
    const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
    const nproc = sh("nproc --all").out.trim();
    const versions = [
      `Node ${process.version}`,
      sh(`${TOOLS.nginx} -v`).out.trim().replace("nginx version: ", ""),
      `tinyproxy ${sh(`${TOOLS.tinyproxy} -v`)
        .out.trim()
        .replace(/^tinyproxy /, "")}`,
      `squid ${/Version (\S+)/.exec(sh(`${TOOLS.squid} -v`).out)?.[1] ?? "?"}`,
      sh(`${TOOLS.wrk} -v`)
        .out.split("\n")[0]
        ?.replace(/ Copyright.*/, "")
        .trim() ?? "wrk",
      `hey ${sh(`cat $(dirname ${TOOLS.hey})/../pkg/mod/cache/download/github.com/rakyll/hey/@v/list 2>/dev/null | tail -1`).out.trim() || "(go install)"}`,
    ].join(", ");
    const heading =
      `Data path, ${new Date().toISOString().slice(0, 10)}: nproc ${nproc}, ${cpu}, ${versions}; ` +
      `${SECONDS} s per arm after ${WARM_SECONDS} s of warm-up${ROUNDS > 1 ? `, ${ROUNDS} interleaved rounds (medians)` : ""}, load and origin on CPU ${LOAD_CPU}, each proxy alone on CPU ${PROXY_CPU}, ` +
      `load average ${load.toFixed(1)} at the start${BASELINE !== undefined ? `; baseline: ${BASELINE} (${sh(`git -C ${BASELINE} rev-parse --short HEAD 2>/dev/null`).out.trim() || "a copy"}), run interleaved` : ""}:`;
    const block = `${heading}\n\n${tables(peers)}\n${soakLine !== undefined ? `\n${soakLine}\n` : ""}`;
    process.stdout.write(`${block}\n`);
    if (RECORD) {
      await recordBenchmark(SECTION, block);
      log(`added to ${DOC}`);
    }
  } finally {
    for (const proc of procs.reverse()) await stop(proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
