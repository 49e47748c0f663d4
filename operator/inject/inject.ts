// Injection as a pure function: the webhook and `airlock inject` both call injectPod, so a pod is
// wired the same way whichever path it takes (DESIGN.md §4, STYLE.md habit 9).
import { isDeepStrictEqual } from "node:util";
import { PLACEHOLDERS_ANNOTATION, STATUS_ANNOTATION, TRUST_BUNDLE_PATH } from "../../sidecar/constants.ts";
import { dnsSubdomainProblem, placeholderFor, type FieldError } from "../../sidecar/policy/index.ts";
import {
  AIRLOCK_CONTAINERS,
  AIRLOCK_VOLUMES,
  airlockVolumes,
  initContainer,
  sidecarContainer,
  statusAnnotation,
  TRUST_DIR,
  TRUST_ENV,
} from "./injected.ts";
import {
  ensureList,
  ensureObject,
  fieldPath,
  isObject,
  listOf,
  nameOf,
  objectOr,
  type JsonObject,
} from "./json.ts";
import { capabilityName, refusePod } from "./refusals.ts";
import { withoutApiServerToken } from "./token-volume.ts";
import { INJECTED, type InjectionConfig, type InjectResult, type PodObject } from "./types.ts";

export { checkEphemeralContainers } from "./refusals.ts";
export { checkPodUpdate } from "./update-check.ts";

/**
 * Capabilities added to every agent container's `capabilities.drop`: the network ones would undo
 * the capture; SETUID and SETGID would let a root agent become the sidecar's UID, which the
 * capture rules exempt.
 */
const DROPPED = ["NET_ADMIN", "NET_RAW", "SETUID", "SETGID"] as const;

/**
 * Injects the Airlock boundary into `pod` (a Pod, or a workload's pod template with `at` naming
 * where it sits, e.g. "spec.template", so error paths point into the manifest). Pure and
 * idempotent: injecting the result again returns an equal pod with `changed: false`.
 *
 * 0. The token volume the API server's ServiceAccount admission added is taken out, with its
 *    mounts (token-volume.ts): the pod is treated as if it had opted out.
 * 1. Refusals first, all of them (refusals.ts): UID/GID 15000, escaping capabilities, privileged,
 *    hostNetwork/hostPID/shareProcessNamespace, Airlock volumes mounted by an agent (token and
 *    scratch at all, trust read-write) or the trust folder taken, Airlock names taken by the pod,
 *    a service-account token projected by the pod, ephemeral containers targeting Airlock's.
 *    There is no opt-out annotation: it would be a bypass.
 * 2. A pod carrying the status annotation was injected before: its Airlock containers and volumes
 *    are dropped and built again from `config`, so a changed config re-injects consistently and a
 *    forged annotation buys nothing.
 * 3. initContainers become [airlock-init, airlock-sidecar, ...the pod's own]: capture rules are in
 *    place and the first bundle applied (startupProbe) before any of the pod's own code runs, its
 *    init containers included.
 * 4. Every other init container and container: the trust volume read-only at the trust folder,
 *    the five CA variables pointing at the bundle (replacing values of those names), NET_ADMIN,
 *    NET_RAW, SETUID and SETGID in capabilities.drop, and allowPrivilegeEscalation: false (no
 *    setuid binary can carry a process to the sidecar's UID). Ephemeral containers are only
 *    checked (checkEphemeralContainers).
 * 5. Volumes: the pod's own, then airlock-trust, airlock-token, airlock-tmp;
 *    automountServiceAccountToken: false, so the projected token reaches the sidecar alone;
 *    serviceAccountName "default" when the pod names none (what the API server would set; a
 *    projected token needs it).
 * 6. The status annotation records what was injected.
 *
 * `config` is trusted (validated by the operator flags or the CLI).
 */
