// Status conditions and the write-on-diff check. Desired conditions carry no time; merging them
// into what the object holds keeps `lastTransitionTime` unless the status really changed, so an
// unchanged world produces an identical status and the reconciler writes nothing.

import { canonicalJson } from "../../sidecar/policy/index.ts";

/** A condition as the core computes it: everything but the time it last changed. */
export interface DesiredCondition {
  type: "Ready";
  status: "True" | "False";
  /** PascalCase, stable once shipped: it appears in `kubectl get` columns and alerts. */
  reason: string;
  message: string;
  observedGeneration: number;
}

/** A condition as written to `.status.conditions` (metav1.Condition). */
export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
  /** RFC 3339; changes only when `status` changes. */
  lastTransitionTime: string;
}

/** The longest condition message written; the CRDs allow 32768, readers want far less. */
export const MAX_MESSAGE = 4096;

/** Joins `items` with "; ", naming how many were left out when it would grow past MAX_MESSAGE. */
export function joinMessages(items: readonly string[]): string {
  let out = "";
  for (const [i, item] of items.entries()) {
    const next = out === "" ? item : `${out}; ${item}`;
    if (next.length > MAX_MESSAGE - 40) {
      const left = items.length - i;
      if (out !== "") return `${out}; … and ${left} more`;
      return `${item.slice(0, MAX_MESSAGE - 40)}…${left > 1 ? ` and ${left - 1} more` : ""}`;
    }
    out = next;
  }
  return out;
}

function isCondition(value: unknown): value is Condition {
  if (typeof value !== "object" || value === null) return false;
  const c = value as Record<string, unknown>;
  return (
    typeof c.type === "string" &&
    typeof c.status === "string" &&
    typeof c.reason === "string" &&
    typeof c.message === "string" &&
    typeof c.lastTransitionTime === "string"
  );
}

/**
 * The conditions to write: each desired one, keeping the old `lastTransitionTime` when a condition
 * of that type had the same status (else `now`); conditions of other types are kept as they were
 * (another writer may own them). Malformed old entries are dropped. Old order kept, new types last,
 * so an unchanged list compares equal.
 */
export function mergeConditions(
  old: unknown,
  desired: readonly DesiredCondition[],
  now: string,
): Condition[] {
  const previous = Array.isArray(old) ? old.filter(isCondition) : [];
  const merged = (d: DesiredCondition, before: Condition | undefined): Condition => ({
    ...d,
    lastTransitionTime: before !== undefined && before.status === d.status ? before.lastTransitionTime : now,
  });
  const kept = previous.map((c) => {
    const d = desired.find((x) => x.type === c.type);
    return d === undefined ? c : merged(d, c);
  });
  const added = desired
    .filter((d) => !previous.some((c) => c.type === d.type))
    .map((d) => merged(d, undefined));
  return [...kept, ...added];
}

/**
 * Deep equality of two JSON values, ignoring key order and undefined fields: a `.status` against the
 * desired one, and the labels, annotations, rules, roleRef and subjects of Roles and RoleBindings.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** A desired status: whatever fields, plus conditions without times. */
export interface DesiredStatus {
  observedGeneration: number;
  conditions: DesiredCondition[];
}

/**
 * The status to write for an object whose current `.status` is `old`, or undefined when it is
 * already equal (no write). `now` is used only for conditions whose status changed.
 */
export function statusUpdate<S extends DesiredStatus>(
  old: unknown,
  desired: S,
  now: string,
): (Omit<S, "conditions"> & { conditions: Condition[] }) | undefined {
  const oldConditions =
    typeof old === "object" && old !== null ? (old as { conditions?: unknown }).conditions : undefined;
  const next = { ...desired, conditions: mergeConditions(oldConditions, desired.conditions, now) };
  return jsonEqual(old, next) ? undefined : next;
}

/** The `.status` of a raw object, for statusUpdate. */
export function statusOf(obj: unknown): unknown {
  return typeof obj === "object" && obj !== null ? (obj as { status?: unknown }).status : undefined;
}
