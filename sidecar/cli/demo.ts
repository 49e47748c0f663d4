// `airlock demo`: a self-contained tour of the three outcomes. It starts a local HTTPS upstream
// that echoes what it receives, runs a sidecar with the policy in examples/demo, sends an
// inject, an allow and a block request through it, and prints what each side saw.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { compileManifests, formatFileErrors, readManifests } from "../config/manifest-files.ts";
import { StaticSecrets } from "../proxy/secrets.ts";
import { startEchoUpstream } from "../demo/echo-upstream.ts";
import { requestViaProxy, type ProxyResponse } from "../demo/proxy-client.ts";
import { createAuditLog } from "../observe/audit.ts";
import { parseAllowAddresses } from "./flags.ts";
import { startSidecar } from "../runtime.ts";

export const DEMO_USAGE = `usage: airlock demo [--policy FILE]

Starts a local HTTPS upstream and a sidecar (explicit proxy on an ephemeral loopback port), sends
one inject, one allow and one block request, and prints what the upstream received and what the
agent saw. Nothing leaves this machine. The policy defaults to examples/demo/policy.yaml; the
demo sets each rule's ports to the upstream's ephemeral port.`;

const DEFAULT_POLICY = join(dirname(fileURLToPath(import.meta.url)), "../../examples/demo/policy.yaml");

/** Shows a credential-bearing header value with the secret part masked. */
function redact(value: string | string[] | undefined): string {
  if (value === undefined) return "(none)";
  const text = Array.isArray(value) ? value.join(", ") : value;
  const space = text.indexOf(" ");
  const secret = space === -1 ? text : text.slice(space + 1);
  return `${space === -1 ? "" : text.slice(0, space + 1)}${secret.slice(0, 4)}${"*".repeat(Math.max(0, secret.length - 4))}`;
}

/** What the agent got back: the upstream's echo of the Authorization header, or the block reason. */
function agentSaw(response: ProxyResponse): string {
  try {
    const body = JSON.parse(response.body) as {
      headers?: Record<string, string>;
      reason?: string;
      error?: string;
    };
    if (body.error !== undefined) return `${body.error}: ${body.reason ?? ""}`;
    return `echo of Authorization: ${body.headers?.authorization ?? "(none)"}`;
  } catch {
    return response.body.slice(0, 60);
  }
}

/** An audit destination that parses each JSON line into `decisions`. */
function auditInto(decisions: { host: string; outcome: string }[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean))
        decisions.push(JSON.parse(line) as { host: string; outcome: string });
      callback();
    },
  });
}

/** Writes `rows` as columns padded to the widest cell. */
function writeTable(out: NodeJS.WritableStream, rows: string[][]): void {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  for (const row of rows) out.write(row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ") + "\n");
}

/** Runs the tour; exit 0 when all three outcomes came out as the policy says. */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { policy: { type: "string" } }, strict: true });
  const manifests = readManifests([values.policy ?? DEFAULT_POLICY]);
  const upstream = await startEchoUpstream({ tls: true });
  const port = upstream.port;
  for (const policy of manifests.policies) {
    const spec = policy.spec as { egress?: { ports?: number[] }[] };
    for (const rule of spec.egress ?? []) rule.ports = [port];
  }
  const loaded = compileManifests(manifests);
  if (!loaded.ok) {
    process.stderr.write(formatFileErrors(loaded.errors) + "\n");
    await upstream.close();
    return 2;
  }
  const decisions: { host: string; outcome: string }[] = [];
  const audit = auditInto(decisions);
  const names = ["api.example.test", "registry.example.test", "evil.example.test"];
  const sidecar = await startSidecar({
    listen: { host: "127.0.0.1", port: 0 },
    metrics: { host: "127.0.0.1", port: 0 },
    secrets: new StaticSecrets(loaded.value.secrets),
    log: createAuditLog({}, { destination: audit }),
    pins: new Map(names.map((n) => [n, ["127.0.0.1"]])),
    allowAddresses: parseAllowAddresses(["127.0.0.1/32"]),
    upstreamCa: [upstream.caPem],
  });
  sidecar.gate.apply(loaded.value.compiled, 1);
  const trust = [sidecar.ca.certificatePem, upstream.caPem];
  const out = process.stdout;
  out.write(`airlock demo: upstream https://127.0.0.1:${port} (names pinned with --resolve), `);
  out.write(`sidecar proxy http://127.0.0.1:${sidecar.proxyAddress.port}\n\n`);
  const cases = [
    // The agent sends a guessed token of its own: the sidecar replaces it for inject.
    { want: "inject", method: "GET", url: `https://api.example.test:${port}/v1/whoami`, guess: true },
    { want: "allow", method: "GET", url: `https://registry.example.test:${port}/left-pad`, guess: false },
    { want: "block", method: "GET", url: `https://evil.example.test:${port}/exfiltrate`, guess: false },
  ];
  let failures = 0;
  const rows: string[][] = [
    ["outcome", "status", "request", "Authorization at the upstream", "what the agent saw"],
  ];
  for (const c of cases) {
    const before = upstream.received.length;
    const response = await requestViaProxy(sidecar.proxyAddress, c.method, c.url, {
      ca: trust,
      headers: c.guess ? { authorization: "Bearer agent-guess" } : {},
    });
    // The sidecar's own audit line says what it decided (a passthrough response carries no header of ours).
    const host = new URL(c.url).hostname;
    const got = decisions.findLast((d) => d.host === host)?.outcome ?? "?";
    const seen =
      upstream.received.length > before ? upstream.received[before]?.headers.authorization : undefined;
    const reached = upstream.received.length > before;
    if (got !== c.want) failures++;
    rows.push([
      got,
      String(response.status),
      `${c.method} ${c.url.replace(`:${port}`, "")}`,
      reached ? redact(seen) : "(nothing reached the upstream)",
      agentSaw(response),
    ]);
  }
  writeTable(out, rows);
  const metrics = await sidecar.metrics.registry.getSingleMetricAsString("airlock_decisions_total");
  out.write("\ndecision counters from /metrics:\n");
  for (const line of metrics.split("\n").filter((l) => l.startsWith("airlock_decisions_total")))
    out.write(`  ${line}\n`);
  out.write(
    failures === 0
      ? "\nAll three outcomes as the policy says. The agent never saw the credential: the upstream's echo of it was scrubbed.\n"
      : `\n${failures} request(s) did not get the expected outcome.\n`,
  );
  await sidecar.close();
  await upstream.close();
  return failures === 0 ? 0 : 1;
}
