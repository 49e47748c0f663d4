// `airlock explain`: the outcome one request would get, without sending it.
import { parseArgs } from "node:util";
import { formatFileErrors, loadManifestFiles } from "../config/manifest-files.ts";
import { classifyAddress } from "../net/address.ts";
import { canonicalHost, decide, load, normalizePath } from "../policy/index.ts";
import type { CompiledCredential, Decision, HeaderEdits, HookSpec } from "../policy/index.ts";
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
  const credential =
    "credential" in decision && decision.credential !== undefined
      ? index.value.policy.credentials[decision.credential]
      : undefined;
  const details = explainDetails(decision, credential);
  if (values.json) {
    process.stdout.write(JSON.stringify({ ...decision, ...details }) + "\n");
    return 0;
  }
  // Scalars only: the edits and the hook are in `details`, in words.
  const lines = Object.entries({ ...decision, ...details }).flatMap(([key, value]) =>
    typeof value === "string" ? [`${key.padEnd(11)} ${value}`] : [],
  );
  process.stdout.write(lines.join("\n") + "\n");
  return 0;
}

/**
 * What happens to the request beyond the outcome, in words: how the credential goes on (its form,
 * where a minted token comes from, its placeholder), the rule's header edits and its hook.
 */
function explainDetails(
  decision: object,
  credential: CompiledCredential | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (credential !== undefined) {
    const injection = credential.injection;
    const value = credential.oauth2
      ? `an OAuth2 access token (${credential.oauth2.grant} grant at ${credential.oauth2.tokenUrl})`
      : credential.githubApp
        ? `a GitHub App installation token (app ${credential.githubApp.appId}, installation ${String(credential.githubApp.installationId)})`
        : `the value of Secret ${credential.namespace}/${credential.secretRef.name} key ${credential.secretRef.key}`;
    switch (injection.kind) {
      case "header":
        out.attached = `header ${injection.name}: ${injection.valuePrefix}<${value}>`;
        break;
      case "basicAuth":
        out.attached = `Authorization: Basic ${injection.username}:<${value}>`;
        break;
      case "queryParam":
        out.attached = `query parameter ${injection.name}=<${value}>`;
        break;
      case "awsSigV4":
        out.attached = `signed with AWS SigV4 (${injection.region ?? "region from the host"}, ${injection.service ?? "service from the host"}${injection.unsignedPayload ? ", UNSIGNED-PAYLOAD" : ""})`;
        break;
    }
    if (credential.placeholder !== undefined) out.placeholder = credential.placeholder;
  }
  const { headers, hook } = decision as { headers?: HeaderEdits; hook?: HookSpec };
  if (headers !== undefined)
    out.edits = [
      ...headers.remove.map((name) => `remove ${name}`),
      ...headers.set.map(({ name, value }) => `set ${name}: ${value}`),
    ].join("; ");
  if (hook !== undefined)
    out.asks = `hook ${hook.url} (timeout ${String(hook.timeoutMs)} ms${hook.cacheSeconds > 0 ? `, answers kept ${String(hook.cacheSeconds)} s` : ""})`;
  return out;
}
