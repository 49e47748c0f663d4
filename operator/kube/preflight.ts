// Start-up checks: before campaigning for the Lease (and again periodically) the operator asks the
// API server whether what it needs is there — its namespace, the CRDs, and its RBAC (one
// SelfSubjectAccessReview per verb it uses, so the answer names exactly what is missing) — and
// turns every gap into a Problem whose message says what to do.
import {
  ApiException,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  V1ResourceAttributes,
  V1SelfSubjectAccessReview,
  V1SelfSubjectAccessReviewSpec,
  V1SelfSubjectReview,
  type KubeConfig,
} from "@kubernetes/client-node";
import type { Problem } from "./preflight-health.ts";

/** Names of what the operator keeps in its own namespace. */
export const SIGNING_KEY_SECRET = "airlock-signing-key";
export const WEBHOOK_TLS_SECRET = "airlock-webhook-tls";
export const MUTATING_WEBHOOK = "airlock-injector";
export const VALIDATING_WEBHOOK = "airlock-validator";

/** Which optional duties this replica has, hence which permissions it needs. */
export interface PreflightNeeds {
  /** The signing key comes from Secret `airlock-signing-key` (no --signing-key). */
  signingSecret: boolean;
  /** The webhook is served, so its certificate lives in Secret `airlock-webhook-tls`. */
  webhookTls: boolean;
  /** What it creates is owned by ClusterRole airlock-operator (--owned-by-clusterrole). */
  owner: boolean;
}

/** One permission: `verbs` on `resource` cluster-wide or in the operator's namespace, maybe by name. */
export interface Access {
  group: string;
  resource: string;
  subresource?: string;
  verbs: string[];
  scope: "cluster" | "namespace";
  names?: string[];
  /** Needed only with this duty. */
  when?: keyof PreflightNeeds;
}

const CRD_GROUP = "airlock.dev";
/** The operator's ClusterRole (operator/rbac/clusterrole.yaml, the chart). */
export const OPERATOR_CLUSTER_ROLE = "airlock-operator";
const WEBHOOK_NAMES = [MUTATING_WEBHOOK, VALIDATING_WEBHOOK];

/**
 * Every permission the operator uses: the ClusterRole `airlock-operator` (scope "cluster") and the
 * ClusterRole `airlock-operator-namespace` bound in its own namespace (scope "namespace"), exactly
 * as in operator/rbac/clusterrole.yaml (a test keeps the two in step).
 */
export const REQUIRED_ACCESS: readonly Access[] = [
  { group: CRD_GROUP, resource: "egresspolicies", verbs: ["get", "list", "watch"], scope: "cluster" },
  { group: CRD_GROUP, resource: "credentials", verbs: ["get", "list", "watch"], scope: "cluster" },
  { group: CRD_GROUP, resource: "egresspolicies", subresource: "status", verbs: ["patch"], scope: "cluster" },
  { group: CRD_GROUP, resource: "credentials", subresource: "status", verbs: ["patch"], scope: "cluster" },
  { group: "", resource: "pods", verbs: ["list", "watch"], scope: "cluster" },
  { group: "", resource: "secrets", verbs: ["get", "watch"], scope: "cluster" },
  { group: "", resource: "namespaces", verbs: ["get"], scope: "cluster" },
  ...["roles", "rolebindings"].map((resource): Access => ({
    group: "rbac.authorization.k8s.io",
    resource,
    verbs: ["get", "list", "watch", "create", "update", "delete"],
    scope: "cluster",
  })),
  { group: "coordination.k8s.io", resource: "leases", verbs: ["get", "create", "update"], scope: "cluster" },
  ...["mutatingwebhookconfigurations", "validatingwebhookconfigurations"].flatMap((resource): Access[] => [
    {
      group: "admissionregistration.k8s.io",
      resource,
      verbs: ["create"],
      scope: "cluster",
      when: "webhookTls",
    },
    {
      group: "admissionregistration.k8s.io",
      resource,
      verbs: ["get", "patch"],
      scope: "cluster",
      names: WEBHOOK_NAMES,
      when: "webhookTls",
    },
  ]),
  {
    group: "rbac.authorization.k8s.io",
    resource: "clusterroles",
    verbs: ["get"],
    scope: "cluster",
    names: [OPERATOR_CLUSTER_ROLE],
    when: "owner",
  },
  { group: "", resource: "secrets", verbs: ["create"], scope: "namespace" },
  {
    group: "",
    resource: "secrets",
    verbs: ["update"],
    scope: "namespace",
    names: [SIGNING_KEY_SECRET, WEBHOOK_TLS_SECRET],
  },
];

function status(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

function describe(a: Access, verb: string, namespace: string, name?: string): string {
  const what = `${a.resource}${a.subresource === undefined ? "" : `/${a.subresource}`}${a.group === "" ? "" : `.${a.group}`}`;
  const where = a.scope === "cluster" ? "(all namespaces)" : `in ${namespace}`;
  return `${verb} ${what}${name === undefined ? "" : ` ${name}`} ${where}`;
}

/** The `--serviceaccount=NS:NAME` or `--user=NAME` of a binding for whoever the operator is. */
async function subjectFlag(config: KubeConfig): Promise<string> {
  try {
    const review = await config.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
      body: Object.assign(new V1SelfSubjectReview(), {
        apiVersion: "authentication.k8s.io/v1",
        kind: "SelfSubjectReview",
      }),
    });
    const user = review.status?.userInfo?.username ?? "";
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
    if (sa) return `--serviceaccount=${sa[1] ?? ""}:${sa[2] ?? ""}`;
    if (user !== "") return `--user=${user}`;
  } catch {
    // Older API servers: fall through to a placeholder.
  }
  return "--serviceaccount=NAMESPACE:SERVICEACCOUNT";
}

