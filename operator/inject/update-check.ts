// Pod UPDATE: what the injector put in a pod stays as it was (THREATS.md I6). `kubectl set image`
// on the sidecar, or dropping the status annotation, would otherwise swap the boundary on a
// running pod without passing the injector.
import { isDeepStrictEqual } from "node:util";
import { STATUS_ANNOTATION } from "../../sidecar/constants.ts";
import type { FieldError } from "../../sidecar/policy/index.ts";
import { AIRLOCK_CONTAINERS, AIRLOCK_VOLUMES } from "./injected.ts";
import { isObject, listOf, nameOf, objectOr, type JsonObject } from "./json.ts";

const HINT = "Airlock's part of a pod cannot change after creation; delete the pod and create it again";

/** Every change `newPod` makes to the Airlock containers, volumes or status annotation of `oldPod`. */
export function checkPodUpdate(oldPod: JsonObject, newPod: JsonObject): FieldError[] {
  const errors: FieldError[] = [];
  const before = annotation(oldPod);
  if (before !== annotation(newPod))
    errors.push({
      path: `metadata.annotations["${STATUS_ANNOTATION}"]`,
      message: `${STATUS_ANNOTATION} records what Airlock injected; ${HINT}`,
    });
  for (const name of AIRLOCK_CONTAINERS)
    errors.push(...compareNamed(oldPod, newPod, "initContainers", name, "container"));
  for (const name of AIRLOCK_VOLUMES) errors.push(...compareNamed(oldPod, newPod, "volumes", name, "volume"));
  return errors;
}

function annotation(pod: JsonObject): unknown {
  return objectOr(objectOr(pod["metadata"])?.["annotations"])?.[STATUS_ANNOTATION];
}

function named(pod: JsonObject, list: string, name: string): { index: number; item: JsonObject } | undefined {
  const items = listOf(objectOr(pod["spec"])?.[list]);
  const index = items.findIndex((item) => nameOf(item) === name);
  const item = items[index];
  return isObject(item) ? { index, item } : undefined;
}

// The path of the first field that differs, so `kubectl set image` is answered at `.image`.
function compareNamed(
  oldPod: JsonObject,
  newPod: JsonObject,
  list: string,
  name: string,
  what: string,
): FieldError[] {
  const before = named(oldPod, list, name);
  const after = named(newPod, list, name);
  if (!before && !after) return [];
  if (!before || !after) {
    const index = (after ?? before)?.index ?? 0;
    return [
      {
        path: `spec.${list}[${index}]`,
        message: `the Airlock ${what} ${name} cannot be added or removed; ${HINT}`,
      },
    ];
  }
  const base = `spec.${list}[${after.index}]`;
  if (before.index !== after.index)
    return [{ path: base, message: `the Airlock ${what} ${name} cannot move; ${HINT}` }];
  const keys = new Set([...Object.keys(before.item), ...Object.keys(after.item)]);
  const changed = [...keys].find((key) => !isDeepStrictEqual(before.item[key], after.item[key]));
  return changed === undefined
    ? []
    : [{ path: `${base}.${changed}`, message: `the Airlock ${what} ${name} cannot change; ${HINT}` }];
}
