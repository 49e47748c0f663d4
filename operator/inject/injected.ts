// What the injector adds to a pod: the init container, the native sidecar, their volumes, and the
// status annotation. Builders of plain JSON only; `inject.ts` decides where each piece goes.
// Fields the API server would default are written out so a stored pod equals what we built.
import { PORTS, SIDECAR_GID, SIDECAR_UID, TOKEN_DIR, TRUST_BUNDLE_PATH } from "../../sidecar/constants.ts";
import { INJECTED, type InjectionConfig } from "./types.ts";
import type { JsonObject } from "./json.ts";

/** Version of the injected layout recorded in the status annotation; bumped when its shape changes. */
export const INJECTION_VERSION = 1;

/** The folder holding the agent's trust bundle: the trust volume is mounted here. */
export const TRUST_DIR = TRUST_BUNDLE_PATH.slice(0, TRUST_BUNDLE_PATH.lastIndexOf("/"));

export { TOKEN_DIR };

/** The environment variables every agent container gets, all pointing at the trust bundle. */
export const TRUST_ENV = [
  "SSL_CERT_FILE",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
  "GIT_SSL_CAINFO",
  "NODE_EXTRA_CA_CERTS",
] as const;

/** The env var carrying the bundle public key(s) to the sidecar (public data: env is fine). */
export const BUNDLE_KEYS_ENV = "AIRLOCK_BUNDLE_KEYS";
/**
 * V8 heap bounds for the sidecar: under load V8 grows its heap far past what is live (57 MB live,
 * 300–400 MiB resident without them; 161–166 MiB with them, same throughput; docs/benchmarks.md),
 * which would cross the sidecar's default 256Mi memory limit.
 */
export const SIDECAR_NODE_OPTIONS = "--max-semi-space-size=4 --max-old-space-size=128";
/**
 * glibc malloc settings for the sidecar. About half of its resident memory under load is outside
 * V8's heap (OpenSSL's and Node's own allocations), and glibc keeps what was freed: one arena per
 * thread that allocated, and a trim/mmap threshold that rises after every large free. Two arenas
 * and fixed 128 KiB thresholds: largest RSS over the benchmark's arms 129 → 115 MiB, CPU per
 * request unchanged within the machine's noise (docs/benchmarks.md).
 */
export const SIDECAR_MALLOC_ENV: readonly { name: string; value: string }[] = [
  { name: "MALLOC_ARENA_MAX", value: "2" },
  { name: "MALLOC_TRIM_THRESHOLD_", value: "131072" },
  { name: "MALLOC_MMAP_THRESHOLD_", value: "131072" },
];

/** The env var carrying the extra upstream roots to the sidecar, when configured. */
export const UPSTREAM_CA_ENV = "AIRLOCK_UPSTREAM_CA";

/** The names of the containers and volumes the injector owns. */
export const AIRLOCK_CONTAINERS: readonly string[] = [INJECTED.initContainer, INJECTED.sidecar];
export const AIRLOCK_VOLUMES: readonly string[] = [
  INJECTED.trustVolume,
  INJECTED.tokenVolume,
  INJECTED.tmpVolume,
];

const DEFAULT_RESOURCES = { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "256Mi" } };
const INIT_RESOURCES = { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } };

const TERMINATION = { terminationMessagePath: "/dev/termination-log", terminationMessagePolicy: "File" };

