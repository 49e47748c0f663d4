// Manifests as `kubectl apply` takes them: where each kind keeps the pod it creates. Pure, shared
// by `airlock inject` and its tests.
import type { FieldError } from "../../sidecar/policy/index.ts";
import { injectPod } from "./inject.ts";
import { isObject, listOf, objectOr, type JsonObject } from "./json.ts";
import type { InjectionConfig } from "./types.ts";

// API group → kind → the path of the pod (template) inside the manifest; "" is the object itself.
const POD_PATHS: Record<string, Record<string, readonly string[]>> = {
  "": { Pod: [], ReplicationController: ["spec", "template"] },
  apps: {
    Deployment: ["spec", "template"],
    StatefulSet: ["spec", "template"],
    DaemonSet: ["spec", "template"],
    ReplicaSet: ["spec", "template"],
  },
  batch: { Job: ["spec", "template"], CronJob: ["spec", "jobTemplate", "spec", "template"] },
};

/** The answer for one manifest: the (possibly) injected object, or every reason it was refused. */
export type ManifestResult =
  { ok: true; manifest: unknown; changed: boolean } | { ok: false; errors: FieldError[] };

/** Where the pod (template) of `manifest` sits, or undefined for kinds that create no pods. */
export function podPathOf(manifest: JsonObject): readonly string[] | undefined {
  const apiVersion = typeof manifest["apiVersion"] === "string" ? manifest["apiVersion"] : "";
  const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
  const kind = typeof manifest["kind"] === "string" ? manifest["kind"] : "";
  return POD_PATHS[group]?.[kind];
}

/**
 * Injects the pod or pod template of one manifest; a `List` has each item injected (paths
 * `items[N]...`). Kinds that create no pods pass through unchanged. Pure.
 */
export function injectManifest(manifest: unknown, config: InjectionConfig, at = ""): ManifestResult {
  if (!isObject(manifest)) return { ok: true, manifest, changed: false };
  if (manifest["kind"] === "List" && Array.isArray(manifest["items"]))
    return injectList(manifest, config, at);
  const path = podPathOf(manifest);
  if (path === undefined) return { ok: true, manifest, changed: false };
  const where = [at, ...path].filter((p) => p !== "").join(".");
  if (path.length === 0) {
    const result = injectPod(manifest, config, where);
    return result.ok ? { ok: true, manifest: result.pod, changed: result.changed } : result;
  }
  const parentPath = path.slice(0, -1);
  let parent: JsonObject | undefined = manifest;
  for (const key of parentPath) parent = objectOr(parent?.[key]);
  const leaf = path[path.length - 1] ?? "";
  const template = objectOr(parent?.[leaf]);
  if (!template)
    return {
      ok: false,
      errors: [{ path: where, message: "expected an object; give the manifest a pod template" }],
    };
  const result = injectPod(template, config, where);
  if (!result.ok) return result;
  const out = structuredClone(manifest);
  let target: JsonObject = out;
  for (const key of parentPath) target = objectOr(target[key]) ?? target;
  target[leaf] = result.pod;
  return { ok: true, manifest: out, changed: result.changed };
}

function injectList(list: JsonObject, config: InjectionConfig, at: string): ManifestResult {
  const errors: FieldError[] = [];
  let changed = false;
  const items = listOf(list["items"]).map((item, i) => {
    const result = injectManifest(item, config, [at, `items[${i}]`].filter((p) => p !== "").join("."));
    if (!result.ok) {
      errors.push(...result.errors);
      return item;
    }
    changed ||= result.changed;
    return result.manifest;
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, manifest: { ...list, items }, changed };
}
