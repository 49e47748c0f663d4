// Test-only builders: manifests as plain objects shaped like the YAML of DESIGN.md §2, and
// shortcuts that compile and load them. Not part of the module's public surface.

import { compile, type CompileInput } from "./compile.ts";
import { load, type PolicyIndex } from "./load.ts";
import type { CompiledPolicy, Decision, RequestFacts } from "./types.ts";

/** An EgressPolicy manifest in namespace `agents` (override with `extra`). */
export function policy(
  name: string,
  egress: unknown[],
  extra: { namespace?: string; mode?: string; podSelector?: unknown } = {},
): Record<string, unknown> {
  const spec: Record<string, unknown> = { podSelector: extra.podSelector ?? {}, egress };
  if (extra.mode !== undefined) spec.mode = extra.mode;
  return {
    apiVersion: "airlock.dev/v1alpha1",
    kind: "EgressPolicy",
    metadata: { name, namespace: extra.namespace ?? "agents" },
    spec,
  };
}

/** A Credential manifest in namespace `agents` with a bearer header, unless `spec` says otherwise. */
export function credential(
  name: string,
  spec: Record<string, unknown> = {},
  namespace = "agents",
): Record<string, unknown> {
  return {
    apiVersion: "airlock.dev/v1alpha1",
    kind: "Credential",
    metadata: { name, namespace },
    spec: {
      secretRef: { name: `${name}-token`, key: "token" },
      injection: { header: { name: "Authorization", valuePrefix: "Bearer " } },
      ...spec,
    },
  };
}

/** compile(), failing the test with every error when it does not succeed. */
export function mustCompile(input: CompileInput): CompiledPolicy {
  const result = compile(input);
  if (!result.ok) throw new Error(`compile failed: ${JSON.stringify(result.errors, null, 2)}`);
  return result.value;
}

/** compile() then load() through JSON, as the sidecar receives it. */
export function mustLoad(policies: unknown[], credentials: unknown[] = []): PolicyIndex {
  const bundle: unknown = JSON.parse(JSON.stringify(mustCompile({ policies, credentials })));
  const result = load(bundle);
  if (!result.ok) throw new Error(`load failed: ${JSON.stringify(result.errors, null, 2)}`);
  return result.value;
}

/** An HTTPS GET of / on api.github.com:443 through CONNECT, with `overrides`. */
export function facts(overrides: Partial<RequestFacts> = {}): RequestFacts {
  return {
    scheme: "https",
    host: "api.github.com",
    port: 443,
    method: "GET",
    path: "/",
    entry: "connect",
    ...overrides,
  };
}

/** A decision without its human-readable message, for whole-result comparison. */
export function withoutMessage(decision: Decision): Decision {
  const rest = { ...decision };
  delete rest.message;
  return rest;
}
