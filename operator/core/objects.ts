// Each EgressPolicy and Credential judged on its own, so one bad object never hides the others:
// its own validation, the Secret behind a Credential, and a policy's references resolved against
// the namespace's Credentials (compiled alone, which also yields its internal conflicts).

import {
  compile,
  validateCredential,
  validateLabelSelector,
  validatePolicy,
  type Conflict,
  type Credential,
  type EgressPolicy,
  type FieldError,
  type LabelSelector,
} from "../../sidecar/policy/index.ts";
import { byString, rawMeta, type RawMeta, type SecretInfo } from "./snapshot.ts";

/** Whether a valid Credential's Secret and key exist (the names only; values are never read). */
export type SecretState = "SecretFound" | "SecretMissing" | "KeyMissing";

/** One Credential of the namespace after its own checks. */
export interface CredentialEntry {
  meta: RawMeta;
  raw: unknown;
  /** The validated Credential; undefined when `specErrors` is not empty. */
  credential: Credential | undefined;
  specErrors: FieldError[];
  /** Undefined for an invalid Credential (there is no trustworthy secretRef to look up). */
  secret: SecretState | undefined;
}

/** One EgressPolicy of the namespace after its own checks. */
export interface PolicyEntry {
  meta: RawMeta;
  raw: unknown;
  /** The validated policy; undefined when `specErrors` is not empty. */
  policy: EgressPolicy | undefined;
  /** The podSelector when it is valid on its own, even if the rest of the policy is not. */
  selector: LabelSelector | undefined;
  /** Its own validation errors (reason InvalidSpec). */
  specErrors: FieldError[];
  /** References that do not resolve: missing or invalid Credential, host outside a bound (CompileFailed). */
  compileErrors: FieldError[];
  /** Conflicts among its own rules. */
  conflicts: Conflict[];
}

/** A policy that may go into a bundle: valid on its own and every reference resolved. */
export type UsablePolicy = PolicyEntry & { policy: EgressPolicy };

/** Whether the policy may go into a bundle. */
export function isUsable(entry: PolicyEntry): entry is UsablePolicy {
  return entry.policy !== undefined && entry.specErrors.length === 0 && entry.compileErrors.length === 0;
}

// Objects of another namespace, or without a name, cannot be reported on here: skip them.
// A name seen twice cannot come from an API server; the first one wins.
function named(items: readonly unknown[], namespace: string): { meta: RawMeta; raw: unknown }[] {
  const seen = new Set<string>();
  const out: { meta: RawMeta; raw: unknown }[] = [];
  for (const raw of items) {
    const meta = rawMeta(raw);
    if (meta === undefined || seen.has(meta.name)) continue;
    if (meta.namespace !== undefined && meta.namespace !== namespace) continue;
    seen.add(meta.name);
    out.push({ meta, raw });
  }
  return out.sort((a, b) => byString(a.meta.name, b.meta.name));
}

function secretState(credential: Credential, secrets: readonly SecretInfo[]): SecretState {
  const { name, key } = credential.spec.secretRef;
  const secret = secrets.find((s) => s.name === name);
  if (secret === undefined) return "SecretMissing";
  return secret.keys.includes(key) ? "SecretFound" : "KeyMissing";
}

/** Validates every Credential of the namespace and looks up its Secret and key. Sorted by name. */
export function analyseCredentials(
  items: readonly unknown[],
  secrets: readonly SecretInfo[],
  namespace: string,
): CredentialEntry[] {
  return named(items, namespace).map(({ meta, raw }) => {
    const result = validateCredential(raw, namespace);
    if (!result.ok) return { meta, raw, credential: undefined, specErrors: result.errors, secret: undefined };
    return {
      meta,
      raw,
      credential: result.value,
      specErrors: [],
      secret: secretState(result.value, secrets),
    };
  });
}

function selectorOf(raw: unknown): LabelSelector | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const spec = (raw as { spec?: unknown }).spec;
  if (typeof spec !== "object" || spec === null) return undefined;
  const value = (spec as { podSelector?: unknown }).podSelector;
  if (value === undefined) return undefined;
  return validateLabelSelector(value, "spec.podSelector", () => undefined);
}

// Resolves one valid policy's Credential references by compiling it alone. Invalid Credentials
// it names are passed too, so compile does not call them "not found"; only errors located in this
// policy are kept (the Credential's own errors belong to its status).
function resolve(
  policy: EgressPolicy,
  raw: unknown,
  credentials: readonly CredentialEntry[],
  namespace: string,
): { compileErrors: FieldError[]; conflicts: Conflict[] } {
  const invalid = new Set(credentials.filter((c) => c.credential === undefined).map((c) => c.meta.name));
  const referenced = new Set(policy.spec.egress.flatMap((rule) => rule.credential ?? []));
  const object = { kind: "EgressPolicy" as const, namespace, name: policy.metadata.name };
  const own: FieldError[] = [];
  policy.spec.egress.forEach((rule, i) => {
    if (rule.credential === undefined || !invalid.has(rule.credential)) return;
    own.push({
      object,
      path: `spec.egress[${i}].credential`,
      message: `Credential ${rule.credential} is invalid (see its status); fix it or remove the reference`,
    });
  });
  const result = compile({
    policies: [raw],
    credentials: credentials
      .filter((c) => c.credential !== undefined || referenced.has(c.meta.name))
      .map((c) => c.raw),
    defaultNamespace: namespace,
  });
  if (result.ok) return { compileErrors: own, conflicts: result.value.conflicts };
  const located = result.errors.filter(
    (e) => e.object?.kind === "EgressPolicy" && e.object.name === policy.metadata.name,
  );
  return { compileErrors: [...own, ...located], conflicts: [] };
}

/** Validates every EgressPolicy of the namespace and resolves its references. Sorted by name. */
export function analysePolicies(
  items: readonly unknown[],
  credentials: readonly CredentialEntry[],
  namespace: string,
): PolicyEntry[] {
  return named(items, namespace).map(({ meta, raw }) => {
    const selector = selectorOf(raw);
    const result = validatePolicy(raw, namespace);
    if (!result.ok) {
      return {
        meta,
        raw,
        policy: undefined,
        selector,
        specErrors: result.errors,
        compileErrors: [],
        conflicts: [],
      };
    }
    return {
      meta,
      raw,
      policy: result.value,
      selector,
      specErrors: [],
      ...resolve(result.value, raw, credentials, namespace),
    };
  });
}

/** The raw objects of the valid Credentials: what every identity's compile receives. */
export function validCredentialObjects(credentials: readonly CredentialEntry[]): unknown[] {
  return credentials.filter((c) => c.credential !== undefined).map((c) => c.raw);
}
