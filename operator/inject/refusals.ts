// The pods the injector refuses: those whose agent could step around the sidecar (THREATS.md
// I2, I5, I6, "Kubernetes wiring"). Every reason is collected, each at its field path with a fix.
import { SIDECAR_GID, SIDECAR_UID } from "../../sidecar/constants.ts";
import type { FieldError } from "../../sidecar/policy/index.ts";
import { AIRLOCK_CONTAINERS, AIRLOCK_VOLUMES, TRUST_DIR } from "./injected.ts";
import { containersOf, fieldPath, isObject, listOf, nameOf, objectOr, type JsonObject } from "./json.ts";
import { INJECTED } from "./types.ts";

/** Capabilities an agent container may not add: each lifts it out of the capture or into the sidecar. */
export const REFUSED_CAPABILITIES: readonly string[] = [
  "NET_ADMIN",
  "NET_RAW",
  "SYS_ADMIN",
  "SYS_PTRACE",
  "SETUID",
  "SETGID",
  "ALL",
];

const POD_FLAGS = {
  hostNetwork: "the pod would share the node's network, outside the capture rules; remove hostNetwork",
  hostPID: "the agent could reach the sidecar's processes through the node's PID namespace; remove hostPID",
  shareProcessNamespace:
    "the agent could read the sidecar's memory and environment through /proc; remove shareProcessNamespace",
} as const;

/** The canonical name of a capability as written in a pod ("cap_net_raw" → "NET_RAW"). */
export function capabilityName(raw: unknown): string {
  return typeof raw === "string" ? raw.trim().toUpperCase().replace(/^CAP_/, "") : "";
}

/**
 * Every reason `pod` cannot be made safe. `injected` (the pod carries the status annotation) means
 * the Airlock-named init containers and volumes are ours to replace rather than impostors.
 */
export function refusePod(pod: JsonObject, at: string, injected: boolean): FieldError[] {
  const spec = objectOr(pod["spec"]);
  if (!spec) return [{ path: fieldPath(at, "spec"), message: "expected an object; give the pod a spec" }];
  const errors: FieldError[] = [];
  for (const [flag, why] of Object.entries(POD_FLAGS))
    if (spec[flag] === true) errors.push({ path: fieldPath(at, `spec.${flag}`), message: why });
  errors.push(
    ...refuseSecurityContext(objectOr(spec["securityContext"]), fieldPath(at, "spec.securityContext")),
  );
  errors.push(...refuseVolumes(spec, at, injected));
  for (const c of containersOf(spec, ["initContainers", "containers"])) {
    const ours = c.list === "initContainers" && injected && AIRLOCK_CONTAINERS.includes(nameOf(c.container));
    if (!ours) errors.push(...refuseContainer(c.container, fieldPath(at, c.path)));
  }
  errors.push(...refuseEphemeral(spec, at));
  return errors;
}

/** Refusals for one non-Airlock container (agent, the pod's own init container, or ephemeral). */
export function refuseContainer(container: JsonObject, path: string): FieldError[] {
  const errors: FieldError[] = [];
  const name = nameOf(container);
  if (AIRLOCK_CONTAINERS.includes(name))
    errors.push({
      path: `${path}.name`,
      message: `"${name}" is reserved for the container Airlock injects; rename this container`,
    });
  const context = objectOr(container["securityContext"]);
  errors.push(...refuseSecurityContext(context, `${path}.securityContext`));
  if (context?.["privileged"] === true)
    errors.push({
      path: `${path}.securityContext.privileged`,
      message: "a privileged container can rewrite the pod's capture rules; remove privileged",
    });
  if (context?.["allowPrivilegeEscalation"] === true)
    errors.push({
      path: `${path}.securityContext.allowPrivilegeEscalation`,
      message:
        "a setuid binary could carry the agent to the sidecar's UID, which the capture exempts; " +
        "remove allowPrivilegeEscalation (Airlock sets it to false) and run the image as its final user",
    });
  listOf(objectOr(context?.["capabilities"])?.["add"]).forEach((raw, i) => {
    const cap = capabilityName(raw);
    if (REFUSED_CAPABILITIES.includes(cap))
      errors.push({
        path: `${path}.securityContext.capabilities.add[${i}]`,
        message: `${cap} would let the agent bypass or inspect the sidecar; remove it from capabilities.add`,
      });
  });
  listOf(container["volumeMounts"]).forEach((mount, i) => {
    errors.push(...refuseMount(mount, `${path}.volumeMounts[${i}]`));
  });
  return errors;
}

