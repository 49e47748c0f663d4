// The input of the pure core: what the informers hold for ONE namespace (the reconcile unit), in
// the smallest shapes the decisions need. The reconciler fills it from its caches; nothing here
// reads a Secret's values, only the names of its data keys.

/** Pod phase as the API reports it. */
export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";

/** One pod of the namespace, reduced to what selection, pushing and RBAC need. */
export interface PodInfo {
  name: string;
  uid: string;
  labels: Readonly<Record<string, string>>;
  /** `spec.serviceAccountName`; "" is read as "default", as the API server does. */
  serviceAccount: string;
  podIP?: string;
  phase: PodPhase;
  /** The pod carries the airlock sidecar (the webhook's status annotation). */
  injected: boolean;
  /** `metadata.deletionTimestamp` is set. */
  deleting: boolean;
}

/** A Secret: its name and the keys of its `data` (never the values). */
export interface SecretInfo {
  name: string;
  keys: readonly string[];
}

/** The sidecar's last refusal (a NACK, or a failed push), as the pusher recorded it. */
export interface SidecarError {
  /** Stable reason from the sidecar (`BadSignature`, `LoadFailed`, …) or the pusher (`Unreachable`). */
  reason: string;
  message: string;
  errors?: readonly { path: string; message: string }[];
  /** Hash of the bundle that was refused, when known; an error about another hash is stale. */
  hash?: string;
}

/** What the pusher last learned from one sidecar (`/v1/status`, ACK or NACK). */
export interface SidecarReport {
  /** Generation the sidecar has applied (0 before its first bundle). */
  generation: number;
  /** Hash of the applied bundle; null before the first one. */
  hash: string | null;
  lastError?: SidecarError;
}

/** What one managed Role grants today: read back from the cluster (see `grantsFromRoles`). */
export interface Grant {
  serviceAccount: string;
  secrets: readonly string[];
}

/** Everything the core reads for one namespace. */
export interface Snapshot {
  namespace: string;
  /** EgressPolicy objects as the API returns them (apiVersion, kind, metadata incl. uid and generation). */
  policies: readonly unknown[];
  /** Credential objects as the API returns them. */
  credentials: readonly unknown[];
  secrets: readonly SecretInfo[];
  pods: readonly PodInfo[];
  /** Keyed by pod uid. A pod absent here has not been reached yet. */
  sidecars: ReadonlyMap<string, SidecarReport>;
  /** What the managed Roles grant now; kept until every pod of the ServiceAccount has converged. */
  grants?: readonly Grant[];
}

/** The identity fields of a raw object; undefined when it has no usable name (nothing to report on). */
export interface RawMeta {
  name: string;
  uid?: string;
  namespace?: string;
  /** `metadata.generation`, 0 when absent or malformed. */
  generation: number;
}

/** Reads name, uid, namespace and generation from a raw object without validating the rest. */
export function rawMeta(obj: unknown): RawMeta | undefined {
  if (typeof obj !== "object" || obj === null) return undefined;
  const metadata = (obj as { metadata?: unknown }).metadata;
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const { name, uid, namespace, generation } = metadata as Record<string, unknown>;
  if (typeof name !== "string" || name === "") return undefined;
  const meta: RawMeta = {
    name,
    generation: typeof generation === "number" && Number.isSafeInteger(generation) ? generation : 0,
  };
  if (typeof uid === "string") meta.uid = uid;
  if (typeof namespace === "string") meta.namespace = namespace;
  return meta;
}

/** The ServiceAccount a pod runs as, with the API server's default. */
export function serviceAccountOf(pod: PodInfo): string {
  return pod.serviceAccount === "" ? "default" : pod.serviceAccount;
}

/** Plain string order, so output never depends on the locale. */
export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