export function injectPod(
  original: PodObject,
  config: InjectionConfig,
  at = "",
  namespace?: string,
): InjectResult {
  const pod = withoutApiServerToken(original);
  const annotationsOf = objectOr(objectOr(pod["metadata"])?.["annotations"]);
  const injected = typeof annotationsOf?.[STATUS_ANNOTATION] === "string";
  const errors = refusePod(pod, at, injected);
  const podNamespace = objectOr(pod["metadata"])?.["namespace"];
  const placeholders = placeholderEnv(
    annotationsOf?.[PLACEHOLDERS_ANNOTATION],
    typeof podNamespace === "string" && podNamespace !== "" ? podNamespace : (namespace ?? "default"),
    fieldPath(at, `metadata.annotations[${PLACEHOLDERS_ANNOTATION}]`),
  );
  if (!placeholders.ok) errors.push(placeholders.error);
  if (errors.length > 0 || !placeholders.ok) return { ok: false, errors };
  const out = structuredClone(pod);
  const spec = ensureObject(out, "spec");
  const own = listOf(spec["initContainers"]).filter((c) => !AIRLOCK_CONTAINERS.includes(nameOf(c)));
  // The builders share module constants (resources, probes): copies keep callers from aliasing them.
  const airlock = structuredClone([initContainer(config), sidecarContainer(config)]);
  spec["initContainers"] = [...airlock, ...own];
  for (const container of [...own, ...listOf(spec["containers"])])
    if (isObject(container)) wireAgent(container, placeholders.env);
  const volumes = listOf(spec["volumes"]).filter((v) => !AIRLOCK_VOLUMES.includes(nameOf(v)));
  spec["volumes"] = [...volumes, ...structuredClone(airlockVolumes(config))];
  spec["automountServiceAccountToken"] = false;
  if (typeof spec["serviceAccountName"] !== "string" || spec["serviceAccountName"] === "")
    spec["serviceAccountName"] =
      typeof spec["serviceAccount"] === "string" && spec["serviceAccount"] !== ""
        ? spec["serviceAccount"]
        : "default";
  const annotations = ensureObject(ensureObject(out, "metadata"), "annotations");
  annotations[STATUS_ANNOTATION] = statusAnnotation(config);
  return { ok: true, pod: out, changed: !isDeepStrictEqual(out, original) };
}

/**
 * The environment variables the placeholders annotation asks for ("ENV=credential,…"), each the
 * placeholder of that Credential in `namespace` (derived, not looked up: a Credential without
 * placeholder: true simply never matches it), or the annotation's problem.
 */
function placeholderEnv(
  value: unknown,
  namespace: string,
  path: string,
): { ok: true; env: { name: string; value: string }[] } | { ok: false; error: FieldError } {
  if (value === undefined) return { ok: true, env: [] };
  const fail = (message: string) => ({ ok: false as const, error: { path, message } });
  if (typeof value !== "string") return fail("must be a string such as OPENAI_API_KEY=openai");
  const env: { name: string; value: string }[] = [];
  for (const item of value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const [name = "", credential = "", ...rest] = item.split("=");
    if (rest.length > 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      return fail(`"${item}" is not ENV_NAME=credential-name (an environment variable name, then "=")`);
    const problem = dnsSubdomainProblem(credential);
    if (problem !== undefined) return fail(`"${item}": the Credential name ${problem}`);
    env.push({ name, value: placeholderFor(namespace, credential) });
  }
  return { ok: true, env };
}

// Each step is an upsert, so running it on a wired container changes nothing.
function wireAgent(container: JsonObject, placeholders: { name: string; value: string }[] = []): void {
  const env = ensureList(container, "env");
  // Every entry of the name is set (a duplicate would otherwise win), or one is added.
  const upsert = (wanted: { name: string; value: string }): void => {
    const at = env.flatMap((entry, i) => (nameOf(entry) === wanted.name ? [i] : []));
    for (const i of at) env[i] = { ...wanted };
    if (at.length === 0) env.push({ ...wanted });
  };
  for (const wanted of placeholders) upsert(wanted);
  for (const name of TRUST_ENV) upsert({ name, value: TRUST_BUNDLE_PATH });
  const mounts = ensureList(container, "volumeMounts");
  const mounted = mounts.some(
    (m) => isObject(m) && nameOf(m) === INJECTED.trustVolume && m["mountPath"] === TRUST_DIR,
  );
  if (!mounted) mounts.push({ name: INJECTED.trustVolume, mountPath: TRUST_DIR, readOnly: true });
  const context = ensureObject(container, "securityContext");
  context["allowPrivilegeEscalation"] = false;
  const capabilities = ensureObject(context, "capabilities");
  const drop = ensureList(capabilities, "drop");
  const present = new Set(drop.map(capabilityName));
  if (present.has("ALL")) return;
  for (const cap of DROPPED) if (!present.has(cap)) drop.push(cap);
}
