// The JSON Patch (RFC 6902) that turns the pod the API server sent into the injector's result.
// Whole-field operations on the fields that differ, one level below `metadata` and `spec` (and
// at the top level for anything else): small enough to read in an audit log, and exact, because
// a field is replaced by the injector's value, never merged with it.
import { canonicalJson } from "../../sidecar/policy/index.ts";

/** One JSON Patch operation. */
export type PatchOperation =
  { op: "add" | "replace"; path: string; value: unknown } | { op: "remove"; path: string };

/** Descended into (one level) rather than replaced whole. */
const NESTED = new Set(["metadata", "spec"]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** RFC 6901: "~" and "/" in a key are escaped. */
function pointer(...keys: string[]): string {
  return keys.map((key) => `/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");
}

function diffRecord(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  prefix: string[],
  out: PatchOperation[],
  depth: number,
): void {
  for (const [key, value] of Object.entries(after)) {
    const path = [...prefix, key];
    if (!Object.hasOwn(before, key)) {
      out.push({ op: "add", path: pointer(...path), value });
      continue;
    }
    const old = before[key];
    if (canonicalJson(old) === canonicalJson(value)) continue;
    if (depth === 0 && NESTED.has(key) && isRecord(old) && isRecord(value))
      diffRecord(old, value, path, out, depth + 1);
    else out.push({ op: "replace", path: pointer(...path), value });
  }
  for (const key of Object.keys(before))
    if (!Object.hasOwn(after, key)) out.push({ op: "remove", path: pointer(...prefix, key) });
}

/** The operations that make `before` equal `after` (both JSON objects); [] when they are equal. */
export function podPatch(before: Record<string, unknown>, after: Record<string, unknown>): PatchOperation[] {
  const out: PatchOperation[] = [];
  diffRecord(before, after, [], out, 0);
  return out;
}
