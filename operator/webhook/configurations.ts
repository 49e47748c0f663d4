// The MutatingWebhookConfiguration and ValidatingWebhookConfiguration that route admission to the
// webhook server, as plain objects (pure: the caller applies them). Every webhook fails closed,
// and none ever matches the operator's own namespace: the operator's pods must be creatable while
// the webhook that they serve is down, or a restart of the only replica would deadlock.
import { API_GROUP, API_VERSION, INJECT_LABEL } from "../../sidecar/constants.ts";

/** Names of the two configurations (cluster-scoped objects). */
export const WEBHOOK_CONFIGURATION_NAMES = {
  mutating: "airlock-injector",
  validating: "airlock-validator",
} as const;

/** The value of INJECT_LABEL on a namespace that opts in. */
export const INJECT_ENABLED = "enabled";

/** Paths the server serves (server.ts) and the configurations point at. */
export const WEBHOOK_PATHS = { inject: "/inject", validate: "/validate" } as const;

/** How the API server reaches the webhook: a URL (outside a cluster, tests), or a Service. */
export type WebhookConfigurationOptions = {
  /** PEM of the CA that signed the serving certificate; the builder base64-encodes it. */
  caBundle: string;
} & (
  | {
      /** `https://HOST:PORT` without a path; `/inject` and `/validate` are appended. */
      url: string;
      /** The operator's namespace, which no webhook may match. */
      operatorNamespace: string;
    }
  | {
      service: { namespace: string; name: string; port?: number };
      /** Default: the Service's namespace. */
      operatorNamespace?: string;
    }
);

type Json = Record<string, unknown>;

function clientConfig(options: WebhookConfigurationOptions, path: string): Json {
  const caBundle = Buffer.from(options.caBundle).toString("base64");
  if ("url" in options) return { url: `${options.url.replace(/\/+$/, "")}${path}`, caBundle };
  const { namespace, name, port } = options.service;
  return { service: { namespace, name, path, ...(port === undefined ? {} : { port }) }, caBundle };
}

function namespaceSelector(operatorNamespace: string, enabledOnly: boolean): Json {
  return {
    matchExpressions: [
      ...(enabledOnly ? [{ key: INJECT_LABEL, operator: "In", values: [INJECT_ENABLED] }] : []),
      { key: "kubernetes.io/metadata.name", operator: "NotIn", values: [operatorNamespace] },
    ],
  };
}

const COMMON = {
  admissionReviewVersions: ["v1"],
  sideEffects: "None",
  failurePolicy: "Fail",
  matchPolicy: "Equivalent",
  timeoutSeconds: 10,
} as const;

/** What one webhook of a configuration is called for: resources of one API group and version. */
interface WebhookTarget {
  apiGroup: string;
  apiVersion: string;
  resources: string[];
  operations: string[];
}

/**
 * One webhook: `name`, called at `path` for `target` (namespaced), in the namespaces
 * namespaceSelector(operatorNamespace, enabledOnly) picks; `extra` fields before the COMMON ones.
 */
function webhook(
  options: WebhookConfigurationOptions,
  operatorNamespace: string,
  spec: { name: string; path: string; target: WebhookTarget; enabledOnly: boolean },
  extra: Json = {},
): Json {
  const { apiGroup, apiVersion, resources, operations } = spec.target;
  return {
    name: spec.name,
    clientConfig: clientConfig(options, spec.path),
    rules: [{ apiGroups: [apiGroup], apiVersions: [apiVersion], resources, operations, scope: "Namespaced" }],
    namespaceSelector: namespaceSelector(operatorNamespace, spec.enabledOnly),
    ...extra,
    ...COMMON,
  };
}

/**
 * `airlock-injector` (Pod CREATE in namespaces labelled `airlock.dev/inject=enabled`, path /inject)
 * and `airlock-validator` (EgressPolicy/Credential CREATE/UPDATE in every namespace; Pod UPDATE and
 * `pods/ephemeralcontainers` UPDATE in enabled namespaces; path /validate). All fail closed.
 */
export function webhookConfigurations(options: WebhookConfigurationOptions): {
  mutating: Json;
  validating: Json;
} {
  const operatorNamespace =
    options.operatorNamespace ?? ("service" in options ? options.service.namespace : "");
  const labels = { "app.kubernetes.io/name": "airlock", "app.kubernetes.io/component": "webhook" };
  const core = (resources: string[], operations: string[]): WebhookTarget => ({
    apiGroup: "",
    apiVersion: "v1",
    resources,
    operations,
  });
  const mutating = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: WEBHOOK_CONFIGURATION_NAMES.mutating, labels },
    webhooks: [
      webhook(
        options,
        operatorNamespace,
        {
          name: "inject.airlock.dev",
          path: WEBHOOK_PATHS.inject,
          target: core(["pods"], ["CREATE"]),
          enabledOnly: true,
        },
        // Another mutating webhook may add a container after this one: the injector runs again.
        { reinvocationPolicy: "IfNeeded" },
      ),
    ],
  };
  const validating = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: WEBHOOK_CONFIGURATION_NAMES.validating, labels },
    webhooks: [
      webhook(options, operatorNamespace, {
        name: "policies.airlock.dev",
        path: WEBHOOK_PATHS.validate,
        target: {
          apiGroup: API_GROUP,
          apiVersion: API_VERSION,
          resources: ["egresspolicies", "credentials"],
          operations: ["CREATE", "UPDATE"],
        },
        enabledOnly: false,
      }),
      webhook(options, operatorNamespace, {
        name: "pods.airlock.dev",
        path: WEBHOOK_PATHS.validate,
        target: core(["pods", "pods/ephemeralcontainers"], ["UPDATE"]),
        enabledOnly: true,
      }),
    ],
  };
  return { mutating, validating };
}
