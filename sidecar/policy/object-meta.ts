// apiVersion, kind and metadata: the part every Airlock manifest shares. Identity is read
// first so every later error can say which object it belongs to.

import { API_GROUP_VERSION } from "../constants.ts";
import { checkKnownFields, describeType, expectRecord, showValue, type ErrorSink } from "./fields.ts";
import type { ManifestMeta } from "./manifest-types.ts";
import { dnsLabelProblem, dnsSubdomainProblem } from "./names.ts";
import type { FieldError, ObjectRef } from "./types.ts";

const TOP_LEVEL_FIELDS = ["apiVersion", "kind", "metadata", "spec", "status"] as const;

/** Best-effort identity of a manifest for error reports, read before anything is validated. */
export function objectRefOf(
  obj: unknown,
  kind: ObjectRef["kind"],
  defaultNamespace: string,
): ObjectRef | undefined {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return undefined;
  const metadata = (obj as Record<string, unknown>).metadata;
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const { name, namespace } = metadata as Record<string, unknown>;
  if (typeof name !== "string" || name === "") return undefined;
  return {
    kind,
    namespace: typeof namespace === "string" && namespace !== "" ? namespace : defaultNamespace,
    name,
  };
}

/** Attaches the object identity (when known) to errors collected by path. */
export function withObject(
  errors: { path: string; message: string }[],
  object: ObjectRef | undefined,
): FieldError[] {
  return errors.map((e) => (object === undefined ? { path: e.path, message: e.message } : { object, ...e }));
}

/**
 * Checks apiVersion, kind, metadata and the top-level field set of one manifest; returns the
 * metadata the core keeps, or undefined when it is unusable (errors already reported).
 */
export function validateHeader(
  obj: Record<string, unknown>,
  kind: ObjectRef["kind"],
  defaultNamespace: string,
  add: ErrorSink,
): ManifestMeta | undefined {
  checkKnownFields(obj, "", TOP_LEVEL_FIELDS, add);
  if (obj.apiVersion !== API_GROUP_VERSION) {
    add("apiVersion", `must be "${API_GROUP_VERSION}", got ${showValue(obj.apiVersion)}; set it`);
  }
  if (obj.kind !== kind) add("kind", `must be "${kind}", got ${showValue(obj.kind)}; set it`);

  const metadata = expectRecord(obj.metadata, "metadata", add, "; add metadata: {name: …}");
  if (metadata === undefined) return undefined;
  let ok = true;
  const { name, namespace, generation } = metadata;
  if (typeof name !== "string") {
    add("metadata.name", `is required and must be a string, got ${describeType(name)}; name the ${kind}`);
    ok = false;
  } else {
    const problem = dnsSubdomainProblem(name);
    if (problem !== undefined) {
      add("metadata.name", problem);
      ok = false;
    }
  }
  if (namespace !== undefined) {
    const problem =
      typeof namespace === "string"
        ? dnsLabelProblem(namespace)
        : `must be a string, got ${describeType(namespace)}`;
    if (problem !== undefined) {
      add("metadata.namespace", problem);
      ok = false;
    }
  }
  if (
    generation !== undefined &&
    !(typeof generation === "number" && Number.isSafeInteger(generation) && generation >= 0)
  ) {
    add("metadata.generation", `must be a non-negative integer, got ${describeType(generation)}; remove it`);
    ok = false;
  }
  if (!ok || typeof name !== "string") return undefined;
  const meta: ManifestMeta = {
    name,
    namespace: typeof namespace === "string" ? namespace : defaultNamespace,
  };
  if (typeof generation === "number") meta.generation = generation;
  return meta;
}
