// `airlock explain`: the outcome one request would get, without sending it.
import { parseArgs } from "node:util";
import { formatFileErrors, loadManifestFiles } from "../config/manifest-files.ts";
import { classifyAddress } from "../net/address.ts";
import { canonicalHost, decide, load, normalizePath } from "../policy/index.ts";
import type { Decision } from "../policy/index.ts";
import { parseAbsoluteTarget } from "../proxy/target.ts";
import { UsageError } from "../process/usage-error.ts";

export const EXPLAIN_USAGE = `usage: airlock explain --policy PATH... METHOD URL

Prints the outcome (inject, allow, block), reason, policy, rule and credential name that the
sidecar would give METHOD URL, e.g. airlock explain --policy examples/demo GET https://api.example.test/v1/items
Name resolution is not performed: a name that resolves to a forbidden address is still refused at run time.`;

/** Explains one request; exit 0 whatever the outcome, 2 on bad input. */
export function explainCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      policy: { type: "string", multiple: true, default: [] },
      json: { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.policy.length === 0)
    throw new UsageError("--policy is required (files or folders of manifests)");
  const [method, url, ...extra] = positionals;
  if (method === undefined || url === undefined || extra.length > 0)
    throw new UsageError("expected METHOD URL");
  const target = parseAbsoluteTarget(url);
  if (!target.ok) throw new UsageError(`${url}: ${target.message}`);
  const host = canonicalHost(target.value.authority.host);
  if (host.kind === "invalid") throw new UsageError(`${url}: ${host.message}`);
  const path = normalizePath(target.value.pathAndQuery);
  if (!path.ok) throw new UsageError(`${url}: ${path.message}`);
  const loaded = loadManifestFiles(values.policy);
  if (!loaded.ok) {
    process.stderr.write(formatFileErrors(loaded.errors) + "\n");
    return 2;
  }
  const index = load(loaded.value.compiled);
  if (!index.ok) throw new Error("a freshly compiled policy failed to load");
  let decision: Decision | { outcome: "block"; reason: "AddressForbidden"; message: string };
  const addressClass = host.kind === "ip" ? classifyAddress(host.address) : undefined;
  if (addressClass && !addressClass.allowed) {
    decision = {
      outcome: "block",
      reason: "AddressForbidden",
      message: `${host.kind === "ip" ? host.address : ""} is ${addressClass.category}; airlock refuses non-public addresses unless --allow-address covers them`,
    };
  } else {
    decision = decide(index.value, {
      scheme: target.value.scheme,
      host: host.kind === "ip" ? host.address : host.name,
      port: target.value.authority.port ?? (target.value.scheme === "https" ? 443 : 80),
      method: method.toUpperCase(),
      path: path.path,
      entry: "http",
    });
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(decision) + "\n");
    return 0;
  }
  const lines = Object.entries(decision).map(([key, value]) => `${key.padEnd(11)} ${String(value)}`);
  process.stdout.write(lines.join("\n") + "\n");
  return 0;
}