/** The init container: installs the capture rules as root with NET_ADMIN + NET_RAW, then exits. */
export function initContainer(config: InjectionConfig): JsonObject {
  return {
    name: INJECTED.initContainer,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy ?? "IfNotPresent",
    args: ["init", "--sidecar-uid", String(SIDECAR_UID)],
    resources: INIT_RESOURCES,
    securityContext: {
      // iptables-restore needs root in the pod's network namespace; nothing else is granted.
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    // iptables takes its lock in /run/xtables.lock; the root filesystem stays read-only.
    volumeMounts: [{ name: INJECTED.tmpVolume, mountPath: "/run" }],
    ...TERMINATION,
  };
}

/** The native sidecar: an init container with restartPolicy Always, started before the agent. */
export function sidecarContainer(config: InjectionConfig): JsonObject {
  const args = ["sidecar", "--bundle-key-env", BUNDLE_KEYS_ENV, "--trust-bundle", TRUST_BUNDLE_PATH];
  if (config.upstreamCa !== undefined) args.push("--upstream-ca-env", UPSTREAM_CA_ENV);
  for (const cidr of config.allowAddresses ?? []) args.push("--allow-address", cidr);
  return {
    name: INJECTED.sidecar,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy ?? "IfNotPresent",
    args,
    restartPolicy: "Always",
    ports: [
      { name: "airlock-metrics", containerPort: PORTS.metrics, protocol: "TCP" },
      { name: "airlock-control", containerPort: PORTS.control, protocol: "TCP" },
    ],
    env: sidecarEnv(config),
    resources: config.resources ?? DEFAULT_RESOURCES,
    // Agent containers start only once the first bundle is applied: /readyz is 503 until then.
    // Generous: the operator may be starting too; the agent waits rather than runs unprotected.
    startupProbe: httpProbe("/readyz", { periodSeconds: 1, failureThreshold: 600 }),
    readinessProbe: httpProbe("/readyz", { periodSeconds: 5, failureThreshold: 3 }),
    livenessProbe: httpProbe("/healthz", { periodSeconds: 10, failureThreshold: 3 }),
    securityContext: {
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_GID,
      runAsNonRoot: true,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [
      { name: INJECTED.trustVolume, mountPath: TRUST_DIR },
      { name: INJECTED.tokenVolume, mountPath: TOKEN_DIR, readOnly: true },
      { name: INJECTED.tmpVolume, mountPath: "/tmp" },
    ],
    ...TERMINATION,
  };
}

function sidecarEnv(config: InjectionConfig): JsonObject[] {
  const field = (fieldPath: string): JsonObject => ({
    valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } },
  });
  const env: JsonObject[] = [
    { name: "POD_NAME", ...field("metadata.name") },
    { name: "POD_NAMESPACE", ...field("metadata.namespace") },
    { name: "SERVICE_ACCOUNT", ...field("spec.serviceAccountName") },
    { name: BUNDLE_KEYS_ENV, value: config.bundlePublicKeys },
    { name: "NODE_OPTIONS", value: SIDECAR_NODE_OPTIONS },
    ...SIDECAR_MALLOC_ENV.map((variable) => ({ ...variable })),
  ];
  if (config.upstreamCa !== undefined) env.push({ name: UPSTREAM_CA_ENV, value: config.upstreamCa });
  return env;
}

function httpProbe(path: string, timing: { periodSeconds: number; failureThreshold: number }): JsonObject {
  return {
    httpGet: { path, port: PORTS.metrics, scheme: "HTTP" },
    ...timing,
    timeoutSeconds: 1,
    successThreshold: 1,
  };
}

/** The volumes: trust bundle (memory), the sidecar's projected token, scratch space. */
export function airlockVolumes(config: InjectionConfig): JsonObject[] {
  const token: JsonObject = { expirationSeconds: 3600, path: "token" };
  if (config.tokenAudience !== undefined) token["audience"] = config.tokenAudience;
  return [
    { name: INJECTED.trustVolume, emptyDir: { medium: "Memory" } },
    {
      name: INJECTED.tokenVolume,
      // The same three sources as the API server's default kube-api-access volume, so the
      // sidecar's in-cluster config works unchanged.
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: token },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          {
            downwardAPI: {
              items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
            },
          },
        ],
      },
    },
    { name: INJECTED.tmpVolume, emptyDir: {} },
  ];
}

/** The `airlock.dev/status` annotation value: what was injected, as JSON. */
export function statusAnnotation(config: InjectionConfig): string {
  return JSON.stringify({
    version: INJECTION_VERSION,
    image: config.image,
    initContainers: AIRLOCK_CONTAINERS,
    volumes: AIRLOCK_VOLUMES,
  });
}