function refuseMount(mount: unknown, path: string): FieldError[] {
  if (!isObject(mount)) return [];
  const name = nameOf(mount);
  if (name === INJECTED.tokenVolume)
    return [
      {
        path: `${path}.name`,
        message: `${name} holds the sidecar's service-account token; only the sidecar mounts it, remove this mount`,
      },
    ];
  if (name === INJECTED.tmpVolume)
    return [{ path: `${path}.name`, message: `${name} is the sidecar's scratch space; remove this mount` }];
  if (name === INJECTED.trustVolume && mount["readOnly"] !== true)
    return [
      {
        path: `${path}.readOnly`,
        message: `${name} is written by the sidecar only; set readOnly: true or remove this mount`,
      },
    ];
  if (name !== INJECTED.trustVolume && mount["mountPath"] === TRUST_DIR)
    return [
      {
        path: `${path}.mountPath`,
        message: `${TRUST_DIR} is where Airlock mounts the agent's trust bundle; mount ${name || "it"} elsewhere`,
      },
    ];
  return [];
}

/** UID/GID 15000 anywhere a process or file group could take it: the capture exempts that identity. */
function refuseSecurityContext(context: JsonObject | undefined, path: string): FieldError[] {
  if (!context) return [];
  const errors: FieldError[] = [];
  const hint = "choose another ID (the sidecar's UID/GID is exempt from the capture rules)";
  for (const [field, id] of [
    ["runAsUser", SIDECAR_UID],
    ["runAsGroup", SIDECAR_GID],
    ["fsGroup", SIDECAR_GID],
  ] as const)
    if (context[field] === id)
      errors.push({ path: `${path}.${field}`, message: `${field} ${id} is the sidecar's; ${hint}` });
  listOf(context["supplementalGroups"]).forEach((gid, i) => {
    if (gid === SIDECAR_GID)
      errors.push({
        path: `${path}.supplementalGroups[${i}]`,
        message: `group ${gid} is the sidecar's; ${hint}`,
      });
  });
  return errors;
}

/**
 * The pod's own volumes: none may take an Airlock name unless we injected it (then it is replaced),
 * and none may project a service-account token, which would hand the agent the API access its
 * sidecar has to the Credentials' Secrets.
 */
function refuseVolumes(spec: JsonObject, at: string, injected: boolean): FieldError[] {
  const errors: FieldError[] = [];
  listOf(spec["volumes"]).forEach((volume, i) => {
    const path = fieldPath(at, `spec.volumes[${i}]`);
    const name = nameOf(volume);
    if (AIRLOCK_VOLUMES.includes(name)) {
      if (!injected)
        errors.push({
          path: `${path}.name`,
          message: `"${name}" is reserved for the volume Airlock injects; rename it`,
        });
      return;
    }
    listOf(objectOr(objectOr(volume)?.["projected"])?.["sources"]).forEach((source, j) => {
      if (isObject(source) && source["serviceAccountToken"] !== undefined)
        errors.push({
          path: `${path}.projected.sources[${j}].serviceAccountToken`,
          message:
            "a service-account token in an agent pod lets the agent use the sidecar's access to Secrets; " +
            "remove it (only the sidecar holds a token)",
        });
    });
  });
  return errors;
}

/**
 * Refusals for `pods/ephemeralcontainers`: an ephemeral container is an agent container added
 * later, and must not target an Airlock container (it would share its processes).
 */
export function checkEphemeralContainers(pod: JsonObject): FieldError[] {
  const spec = objectOr(pod["spec"]);
  return spec ? refuseEphemeral(spec, "") : [];
}

function refuseEphemeral(spec: JsonObject, at: string): FieldError[] {
  return containersOf(spec, ["ephemeralContainers"]).flatMap((c) => {
    const path = fieldPath(at, c.path);
    const errors = refuseContainer(c.container, path);
    const target = c.container["targetContainerName"];
    if (typeof target === "string" && AIRLOCK_CONTAINERS.includes(target))
      errors.push({
        path: `${path}.targetContainerName`,
        message: `debugging ${target} would expose the sidecar's memory; target an agent container instead`,
      });
    return errors;
  });
}
