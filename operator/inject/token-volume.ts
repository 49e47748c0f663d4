// The API server's ServiceAccount admission plugin runs before mutating webhooks and gives every
// pod that does not opt out (automountServiceAccountToken: false) a projected token volume
// `kube-api-access-XXXXX`, mounted at /var/run/secrets/kubernetes.io/serviceaccount in each
// container. In an agent pod that token would let the agent use the API access its sidecar has to
// the Credentials' Secrets. The injector takes that volume and its mounts out again (and sets
// automountServiceAccountToken: false), as if the pod had opted out; a token volume the pod
// declares itself is still refused (refusals.ts). Removing a token only ever takes access away.
import {
  CONTAINER_LISTS,
  containersOf,
  isObject,
  listOf,
  nameOf,
  objectOr,
  type JsonObject,
} from "./json.ts";
import type { PodObject } from "./types.ts";

const PREFIX = "kube-api-access-";

/** True for the volume the ServiceAccount admission plugin adds (name and the three sources). */
export function isApiServerTokenVolume(volume: unknown): boolean {
  if (!isObject(volume) || !nameOf(volume).startsWith(PREFIX)) return false;
  const sources = listOf(objectOr(volume["projected"])?.["sources"]);
  const kinds = sources.map((source) => (isObject(source) ? Object.keys(source).sort().join(",") : ""));
  return (
    sources.length === 3 &&
    kinds.includes("serviceAccountToken") &&
    kinds.includes("configMap") &&
    kinds.includes("downwardAPI")
  );
}

/**
 * `pod` without the ServiceAccount admission plugin's token volume and the mounts of it; the same
 * object when there is none.
 */
export function withoutApiServerToken(pod: PodObject): PodObject {
  const spec = objectOr(pod["spec"]);
  if (spec === undefined) return pod;
  const names = new Set(listOf(spec["volumes"]).filter(isApiServerTokenVolume).map(nameOf));
  if (names.size === 0) return pod;
  const out = structuredClone(pod);
  const outSpec = out["spec"] as JsonObject;
  outSpec["volumes"] = listOf(outSpec["volumes"]).filter((volume) => !names.has(nameOf(volume)));
  for (const { container } of containersOf(outSpec, CONTAINER_LISTS)) {
    const mounts = listOf(container["volumeMounts"]);
    if (mounts.length > 0)
      container["volumeMounts"] = mounts.filter((mount) => !(isObject(mount) && names.has(nameOf(mount))));
  }
  return out;
}
