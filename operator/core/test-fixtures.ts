// Test-only builders for the operator core: objects shaped as the API server returns them, in
// namespace `agents`. Not part of the core's surface.

import type { PodInfo, SecretInfo, SidecarReport, Snapshot } from "./snapshot.ts";

/** An EgressPolicy as listed from the API (uid and generation set). */
export function policy(
  name: string,
  egress: unknown[],
  extra: { podSelector?: unknown; generation?: number; mode?: string } = {},
): Record<string, unknown> {
  const spec: Record<string, unknown> = { podSelector: extra.podSelector ?? {}, egress };
  if (extra.mode !== undefined) spec.mode = extra.mode;
  return {
    apiVersion: "airlock.dev/v1alpha1",
    kind: "EgressPolicy",
    metadata: { name, namespace: "agents", uid: `uid-${name}`, generation: extra.generation ?? 1 },
    spec,
  };
}

/** A Credential with a bearer header reading Secret `<name>-token`, key `token`, unless overridden. */
export function credential(name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: "airlock.dev/v1alpha1",
    kind: "Credential",
    metadata: { name, namespace: "agents", uid: `uid-${name}`, generation: 1 },
    spec: {
      secretRef: { name: `${name}-token`, key: "token" },
      injection: { header: { name: "Authorization", valuePrefix: "Bearer " } },
      ...spec,
    },
  };
}

/** A Secret holding `keys` (default just `token`). */
export function secret(name: string, keys: string[] = ["token"]): SecretInfo {
  return { name, keys };
}

/** A running, injected pod with an IP, service account `agent`, uid `uid-<name>`. */
export function pod(name: string, labels: Record<string, string>, extra: Partial<PodInfo> = {}): PodInfo {
  return {
    name,
    uid: `uid-${name}`,
    labels,
    serviceAccount: "agent",
    podIP: `10.0.0.${String(name.length)}`,
    phase: "Running",
    injected: true,
    deleting: false,
    ...extra,
  };
}

/** A snapshot of namespace `agents`; `sidecars` maps pod NAME (uid-<name>) to its report. */
export function snapshot(parts: {
  policies?: unknown[];
  credentials?: unknown[];
  secrets?: SecretInfo[];
  pods?: PodInfo[];
  sidecars?: Record<string, SidecarReport>;
  grants?: Snapshot["grants"];
}): Snapshot {
  const sidecars = new Map(Object.entries(parts.sidecars ?? {}).map(([name, r]) => [`uid-${name}`, r]));
  const out: Snapshot = {
    namespace: "agents",
    policies: parts.policies ?? [],
    credentials: parts.credentials ?? [],
    secrets: parts.secrets ?? [],
    pods: parts.pods ?? [],
    sidecars,
  };
  if (parts.grants !== undefined) out.grants = parts.grants;
  return out;
}

/** A rule allowing `host` with no credential. */
export function allow(name: string, host: string): Record<string, unknown> {
  return { name, hosts: [host] };
}

/** A rule injecting `credential` for `host`. */
export function inject(name: string, host: string, credential: string): Record<string, unknown> {
  return { name, hosts: [host], credential };
}
