// Least-privilege RBAC for the sidecars: the sidecar reads Secrets with its pod's ServiceAccount
// token, so each ServiceAccount running injected pods gets a Role allowing get/watch on exactly
// the Secrets its pods' bundles name. Never `list` (it returns values), and never a Role with empty
// resourceNames (that would grant every Secret): the type below cannot even hold one.

import { sha256Hex, type CompiledPolicy } from "../../sidecar/policy/index.ts";
import type { PodPlan } from "./pods.ts";
import { byString, type Grant, type PodInfo } from "./snapshot.ts";

/** Standard label on everything the operator creates. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "airlock";
/** Ownership label of the sidecar-secrets Roles and RoleBindings: list by it, delete what is not desired. */
export const RBAC_LABEL = "airlock.dev/rbac";
export const RBAC_SIDECAR_SECRETS = "sidecar-secrets";
/** The full ServiceAccount name (names can outgrow a label value; annotations cannot). */
export const SERVICE_ACCOUNT_ANNOTATION = "airlock.dev/service-account";
export const SECRETS_ROLE_PREFIX = "airlock-secrets-";

const RBAC_API = "rbac.authorization.k8s.io";
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NAME = 253;
const SUFFIX_LENGTH = 10;

/** Metadata of a managed RBAC object. */
export interface ManagedMeta {
  name: string;
  namespace: string;
  labels: { [MANAGED_BY_LABEL]: typeof MANAGED_BY; [RBAC_LABEL]: typeof RBAC_SIDECAR_SECRETS };
  annotations: { [SERVICE_ACCOUNT_ANNOTATION]: string };
}

/** A Role granting get/watch on named Secrets; `resourceNames` is non-empty by type. */
export interface SecretsRole {
  apiVersion: "rbac.authorization.k8s.io/v1";
  kind: "Role";
  metadata: ManagedMeta;
  rules: [
    {
      apiGroups: [""];
      resources: ["secrets"];
      verbs: ["get", "watch"];
      resourceNames: [string, ...string[]];
    },
  ];
}

/** Binds a SecretsRole of the same name to one ServiceAccount. */
export interface SecretsRoleBinding {
  apiVersion: "rbac.authorization.k8s.io/v1";
  kind: "RoleBinding";
  metadata: ManagedMeta;
  roleRef: { apiGroup: "rbac.authorization.k8s.io"; kind: "Role"; name: string };
  subjects: [{ kind: "ServiceAccount"; name: string; namespace: string }];
}

/**
 * `airlock-secrets-<sa>` when that is a valid DNS subdomain of at most 253 characters; otherwise
 * a sanitised, truncated form ending in `-` and 10 hex digits of the name's SHA-256 (no collisions
 * between long names sharing a prefix).
 */
export function secretsRoleName(serviceAccount: string): string {
  const plain = SECRETS_ROLE_PREFIX + serviceAccount;
  if (plain.length <= MAX_NAME && DNS_SUBDOMAIN.test(plain)) return plain;
  const suffix = sha256Hex(serviceAccount).slice(0, SUFFIX_LENGTH);
  const room = MAX_NAME - SECRETS_ROLE_PREFIX.length - SUFFIX_LENGTH - 1;
  const body = serviceAccount
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, "-")
    .slice(0, room)
    .split(".")
    .map((label) => label.replace(/^-+|-+$/g, ""))
    .filter((label) => label !== "")
    .join(".");
  return `${SECRETS_ROLE_PREFIX}${body === "" ? "" : `${body}-`}${suffix}`;
}

function metaFor(serviceAccount: string, namespace: string): ManagedMeta {
  return {
    name: secretsRoleName(serviceAccount),
    namespace,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [RBAC_LABEL]: RBAC_SIDECAR_SECRETS },
    annotations: { [SERVICE_ACCOUNT_ANNOTATION]: serviceAccount },
  };
}

// Which pods' sidecars may be running and reading Secrets: injected and not finished. Deleting
// pods count, so a terminating sidecar keeps its Secrets through its grace period.
function needsSecrets(pod: PodInfo): boolean {
  return pod.injected && pod.phase !== "Succeeded" && pod.phase !== "Failed";
}

