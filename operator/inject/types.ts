// The contract of injection, shared by the pure injector, `airlock inject` and the webhook.
// Pure data: no I/O types, no Kubernetes client types (pods are plain JSON objects).
import type { FieldError } from "../../sidecar/policy/index.ts";

/** A Pod (or a pod template's `{metadata, spec}`) as plain JSON, exactly as the API server sends it. */
export type PodObject = Record<string, unknown>;

/** What the injector needs to know about this installation (from operator flags / chart values). */
export interface InjectionConfig {
  /** The one Airlock image (operator, sidecar and init share it), e.g. "airlock:0.1.0". */
  image: string;
  /** imagePullPolicy for the Airlock containers (default IfNotPresent). */
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /**
   * The operator's bundle-signing public keys (PEM, one or more concatenated): the sidecar
   * accepts a bundle signed by any of them (two during a key rotation).
   */
  bundlePublicKeys: string;
  /** Extra roots the sidecar trusts for upstreams (PEM), also put in the agent's trust bundle. */
  upstreamCa?: string;
  /**
   * Non-public ranges (CIDR text) the sidecar may dial (its `--allow-address`), for upstreams inside
   * the cluster or the company network. Empty/absent: every non-public address is refused.
   */
  allowAddresses?: readonly string[];
  /** Audience of the projected service-account token mounted in the sidecar only. */
  tokenAudience?: string;
  /** Resources of the sidecar container (defaults apply when absent). */
  resources?: Record<string, unknown>;
}

/** The injector's answer: the injected pod, or every reason it cannot be made safe. */
export type InjectResult =
  { ok: true; pod: PodObject; changed: boolean } | { ok: false; errors: FieldError[] };

/** Names the injector writes (containers, volumes); the webhook and validator recognise them by these. */
export const INJECTED = {
  initContainer: "airlock-init",
  sidecar: "airlock-sidecar",
  trustVolume: "airlock-trust",
  tokenVolume: "airlock-token",
  tmpVolume: "airlock-tmp",
} as const;
