// Starts in-process sidecars for tests from manifest objects, with a silent or captured audit log.
import { Writable } from "node:stream";
import { createAuditLog } from "../../sidecar/observe/audit.ts";
import { parseCidr } from "../../sidecar/net/address.ts";
import { compile } from "../../sidecar/policy/compile.ts";
import { StaticSecrets, type SecretData, type SecretSource } from "../../sidecar/proxy/secrets.ts";
import { startSidecar, type RunningSidecar } from "../../sidecar/runtime.ts";
import { canary, recordMetricsScrape } from "./canary.ts";

/** A test sidecar plus its captured audit lines. */
export interface TestSidecar extends RunningSidecar {
  audit: Record<string, unknown>[];
  /** Everything the audit log wrote, as text (to search for leaked secrets). */
  auditText(): string;
  proxyUrl: string;
}

/** Secret manifests as plain key/value maps; every value is registered with the canary scan. */
export function secret(namespace: string, name: string, data: Record<string, string>): SecretData {
  for (const [key, value] of Object.entries(data))
    canary.secret(value, `Secret ${namespace}/${name} key ${key}`);
  return { namespace, name, data: new Map(Object.entries(data).map(([k, v]) => [k, Buffer.from(v)])) };
}

/**
 * Starts a sidecar on ephemeral loopback ports with `policies`/`credentials` compiled and applied
 * (pass `apply: false` to start with none). Throws with every compile error on bad input. Its audit
 * lines, and its /metrics as scraped when it is closed, are recorded for the canary scan.
 */
export async function startTestSidecar(options: {
  policies?: unknown[];
  credentials?: unknown[];
  secrets?: SecretData[];
  /** Another source of Secret values (e.g. the Kubernetes API); replaces `secrets`. */
  secretSource?: SecretSource;
  pins?: Record<string, string | string[]>;
  allow?: string[];
  upstreamCa?: string[];
  apply?: boolean;
  upstreamTimeoutMs?: number;
}): Promise<TestSidecar> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      callback();
    },
  });
  const sidecar = await startSidecar({
    listen: { host: "127.0.0.1", port: 0 },
    metrics: { host: "127.0.0.1", port: 0 },
    secrets: options.secretSource ?? new StaticSecrets(options.secrets ?? []),
    log: createAuditLog({ pod: "test-pod", namespace: "agents" }, { destination: sink }),
    pins: new Map(
      Object.entries(options.pins ?? {}).map(([host, ip]) => [host, Array.isArray(ip) ? ip : [ip]]),
    ),
    allowAddresses: (options.allow ?? ["127.0.0.1/32"]).map((c) => {
      const parsed = parseCidr(c);
      if (!parsed.ok) throw new Error(parsed.message);
      return parsed.value;
    }),
    upstreamCa: options.upstreamCa ?? [],
    ...(options.upstreamTimeoutMs === undefined ? {} : { upstreamTimeoutMs: options.upstreamTimeoutMs }),
  });
  if (options.apply !== false) {
    const compiled = compile({ policies: options.policies ?? [], credentials: options.credentials ?? [] });
    if (!compiled.ok) throw new Error(compiled.errors.map((e) => `${e.path}: ${e.message}`).join("\n"));
    const applied = sidecar.gate.apply(JSON.parse(JSON.stringify(compiled.value)), 1);
    if (!applied.ok) throw new Error(applied.errors.map((e) => `${e.path}: ${e.message}`).join("\n"));
  }
  const proxyUrl = `http://127.0.0.1:${sidecar.proxyAddress.port}`;
  canary.recordLive("log", `test sidecar ${proxyUrl} audit log`, () => lines.join("\n"), "exposed");
  const close = sidecar.close.bind(sidecar);
  let scraped = false;
  const extended = Object.assign(sidecar, {
    audit: [] as Record<string, unknown>[],
    auditText: () => lines.join("\n"),
    proxyUrl,
    close: async (): Promise<void> => {
      if (!scraped) {
        scraped = true;
        const { host, port } = sidecar.metricsAddress;
        await recordMetricsScrape(`http://${host}:${port}/metrics`, `test sidecar ${proxyUrl} /metrics`);
      }
      await close();
    },
  });
  Object.defineProperty(extended, "audit", {
    get: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  });
  return extended;
}

/** An EgressPolicy manifest in namespace `agents`. */
export function policy(
  name: string,
  egress: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): unknown {
  return {
    apiVersion: "airlock.dev/v1alpha1",
    kind: "EgressPolicy",
    metadata: { name, namespace: "agents" },
    spec: { podSelector: {}, egress, ...extra },
  };
}

/** A Credential manifest in namespace `agents`. */
export function credential(
  name: string,
  secretName: string,
  injection: Record<string, unknown>,
  hosts?: string[],
): unknown {
  return {
    apiVersion: "airlock.dev/v1alpha1",
    kind: "Credential",
    metadata: { name, namespace: "agents" },
    spec: { secretRef: { name: secretName, key: "token" }, injection, ...(hosts ? { hosts } : {}) },
  };
}

/** Bodies the sidecar answered with, parsed. */
export function parseJson(text: string): Record<string, unknown> {
  return JSON.parse(text) as Record<string, unknown>;
}