/**
 * The Roles and RoleBindings to exist, one pair per ServiceAccount that runs an injected pod and
 * needs at least one Secret: the Secrets of its pods' bundles, plus what its Role grants now
 * (`grants`) until every one of its pods reports its bundle (make before break: a sidecar on an
 * older or held bundle keeps reading what that bundle names). Sorted by name.
 */
export function desiredRbac(input: {
  namespace: string;
  pods: readonly PodInfo[];
  plans: readonly PodPlan[];
  bundles: ReadonlyMap<string, CompiledPolicy>;
  grants: readonly Grant[];
}): { roles: SecretsRole[]; roleBindings: SecretsRoleBinding[] } {
  const plans = new Map(input.plans.map((p) => [p.uid, p]));
  const needed = new Map<string, Set<string>>();
  const converged = new Map<string, boolean>();
  for (const pod of input.pods) {
    const plan = plans.get(pod.uid);
    if (plan === undefined || !needsSecrets(pod)) continue;
    const sa = plan.serviceAccount;
    const secrets = needed.get(sa) ?? new Set<string>();
    needed.set(sa, secrets);
    const bundle = plan.hash === null ? undefined : input.bundles.get(plan.hash);
    for (const credential of Object.values(bundle?.credentials ?? {})) secrets.add(credential.secretRef.name);
    // A hook's token: only a policy of this namespace can name it (the bundle is per namespace).
    for (const rule of bundle?.rules ?? [])
      if (rule.hook?.tokenSecretRef !== undefined) secrets.add(rule.hook.tokenSecretRef.name);
    converged.set(sa, (converged.get(sa) ?? true) && plan.hash !== null && plan.reported === plan.hash);
  }
  for (const grant of input.grants) {
    if (converged.get(grant.serviceAccount) !== false) continue;
    for (const name of grant.secrets) needed.get(grant.serviceAccount)?.add(name);
  }

  const roles: SecretsRole[] = [];
  const roleBindings: SecretsRoleBinding[] = [];
  for (const [sa, set] of [...needed].sort(([a], [b]) => byString(a, b))) {
    const [first, ...rest] = [...set].sort(byString);
    if (first === undefined) continue; // no Secret: no Role at all, never an empty resourceNames
    const metadata = metaFor(sa, input.namespace);
    roles.push({
      apiVersion: `${RBAC_API}/v1`,
      kind: "Role",
      metadata,
      rules: [
        { apiGroups: [""], resources: ["secrets"], verbs: ["get", "watch"], resourceNames: [first, ...rest] },
      ],
    });
    roleBindings.push({
      apiVersion: `${RBAC_API}/v1`,
      kind: "RoleBinding",
      metadata: metaFor(sa, input.namespace),
      roleRef: { apiGroup: RBAC_API, kind: "Role", name: metadata.name },
      subjects: [{ kind: "ServiceAccount", name: sa, namespace: input.namespace }],
    });
  }
  roles.sort((a, b) => byString(a.metadata.name, b.metadata.name));
  roleBindings.sort((a, b) => byString(a.metadata.name, b.metadata.name));
  return { roles, roleBindings };
}

/**
 * What the managed Roles grant now, per ServiceAccount, read from Role objects as the API returns
 * them; objects without the ownership label or annotation are ignored. Sorted.
 */
export function grantsFromRoles(roles: readonly unknown[]): Grant[] {
  const grants = new Map<string, Set<string>>();
  for (const role of roles) {
    if (typeof role !== "object" || role === null) continue;
    const { metadata, rules } = role as { metadata?: Partial<ManagedMeta>; rules?: unknown };
    if (metadata?.labels?.[RBAC_LABEL] !== RBAC_SIDECAR_SECRETS) continue;
    const sa = metadata.annotations?.[SERVICE_ACCOUNT_ANNOTATION];
    if (typeof sa !== "string" || sa === "" || !Array.isArray(rules)) continue;
    const set = grants.get(sa) ?? new Set<string>();
    grants.set(sa, set);
    for (const rule of rules as unknown[]) {
      const names = (rule as { resourceNames?: unknown } | null)?.resourceNames;
      if (!Array.isArray(names)) continue;
      for (const name of names) if (typeof name === "string" && name !== "") set.add(name);
    }
  }
  return [...grants]
    .sort(([a], [b]) => byString(a, b))
    .map(([serviceAccount, set]) => ({ serviceAccount, secrets: [...set].sort(byString) }));
}
