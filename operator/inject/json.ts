// Small readers for pods as plain JSON. The injector never trusts the shape of its input: a
// field of the wrong type reads as absent here and is reported (or ignored) by the caller.

/** A JSON object (a pod, a container, a security context...). */
export type JsonObject = Record<string, unknown>;

/** Whether `value` is a JSON object (not null, not an array). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `value` when it is an array, else an empty one (absent lists read as empty). */
export function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** `value` when it is an object, else undefined. */
export function objectOr(value: unknown): JsonObject | undefined {
  return isObject(value) ? value : undefined;
}

/** The object at `parent[key]`, created (and stored) when absent or not an object. */
export function ensureObject(parent: JsonObject, key: string): JsonObject {
  const current = parent[key];
  if (isObject(current)) return current;
  const created: JsonObject = {};
  parent[key] = created;
  return created;
}

/** The array at `parent[key]`, created (and stored) when absent or not an array. */
export function ensureList(parent: JsonObject, key: string): unknown[] {
  const current = parent[key];
  if (Array.isArray(current)) return current;
  const created: unknown[] = [];
  parent[key] = created;
  return created;
}

/** A field path under `at` ("" for a Pod, "spec.template" for a workload's template). */
export function fieldPath(at: string, path: string): string {
  return at === "" ? path : `${at}.${path}`;
}

/** A container's name, or "" when it has none. */
export function nameOf(value: unknown): string {
  return isObject(value) && typeof value["name"] === "string" ? value["name"] : "";
}

/** The container lists of a pod spec that run processes in the pod's network namespace. */
export const CONTAINER_LISTS = ["initContainers", "containers", "ephemeralContainers"] as const;
/** One of CONTAINER_LISTS. */
export type ContainerList = (typeof CONTAINER_LISTS)[number];

/** A container of a pod spec with where it sits. */
export interface ContainerAt {
  list: ContainerList;
  index: number;
  container: JsonObject;
  /** Its field path relative to the pod, e.g. `spec.containers[0]`. */
  path: string;
}

/** Every container object in `lists` of `spec`, in order (non-objects are skipped). */
export function containersOf(spec: JsonObject, lists: readonly ContainerList[]): ContainerAt[] {
  return lists.flatMap((list) =>
    listOf(spec[list]).flatMap((container, index) =>
      isObject(container) ? [{ list, index, container, path: `spec.${list}[${index}]` }] : [],
    ),
  );
}