/** The permissions of `needed` this identity lacks, as descriptions, by scope. */
async function missingAccess(
  config: KubeConfig,
  namespace: string,
  needed: readonly Access[],
): Promise<{ cluster: string[]; namespace: string[]; clusterBlocking: boolean }> {
  const authz = config.makeApiClient(AuthorizationV1Api);
  const checks = needed.flatMap((a) =>
    a.verbs.flatMap((verb) => (a.names ?? [undefined]).map((name) => ({ a, verb, name }))),
  );
  const answers = await Promise.all(
    checks.map(async ({ a, verb, name }) => {
      const attributes = Object.assign(new V1ResourceAttributes(), {
        group: a.group,
        resource: a.resource,
        verb,
      });
      if (a.subresource !== undefined) attributes.subresource = a.subresource;
      if (a.scope === "namespace") attributes.namespace = namespace;
      if (name !== undefined) attributes.name = name;
      const spec = Object.assign(new V1SelfSubjectAccessReviewSpec(), { resourceAttributes: attributes });
      const body = Object.assign(new V1SelfSubjectAccessReview(), {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        spec,
      });
      const review = await authz.createSelfSubjectAccessReview({ body });
      return review.status?.allowed === true
        ? undefined
        : { scope: a.scope, text: describe(a, verb, namespace, name), optional: a.when === "webhookTls" };
    }),
  );
  const missing = answers.filter((x) => x !== undefined);
  return {
    cluster: missing.filter((m) => m.scope === "cluster").map((m) => m.text),
    namespace: missing.filter((m) => m.scope === "namespace").map((m) => m.text),
    // Only the webhook's own permissions are optional: without the rest nothing can be reconciled.
    clusterBlocking: missing.some((m) => m.scope === "cluster" && !m.optional),
  };
}

/** Problems with the CRDs: each one the API server does not serve. */
async function crdProblems(config: KubeConfig): Promise<Problem[]> {
  const custom = config.makeApiClient(CustomObjectsApi);
  const problems: Problem[] = [];
  for (const plural of ["egresspolicies", "credentials"]) {
    try {
      await custom.listClusterCustomObject({ group: CRD_GROUP, version: "v1alpha1", plural, limit: 1 });
    } catch (err) {
      if (status(err) === 404)
        problems.push({
          key: `crd/${plural}`,
          message: `the CustomResourceDefinition ${plural}.${CRD_GROUP} is not installed: kubectl apply -f crds/`,
          blocking: true,
        });
      else if (status(err) !== 403) throw err; // 403 is reported as RBAC
    }
  }
  return problems;
}

/**
 * Checks everything the operator needs from the API server and returns what is wrong, each with
 * what to do. An API server that cannot be reached is one blocking problem (`api`).
 */
export async function preflight(
  config: KubeConfig,
  namespace: string,
  needs: PreflightNeeds,
): Promise<Problem[]> {
  try {
    const problems: Problem[] = [];
    let namespaceExists = true;
    try {
      await config.makeApiClient(CoreV1Api).readNamespace({ name: namespace });
    } catch (err) {
      if (status(err) === 404) {
        namespaceExists = false;
        problems.push({
          key: "namespace",
          message:
            `namespace ${namespace} does not exist (the operator keeps its Lease and Secrets there): ` +
            `kubectl create namespace ${namespace}, or pass --lease-namespace`,
          blocking: true,
        });
      } else if (status(err) !== 403) throw err;
    }
    problems.push(...(await crdProblems(config)));
    const needed = REQUIRED_ACCESS.filter(
      (a) => (a.when === undefined || needs[a.when]) && (a.scope === "cluster" || namespaceExists),
    );
    const missing = await missingAccess(config, namespace, needed);
    if (missing.cluster.length > 0 || missing.namespace.length > 0) {
      const subject = await subjectFlag(config);
      if (missing.cluster.length > 0)
        problems.push({
          key: "rbac/cluster",
          message:
            `missing RBAC: cannot ${missing.cluster.join(", ")}: kubectl apply -f operator/rbac/clusterrole.yaml && ` +
            `kubectl create clusterrolebinding airlock-operator --clusterrole=airlock-operator ${subject}`,
          blocking: missing.clusterBlocking,
        });
      if (missing.namespace.length > 0 && (needs.signingSecret || needs.webhookTls))
        problems.push({
          key: "rbac/namespace",
          message:
            `missing RBAC: cannot ${missing.namespace.join(", ")}: kubectl apply -f operator/rbac/clusterrole.yaml && ` +
            `kubectl -n ${namespace} create rolebinding airlock-operator --clusterrole=airlock-operator-namespace ${subject}`,
          blocking: needs.signingSecret,
        });
    }
    return problems;
  } catch (err) {
    return [
      { key: "api", message: `cannot check the API server: ${(err as Error).message}`, blocking: true },
    ];
  }
}
