// The status of every EgressPolicy, exactly as the reconciler writes it: one Ready condition whose
// reason is chosen by a numbered precedence, plus how many pods it selects and how many run it.

import { labelSelectorMatches, type CompiledPolicy, type FieldError } from "../../sidecar/policy/index.ts";
import { joinMessages, type DesiredCondition, type DesiredStatus } from "./conditions.ts";
import { isUsable, type CredentialEntry, type PolicyEntry } from "./objects.ts";
import type { PodPlan } from "./pods.ts";
import type { PodInfo } from "./snapshot.ts";

/** Stable reasons of an EgressPolicy's Ready condition (see policyReady for their precedence). */
export type PolicyReason =
  | "InvalidSpec"
  | "CompileFailed"
  | "Conflict"
  | "SecretMissing"
  | "KeyMissing"
  | "SyncPending"
  | "Synced"
  | "Compiled";

/** What the Ready condition of one EgressPolicy is decided from. */
export interface PolicyFacts {
  specErrors: readonly FieldError[];
  compileErrors: readonly FieldError[];
  /** Messages of conflicts its rules take part in (each names both rules). */
  conflicts: readonly string[];
  /** One line per Credential it uses whose Secret does not exist. */
  secretMissing: readonly string[];
  /** One line per Credential it uses whose Secret lacks the key. */
  keyMissing: readonly string[];
  /** Tracked pods (injected, not deleting, not finished) whose identity includes it. */
  tracked: number;
  /** One line per tracked pod that does not run its current bundle. */
  pending: readonly string[];
}

/** `.status` of an EgressPolicy. */
export interface PolicyStatus extends DesiredStatus {
  /** Pods its podSelector matches, injected or not, running or not; deleting pods excluded. */
  selectedPods: number;
  /** Tracked pods including it whose sidecar reports the bundle for their identity. */
  syncedPods: number;
}

/** One object's desired status, keyed for the reconciler. */
export interface ObjectStatus<S> {
  name: string;
  uid?: string;
  status: S;
}

function located(errors: readonly FieldError[]): string {
  return joinMessages(errors.map((e) => `${e.path}: ${e.message}`));
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * The Ready condition of an EgressPolicy. When several apply, the first in this list wins:
 *   1. InvalidSpec (False): its own validation errors, as "path: message" joined with "; ".
 *   2. CompileFailed (False): a reference that does not resolve: missing or invalid Credential,
 *      a host outside a Credential's bound. Pods it selects are held at their last good bundle.
 *   3. Conflict (False): two rules at the same rank attach different credentials; matching
 *      requests are blocked, never guessed. The message names both rules.
 *   4. SecretMissing (False): a Credential it uses names a Secret that does not exist.
 *   5. KeyMissing (False): a Credential it uses names a key its Secret lacks.
 *   6. SyncPending (False): a tracked pod does not run its bundle yet, is held, or NACKed it
 *      (with the sidecar's reason and errors).
 *   7. Synced (True): every tracked pod including it reports its bundle's hash.
 *   8. Compiled (True): valid, and no tracked pod includes it.
 */
export function policyReady(f: PolicyFacts, observedGeneration: number): DesiredCondition {
  const condition = (status: "True" | "False", reason: PolicyReason, message: string): DesiredCondition => ({
    type: "Ready",
    status,
    reason,
    message,
    observedGeneration,
  });
  if (f.specErrors.length > 0) return condition("False", "InvalidSpec", located(f.specErrors));
  if (f.compileErrors.length > 0) return condition("False", "CompileFailed", located(f.compileErrors));
  if (f.conflicts.length > 0) return condition("False", "Conflict", joinMessages(f.conflicts));
  const secrets = [...f.secretMissing, ...f.keyMissing];
  if (f.secretMissing.length > 0) return condition("False", "SecretMissing", joinMessages(secrets));
  if (f.keyMissing.length > 0) return condition("False", "KeyMissing", joinMessages(secrets));
  if (f.pending.length > 0) {
    const head = `${f.pending.length} of ${plural(f.tracked, "pod")} not on the current bundle: `;
    return condition("False", "SyncPending", head + joinMessages(f.pending));
  }
  if (f.tracked > 0) {
    const verb = f.tracked === 1 ? "runs" : "run";
    return condition("True", "Synced", `${plural(f.tracked, "pod")} ${verb} the current bundle`);
  }
  return condition("True", "Compiled", "compiled; selects no pod with an airlock sidecar");
}

// Problems of the Secrets behind the Credentials a usable policy names, one line each.
function secretProblems(
  entry: PolicyEntry,
  credentials: readonly CredentialEntry[],
): { secretMissing: string[]; keyMissing: string[] } {
  const secretMissing: string[] = [];
  const keyMissing: string[] = [];
  const used = new Set(entry.policy?.spec.egress.flatMap((rule) => rule.credential ?? []) ?? []);
  for (const c of credentials) {
    if (!used.has(c.meta.name) || c.credential === undefined) continue;
    const { name, key } = c.credential.spec.secretRef;
    if (c.secret === "SecretMissing")
      secretMissing.push(`Credential ${c.meta.name}: Secret ${name} not found; create it`);
    if (c.secret === "KeyMissing")
      keyMissing.push(`Credential ${c.meta.name}: Secret ${name} has no key "${key}"; add it`);
  }
  return { secretMissing, keyMissing };
}

function conflictsOf(entry: PolicyEntry, namespace: string, bundles: Iterable<CompiledPolicy>): string[] {
  const prefix = `${namespace}/${entry.meta.name}#`;
  const found = new Set(entry.conflicts.map((c) => c.message));
  for (const bundle of bundles) {
    for (const c of bundle.conflicts) {
      if (c.rules.some((r) => r.startsWith(prefix))) found.add(c.message);
    }
  }
  return [...found].sort();
}

/** The desired `.status` of every EgressPolicy (sorted by name, as `policies` is). */
export function policyStatuses(input: {
  namespace: string;
  policies: readonly PolicyEntry[];
  credentials: readonly CredentialEntry[];
  pods: readonly PodInfo[];
  plans: readonly PodPlan[];
  bundles: Iterable<CompiledPolicy>;
  identityErrors: readonly FieldError[];
}): ObjectStatus<PolicyStatus>[] {
  const bundles = [...input.bundles];
  return input.policies.map((entry) => {
    const { name } = entry.meta;
    const selector = entry.policy?.spec.podSelector ?? entry.selector;
    const selectedPods =
      selector === undefined
        ? 0
        : input.pods.filter((p) => !p.deleting && labelSelectorMatches(selector, p.labels)).length;
    const tracked = input.plans.filter((p) => p.sync !== "Untracked" && p.identity.includes(name));
    const pending = tracked.filter((p) => p.sync !== "Synced").map((p) => `pod ${p.name}: ${p.detail}`);
    const identityErrors = input.identityErrors.filter(
      (e) => e.object?.kind === "EgressPolicy" && e.object.name === name,
    );
    const facts: PolicyFacts = {
      specErrors: entry.specErrors,
      compileErrors: [...entry.compileErrors, ...identityErrors],
      conflicts: isUsable(entry) ? conflictsOf(entry, input.namespace, bundles) : [],
      ...secretProblems(entry, input.credentials),
      tracked: tracked.length,
      pending,
    };
    const status: PolicyStatus = {
      observedGeneration: entry.meta.generation,
      conditions: [policyReady(facts, entry.meta.generation)],
      selectedPods,
      syncedPods: tracked.length - pending.length,
    };
    return entry.meta.uid === undefined ? { name, status } : { name, uid: entry.meta.uid, status };
  });
}
