// Canonical JSON and the bundle hash: the operator and the sidecar must agree on the bytes a
// CompiledPolicy hashes to, whatever order its keys were built or parsed in.

import { sha256Hex } from "./sha256.ts";
import type { CompiledPolicy } from "./types.ts";

/**
 * JSON with object keys sorted (UTF-16 code unit order) and no whitespace; keys whose value is
 * undefined are omitted, as JSON.stringify does. Input must be a JSON tree (no cycles).
 */
export function canonicalJson(value: unknown): string {
  if (typeof value === "string" || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") return Number.isFinite(value) ? JSON.stringify(value) : "null";
  // Like JSON.stringify inside arrays: anything that is not JSON (undefined, functions, …) is null.
  if (value === null || typeof value !== "object") return "null";
  if (Array.isArray(value)) {
    return `[${value.map((item) => canonicalJson(item)).join(",")}]`;
  }
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const item = record[key];
    if (item === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(item)}`);
  }
  return `{${parts.join(",")}}`;
}

/** `sha256:<hex>` of the canonical JSON of `policy` without its `hash` field. */
export function policyHash(policy: Omit<CompiledPolicy, "hash"> | CompiledPolicy): string {
  const rest: Partial<CompiledPolicy> = { ...policy };
  delete rest.hash;
  return `sha256:${sha256Hex(canonicalJson(rest))}`;
}
