// The canary scan's Kubernetes side (canary.ts): registers the values of Secrets that tests create
// through the helpers (manifests, `kubectl create secret --from-literal`), and records what the
// cluster shows operators — EgressPolicy and Credential statuses, Events — before a control plane
// is torn down.
import { loadAll } from "js-yaml";
import type { CommandResult } from "./cli.ts";
import { canary, type CanaryRegistry } from "./canary.ts";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringValues(value: unknown): [string, string][] {
  if (!isRecord(value)) return [];
  return Object.entries(value).filter((e): e is [string, string] => typeof e[1] === "string");
}

/**
 * Registers every value of every `kind: Secret` document in `text` (YAML or JSON, one or many
 * documents): `stringData` as written, `data` base64-decoded. Text that does not parse is ignored.
 */
export function registerManifestSecrets(
  text: string,
  where: string,
  registry: CanaryRegistry = canary,
): void {
  if (!text.includes("Secret")) return;
  let docs: unknown[];
  try {
    docs = loadAll(text);
  } catch {
    return;
  }
  for (const doc of docs) {
    if (!isRecord(doc) || doc.kind !== "Secret") continue;
    const meta = isRecord(doc.metadata) ? doc.metadata : {};
    const name = `${typeof meta.namespace === "string" ? `${meta.namespace}/` : ""}${String(meta.name)}`;
    for (const [key, value] of stringValues(doc.stringData))
      registry.secret(value, `${where}: Secret ${name} key ${key}`);
    for (const [key, value] of stringValues(doc.data))
      registry.secret(Buffer.from(value, "base64").toString("utf8"), `${where}: Secret ${name} key ${key}`);
  }
}

/** Registers the Secret values a kubectl invocation creates: `--from-literal` arguments and stdin manifests. */
export function registerKubectlSecrets(
  args: string[],
  input?: string,
  registry: CanaryRegistry = canary,
): void {
  if (input !== undefined) registerManifestSecrets(input, "kubectl", registry);
  if (!args.includes("secret")) return;
  const name = args[args.indexOf("secret") + 2] ?? "?";
  args.forEach((arg, i) => {
    const literal = arg.startsWith("--from-literal=")
      ? arg.slice("--from-literal=".length)
      : arg === "--from-literal"
        ? (args[i + 1] ?? "")
        : undefined;
    const eq = literal?.indexOf("=") ?? -1;
    if (literal === undefined || eq < 0) return;
    registry.secret(literal.slice(eq + 1), `kubectl: Secret ${name} key ${literal.slice(0, eq)}`);
  });
}

type Kubectl = (args: string[]) => Promise<CommandResult>;

async function items(kubectl: Kubectl, resource: string): Promise<Record<string, unknown>[]> {
  const res = await kubectl(["get", resource, "--all-namespaces", "-o", "json", "--request-timeout=20s"]);
  if (res.code !== 0) return []; // e.g. the CRDs were never installed on this control plane
  try {
    const list = JSON.parse(res.stdout) as { items?: unknown[] };
    return (list.items ?? []).filter(isRecord);
  } catch {
    return [];
  }
}

/**
 * Records, as "exposed", the `.status` of every EgressPolicy and Credential and every Event in all
 * namespaces (what `kubectl describe` shows an operator). Never throws: a dead API server records nothing.
 */
export async function recordClusterState(kubectl: Kubectl, server: string): Promise<void> {
  try {
    for (const resource of ["egresspolicies.airlock.dev", "credentials.airlock.dev"]) {
      const statuses = (await items(kubectl, resource)).map((item) => {
        const meta = isRecord(item.metadata) ? item.metadata : {};
        return { namespace: meta.namespace, name: meta.name, status: item.status };
      });
      canary.record("status", `${resource} statuses on ${server}`, JSON.stringify(statuses), "exposed");
    }
    const events = await items(kubectl, "events");
    canary.record("event", `Events on ${server}`, JSON.stringify(events), "exposed");
  } catch {
    // Best effort at teardown: the control plane may already be failing.
  }
}
