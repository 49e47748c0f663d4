// Canonical JSON and the bundle hash: the operator and the sidecar must agree on the bytes a
// CompiledPolicy hashes to, whatever order its keys were built or parsed in.

import { sha256Hex } from "./sha256.ts";
import type { CompiledPolicy } from "./types.ts";

/**
 * JSON with object keys sorted (UTF-16 code unit order) and no whitespace; keys whose value is
 * undefined are omitted, as JSON.stringify does. Input must be a JSON tree (no cycles).
 */
export function canonicalJson(value: unknown): string {
  // One growing string rather than a string per subtree joined into its parent's: a bundle of
  // 10,000 rules is ~2 MB of small values, and the per-subtree strings and joins were most of the
  // hash's time (measured: 41 → 28 ms at 10,000 rules; collecting pieces and joining once: 59).
  const out = { text: "" };
  write(value, out);
  return out.text;
}

function write(value: unknown, out: { text: string }): void {
  if (typeof value === "string" || typeof value === "boolean") {
    out.text += JSON.stringify(value);
    return;
  }
  if (typeof value === "number") {
    out.text += Number.isFinite(value) ? JSON.stringify(value) : "null";
    return;
  }
  // Like JSON.stringify inside arrays: anything that is not JSON (undefined, functions, …) is null.
  if (value === null || typeof value !== "object") {
    out.text += "null";
    return;
  }
  if (Array.isArray(value)) {
    out.text += "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.text += ",";
      write(value[i], out);
    }
    out.text += "]";
    return;
  }
  const record = value as Record<string, unknown>;
  let first = true;
  out.text += "{";
  for (const key of Object.keys(record).sort()) {
    const item = record[key];
    if (item === undefined) continue;
    out.text += (first ? "" : ",") + JSON.stringify(key) + ":";
    first = false;
    write(item, out);
  }
  out.text += "}";
}

/** `sha256:<hex>` of the canonical JSON of `policy` without its `hash` field. */
export function policyHash(policy: Omit<CompiledPolicy, "hash"> | CompiledPolicy): string {
  const rest: Partial<CompiledPolicy> = { ...policy };
  delete rest.hash;
  return `sha256:${sha256Hex(canonicalJson(rest))}`;
}
