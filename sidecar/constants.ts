// Every name and number that several components share lives here (DESIGN.md §2, §3).
// The operator imports these; changing one is an API change.

/** API group and version of the custom resources. */
export const API_GROUP = "airlock.dev";
export const API_VERSION = "v1alpha1";
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** Label or annotation (pod or namespace) asking for injection, and the one the webhook records. */
export const INJECT_LABEL = "airlock.dev/inject";
export const STATUS_ANNOTATION = "airlock.dev/status";
/**
 * Pod annotation asking for Credentials' placeholders as environment variables of the agent's
 * containers: "ENV_NAME=credential-name,…" (the pod's namespace).
 */
export const PLACEHOLDERS_ANNOTATION = "airlock.dev/placeholders";

/** Sidecar ports; every one is configurable by flag. */
export const PORTS = {
  transparent: 15001,
  dns: 15053,
  explicit: 15080,
  metrics: 15090,
  control: 15443,
} as const;

/** Where Kubernetes mounts a pod's service-account token and CA; only the sidecar mounts it. */
export const TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The sidecar's UID and GID; the capture rules exempt exactly this UID. */
export const SIDECAR_UID = 15000;
export const SIDECAR_GID = 15000;

/** Where the agent's trust bundle (system roots + the sidecar's CA) is written in a pod. */
export const TRUST_BUNDLE_PATH = "/etc/airlock/trust/ca-bundle.pem";

/** Response header naming the outcome on every answer the sidecar itself writes. */
export const DECISION_HEADER = "x-airlock-decision";

/** Ports a rule applies to when it lists none. */
export const DEFAULT_RULE_PORTS: readonly number[] = [80, 443];
