// Shared pieces of manifest validation: every check reports into a sink with its field path,
// so one pass collects every error instead of stopping at the first.

import { didYouMean } from "./did-you-mean.ts";

/** Receives one error at a field path; validators never throw and never stop early. */
export type ErrorSink = (path: string, message: string) => void;

/** A parsed JSON/YAML mapping (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `spec.egress[0]` + `hosts` → `spec.egress[0].hosts`; keys that are not identifiers are quoted. */
export function fieldPath(base: string, key: string): string {
  const part = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : `[${JSON.stringify(key)}]`;
  if (base === "") return part;
  return part.startsWith("[") ? `${base}${part}` : `${base}.${part}`;
}

/** `base[i]`. */
export function indexPath(base: string, index: number): string {
  return `${base}[${index}]`;
}

/** "a string", "an array", "null", … for messages about a wrong type. */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "number" && Number.isInteger(value)) return "an integer";
  return `a ${typeof value}`;
}

/** Reports every key of `value` not in `allowed`, suggesting the closest allowed one. */
export function checkKnownFields(
  value: Record<string, unknown>,
  path: string,
  allowed: readonly string[],
  add: ErrorSink,
): void {
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const at = fieldPath(path, key);
    const suggestion = didYouMean(key, allowed);
    add(
      at,
      suggestion === undefined
        ? `unknown field ${at}; allowed fields are ${allowed.join(", ")}`
        : `unknown field ${at}; did you mean ${suggestion}?`,
    );
  }
}

/** The mapping at `path`, or undefined after reporting what was found instead. */
export function expectRecord(
  value: unknown,
  path: string,
  add: ErrorSink,
  hint = "",
): Record<string, unknown> | undefined {
  if (isRecord(value)) return value;
  add(path, `must be an object (a mapping), got ${describeType(value)}${hint}`);
  return undefined;
}

/** The string at `path`, or undefined after reporting what was found instead. */
export function expectString(value: unknown, path: string, add: ErrorSink): string | undefined {
  if (typeof value === "string") return value;
  add(path, `must be a string, got ${describeType(value)}; quote the value`);
  return undefined;
}

/**
 * The array at `path` if it has `min`..`max` items, or undefined after reporting why not.
 * `emptyHint` says what to write instead of an empty list.
 */
export function expectArray(
  value: unknown,
  path: string,
  add: ErrorSink,
  limits: { min: number; max: number; emptyHint?: string },
): unknown[] | undefined {
  if (!Array.isArray(value)) {
    add(path, `must be a list, got ${describeType(value)}; write [item, …]`);
    return undefined;
  }
  if (value.length < limits.min) {
    add(
      path,
      `must not be empty${limits.emptyHint === undefined ? "; add an item" : `; ${limits.emptyHint}`}`,
    );
    return undefined;
  }
  if (value.length > limits.max) {
    add(path, `has ${value.length} items; at most ${limits.max} are allowed, split it`);
    return undefined;
  }
  return value as unknown[];
}

/** A short rendering of a found value for messages: scalars as JSON, anything else by type. */
export function showValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (
    typeof value === "string" ||
    typeof value === "number" ||
    typeof value === "boolean" ||
    value === null
  ) {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}…` : text;
  }
  return describeType(value);
}

/** Reports each item equal to an earlier one, at the later item's path; undefined items (already reported invalid) are skipped. */
export function checkUnique(items: readonly unknown[], path: string, add: ErrorSink): void {
  const seen = new Map<unknown, number>();
  items.forEach((item, i) => {
    if (item === undefined) return;
    const first = seen.get(item);
    if (first === undefined) {
      seen.set(item, i);
      return;
    }
    add(indexPath(path, i), `duplicates ${indexPath(path, first)} (${showValue(item)}); remove one`);
  });
}

/**
 * The object at `path` with its field names checked against `allowed`, and what a validator of
 * its fields needs: the path of a field, a sink that counts what it reports, and that count.
 */
export function objectFields(
  value: unknown,
  path: string,
  add: ErrorSink,
  allowed: readonly string[],
  hint = "",
):
  | { obj: Record<string, unknown>; at: (key: string) => string; report: ErrorSink; errors: () => number }
  | undefined {
  const obj = expectRecord(value, path, add, hint);
  if (obj === undefined) return undefined;
  let errors = 0;
  const report: ErrorSink = (at, message) => {
    errors++;
    add(at, message);
  };
  checkKnownFields(obj, path, allowed, report);
  return { obj, at: (key) => fieldPath(path, key), report, errors: () => errors };
}
