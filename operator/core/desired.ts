// desiredState(): one namespace's snapshot → everything the reconciler should make true. Pure and
// deterministic: the reconciler reads, calls this, and writes only the differences.

import type { CompiledPolicy } from "../../sidecar/policy/index.ts";
import { credentialStatuses, type CredentialStatus } from "./credential-status.ts";
import { analyseCredentials, analysePolicies } from "./objects.ts";
import { policyStatuses, type ObjectStatus, type PolicyStatus } from "./policy-status.ts";
import { planPods, type PodPlan, type PushTarget } from "./pods.ts";
import { desiredRbac, type SecretsRole, type SecretsRoleBinding } from "./rbac.ts";
import { byString, type Snapshot } from "./snapshot.ts";

/** Everything one namespace should look like. Plain JSON data, every list sorted. */
export interface DesiredState {
  namespace: string;
  /** Every pod with its identity, bundle hash and sync state, by name. */
  pods: PodPlan[];
  /** Sidecars that need a bundle, by pod name; skipped where the sidecar already reports the hash. */
  pushes: PushTarget[];
  /** Every distinct bundle of the namespace, by hash (pods with one identity share one). */
  bundles: CompiledPolicy[];
  /** `.status` of every EgressPolicy, by name. */
  policies: ObjectStatus<PolicyStatus>[];
  /** `.status` of every Credential, by name. */
  credentials: ObjectStatus<CredentialStatus>[];
  /** The managed Roles and RoleBindings to exist; delete managed ones not listed. */
  roles: SecretsRole[];
  roleBindings: SecretsRoleBinding[];
}

/**
 * Computes the desired state of one namespace. Each policy and credential is validated on its own;
 * a pod selected by a broken policy gets no new bundle (held at its last good one); every other
 * tracked pod gets the bundle of its identity, the empty identity included (it blocks everything).
 */
export function desiredState(snapshot: Snapshot): DesiredState {
  const { namespace } = snapshot;
  const credentials = analyseCredentials(snapshot.credentials, snapshot.secrets, namespace);
  const policies = analysePolicies(snapshot.policies, credentials, namespace);
  const plan = planPods(snapshot, policies, credentials);
  const { roles, roleBindings } = desiredRbac({
    namespace,
    pods: snapshot.pods,
    plans: plan.pods,
    bundles: plan.bundles,
    grants: snapshot.grants ?? [],
  });
  return {
    namespace,
    pods: plan.pods,
    pushes: plan.pushes,
    bundles: [...plan.bundles.values()].sort((a, b) => byString(a.hash, b.hash)),
    policies: policyStatuses({
      namespace,
      policies,
      credentials,
      pods: snapshot.pods,
      plans: plan.pods,
      bundles: plan.bundles.values(),
      identityErrors: plan.identityErrors,
    }),
    credentials: credentialStatuses(credentials, namespace),
    roles,
    roleBindings,
  };
}
