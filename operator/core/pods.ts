// Pod identities and their bundles: which usable policies select each pod, which broken policies
// hold it at its last good bundle, the one content-hashed bundle per identity, and where each pod
// stands against it (the sidecar's ACK or NACK). Push targets fall out of that.

import {
  compile,
  labelSelectorMatches,
  type CompiledPolicy,
  type FieldError,
} from "../../sidecar/policy/index.ts";
import { isUsable, validCredentialObjects, type CredentialEntry, type PolicyEntry } from "./objects.ts";
import { byString, serviceAccountOf, type PodInfo, type Snapshot, type SidecarReport } from "./snapshot.ts";

/**
 * Where one pod stands:
 * - Untracked: not injected, deleting, or finished; nothing to push, not counted as pending.
 * - Held: a broken policy selects it (or may: its podSelector is unusable); no new bundle.
 * - Synced: the sidecar reports the bundle's hash.
 * - Rejected: the sidecar (or the push) refused this bundle; retried with backoff.
 * - NoAddress: no pod IP yet, nothing to dial.
 * - Pending: a push is due.
 */
export type SyncState = "Untracked" | "Held" | "Synced" | "Rejected" | "NoAddress" | "Pending";

/** One pod's place in the desired state. */
export interface PodPlan {
  name: string;
  uid: string;
  serviceAccount: string;
  /** Names of the usable policies selecting it, sorted: its identity within the namespace. */
  identity: string[];
  /** Broken policies that select it (or may); while any remain it gets no new bundle. */
  heldBy: string[];
  /** Hash of the bundle it should run; null while held. */
  hash: string | null;
  /** Hash its sidecar reports; null when none yet or unknown. */
  reported: string | null;
  sync: SyncState;
  /** One line for status messages and logs. */
  detail: string;
}

/** Send `policy` to the sidecar of `pod` at `podIP` (the pusher signs it with the next generation). */
export interface PushTarget {
  pod: string;
  uid: string;
  podIP: string;
  hash: string;
  policy: CompiledPolicy;
}

/** The pods' side of the desired state. */
export interface PodsPlan {
  pods: PodPlan[];
  pushes: PushTarget[];
  /** Every distinct bundle by hash, including ones only held pods would get. */
  bundles: Map<string, CompiledPolicy>;
  /** Errors of identity compiles (not expected once every policy resolved alone); located per policy. */
  identityErrors: FieldError[];
}

/** Whether the pod's sidecar should be holding a bundle: injected, not deleting, not finished. */
export function isTracked(pod: PodInfo): boolean {
  return pod.injected && !pod.deleting && pod.phase !== "Succeeded" && pod.phase !== "Failed";
}

/** A hash short enough for a status message. */
export function shortHash(hash: string): string {
  return hash.slice(0, "sha256:".length + 12);
}

function names(kind: string, list: readonly string[]): string {
  return `${kind}${list.length > 1 ? "s" : ""} ${list.join(", ")}`;
}

function rejection(hash: string, report: SidecarReport | undefined): string | undefined {
  const error = report?.lastError;
  if (error === undefined || (error.hash !== undefined && error.hash !== hash)) return undefined;
  const located = (error.errors ?? []).map((e) => `${e.path}: ${e.message}`).join("; ");
  return `bundle ${shortHash(hash)} rejected: ${error.reason}: ${error.message}${located === "" ? "" : ` (${located})`}`;
}

function placement(
  pod: PodInfo,
  hash: string | null,
  heldBy: readonly string[],
  held: string,
  report: SidecarReport | undefined,
): { sync: SyncState; detail: string } {
  if (!pod.injected) return { sync: "Untracked", detail: "no airlock sidecar" };
  if (pod.deleting) return { sync: "Untracked", detail: "deleting" };
  if (!isTracked(pod)) return { sync: "Untracked", detail: `phase ${pod.phase}` };
  if (hash === null) {
    const why = heldBy.length > 0 ? `${names("EgressPolicy", heldBy)} selecting it must be fixed` : held;
    return { sync: "Held", detail: `no new bundle: ${why}; the sidecar keeps its last good bundle` };
  }
  if (report?.hash === hash) return { sync: "Synced", detail: `runs bundle ${shortHash(hash)}` };
  const rejected = rejection(hash, report);
  if (rejected !== undefined) return { sync: "Rejected", detail: rejected };
  if (pod.podIP === undefined || pod.podIP === "")
    return { sync: "NoAddress", detail: "waiting for a pod IP" };
  return { sync: "Pending", detail: `bundle ${shortHash(hash)} not acknowledged yet` };
}

/**
 * Plans every pod: identity (usable policies whose podSelector matches), holds (broken policies
 * that match, or whose podSelector is unusable and so might), one compile per distinct identity,
 * and a push wherever a reachable sidecar does not report its bundle's hash. Sorted by pod name.
 */
export function planPods(
  snapshot: Snapshot,
  policies: readonly PolicyEntry[],
  credentials: readonly CredentialEntry[],
): PodsPlan {
  const usable = policies.filter(isUsable);
  const broken = policies.filter((p) => !isUsable(p));
  const credentialObjects = validCredentialObjects(credentials);
  const compiled = new Map<string, ReturnType<typeof compile>>();
  const bundles = new Map<string, CompiledPolicy>();
  const identityErrors: FieldError[] = [];

  const bundleFor = (identity: readonly PolicyEntry[]): ReturnType<typeof compile> => {
    const key = identity.map((p) => p.meta.name).join("\n");
    let result = compiled.get(key);
    if (result === undefined) {
      result = compile({
        policies: identity.map((p) => p.raw),
        credentials: credentialObjects,
        defaultNamespace: snapshot.namespace,
      });
      if (result.ok) bundles.set(result.value.hash, result.value);
      else identityErrors.push(...result.errors);
      compiled.set(key, result);
    }
    return result;
  };

  const pods: PodPlan[] = [];
  const pushes: PushTarget[] = [];
  for (const pod of [...snapshot.pods].sort((a, b) => byString(a.name, b.name))) {
    const selecting = usable.filter((p) => labelSelectorMatches(p.policy.spec.podSelector, pod.labels));
    const heldBy = broken
      .filter((p) => p.selector === undefined || labelSelectorMatches(p.selector, pod.labels))
      .map((p) => p.meta.name);
    const result = bundleFor(selecting);
    const bundle = heldBy.length === 0 && result.ok ? result.value : undefined;
    const report = snapshot.sidecars.get(pod.uid);
    const hash = bundle?.hash ?? null;
    const { sync, detail } = placement(pod, hash, heldBy, "its policies do not compile together", report);
    pods.push({
      name: pod.name,
      uid: pod.uid,
      serviceAccount: serviceAccountOf(pod),
      identity: selecting.map((p) => p.meta.name),
      heldBy,
      hash,
      reported: report?.hash ?? null,
      sync,
      detail,
    });
    const reachable = pod.phase === "Running" || pod.phase === "Pending";
    if (
      bundle !== undefined &&
      reachable &&
      pod.podIP !== undefined &&
      pod.podIP !== "" &&
      (sync === "Pending" || sync === "Rejected")
    ) {
      pushes.push({ pod: pod.name, uid: pod.uid, podIP: pod.podIP, hash: bundle.hash, policy: bundle });
    }
  }
  return { pods, pushes, bundles, identityErrors };
}
