// Test-only builders for the operator core: objects shaped as the API server returns them, in
// namespace `agents`. Not part of the core's surface.

import {
  credential as credentialManifest,
  policy as policyManifest,
} from "../../sidecar/policy/test-fixtures.ts";
import type { PodInfo, SecretInfo, SidecarReport, Snapshot } from "./snapshot.ts";

/** Adds what the API server sets on a listed object: uid `uid-<name>` and a generation. */
function listed(manifest: Record<string, unknown>, generation = 1): Record<string, unknown> {
  const metadata = manifest.metadata as { name: string };
  return { ...manifest, metadata: { ...metadata, uid: `uid-${metadata.name}`, generation } };
}

/** An EgressPolicy as listed from the API (uid and generation set). */
export function policy(
  name: string,
  egress: unknown[],
  extra: { podSelector?: unknown; generation?: number; mode?: string } = {},
): Record<string, unknown> {
  const { generation, ...manifest } = extra;
  return listed(policyManifest(name, egress, manifest), generation);
}

/** A Credential with a bearer header reading Secret `<name>-token`, key `token`, unless overridden. */
export function credential(name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return listed(credentialManifest(name, spec));
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
