// The status of every Credential: is it valid, and do its Secret and key exist? Only names are
// compared; the operator never reads a Secret's values.

import { joinMessages, type DesiredCondition, type DesiredStatus } from "./conditions.ts";
import type { CredentialEntry } from "./objects.ts";
import type { ObjectStatus } from "./policy-status.ts";

/** Stable reasons of a Credential's Ready condition. */
export type CredentialReason = "InvalidSpec" | "SecretMissing" | "KeyMissing" | "SecretFound";

/** `.status` of a Credential. */
export type CredentialStatus = DesiredStatus;

/**
 * The Ready condition of a Credential; the first that applies wins:
 *   1. InvalidSpec (False): its own validation errors, as "path: message" joined with "; ".
 *   2. SecretMissing (False): `spec.secretRef.name` names no Secret in the namespace.
 *   3. KeyMissing (False): the Secret exists but has no `spec.secretRef.key`.
 *   4. SecretFound (True).
 */
export function credentialReady(entry: CredentialEntry, namespace: string): DesiredCondition {
  const condition = (
    status: "True" | "False",
    reason: CredentialReason,
    message: string,
  ): DesiredCondition => ({
    type: "Ready",
    status,
    reason,
    message,
    observedGeneration: entry.meta.generation,
  });
  if (entry.credential === undefined || entry.secret === undefined) {
    return condition(
      "False",
      "InvalidSpec",
      joinMessages(entry.specErrors.map((e) => `${e.path}: ${e.message}`)),
    );
  }
  const { name, key } = entry.credential.spec.secretRef;
  switch (entry.secret) {
    case "SecretMissing":
      return condition(
        "False",
        "SecretMissing",
        `Secret ${name} not found in namespace ${namespace}; create it`,
      );
    case "KeyMissing":
      return condition(
        "False",
        "KeyMissing",
        `Secret ${name} has no key "${key}"; add it or fix spec.secretRef.key`,
      );
    case "SecretFound":
      return condition("True", "SecretFound", `Secret ${name} has key "${key}"`);
  }
}

/** The desired `.status` of every Credential (sorted by name, as `credentials` is). */
export function credentialStatuses(
  credentials: readonly CredentialEntry[],
  namespace: string,
): ObjectStatus<CredentialStatus>[] {
  return credentials.map((entry) => {
    const status: CredentialStatus = {
      observedGeneration: entry.meta.generation,
      conditions: [credentialReady(entry, namespace)],
    };
    const { name, uid } = entry.meta;
    return uid === undefined ? { name, status } : { name, uid, status };
  });
}
