// A rule's `hook`: an HTTP service of the platform team's that is asked about every request the
// rule matches (the custom-code escape hatch, in the spirit of Envoy's ext_authz HTTP service). It
// receives the request's facts and answers allow or deny, with header edits; no answer in time is
// a deny. Checked the same way in a manifest and in a pushed bundle.
import {
  checkKnownFields,
  describeType,
  expectArray,
  expectRecord,
  fieldPath,
  indexPath,
  type ErrorSink,
  objectFields,
} from "./fields.ts";
import { editableHeaderProblem } from "./header-edits.ts";
import { dnsSubdomainProblem, secretKeyProblem } from "./names.ts";

export interface HookSpec {
  /** The service's https URL. */
  url: string;
  /** A Secret in the policy's namespace whose value is sent as `Authorization: Bearer …`. */
  tokenSecretRef?: { name: string; key: string };
  /** How long the answer may take before the request is blocked (HookUnavailable). */
  timeoutMs: number;
  /** How long an answer is reused for the same facts (0: asked every time). */
  cacheSeconds: number;
  /** Lower-case names of the request headers sent along (opt-in; values at most 4 KiB each). */
  includeHeaders?: string[];
}

const FIELDS = ["url", "tokenSecretRef", "timeoutMs", "cacheSeconds", "includeHeaders"];

/** `hook` at `path` (defaults filled in), or undefined after reporting every problem. */
export function validateHook(value: unknown, path: string, add: ErrorSink): HookSpec | undefined {
  const fields = objectFields(value, path, add, FIELDS, "; write {url: https://…}");
  if (fields === undefined) return undefined;
  const { obj, at, report: count } = fields;
  let url: string | undefined;
  if (typeof obj.url !== "string")
    count(at("url"), `is required: the hook's https URL, got ${describeType(obj.url)}`);
  else {
    let parsed: URL | undefined;
    try {
      parsed = new URL(obj.url);
    } catch {
      count(at("url"), `"${obj.url}" is not a URL; write https://host/path`);
    }
    if (parsed !== undefined) {
      if (parsed.protocol !== "https:")
        count(
          at("url"),
          "must be an https URL: the request's facts and the hook's token never leave over cleartext",
        );
      else if (parsed.username !== "" || parsed.password !== "" || parsed.hash !== "")
        count(at("url"), "must not hold credentials or a fragment; a token goes in tokenSecretRef");
      else url = obj.url;
    }
  }
  let tokenSecretRef: HookSpec["tokenSecretRef"];
  if (obj.tokenSecretRef !== undefined) {
    const ref = expectRecord(obj.tokenSecretRef, at("tokenSecretRef"), count, "; write {name: …, key: …}");
    if (ref !== undefined) {
      checkKnownFields(ref, at("tokenSecretRef"), ["name", "key"], count);
      const name = typeof ref.name === "string" ? dnsSubdomainProblem(ref.name) : "must be a string";
      const key = typeof ref.key === "string" ? secretKeyProblem(ref.key) : "must be a string";
      if (name !== undefined) count(fieldPath(at("tokenSecretRef"), "name"), name);
      if (key !== undefined) count(fieldPath(at("tokenSecretRef"), "key"), key);
      if (name === undefined && key === undefined)
        tokenSecretRef = { name: ref.name as string, key: ref.key as string };
    }
  }
  const integer = (key: string, min: number, max: number, fallback: number): number => {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v === "number" && Number.isInteger(v) && v >= min && v <= max) return v;
    count(at(key), `must be a whole number from ${min} to ${max}, got ${describeType(v)}`);
    return fallback;
  };
  const timeoutMs = integer("timeoutMs", 50, 10_000, 1_000);
  const cacheSeconds = integer("cacheSeconds", 0, 3_600, 0);
  let includeHeaders: string[] | undefined;
  if (obj.includeHeaders !== undefined) {
    const items = expectArray(obj.includeHeaders, at("includeHeaders"), count, {
      min: 1,
      max: 16,
      emptyHint: "remove includeHeaders to send none",
    });
    if (items !== undefined) {
      const names: string[] = [];
      items.forEach((item, i) => {
        const problem = typeof item === "string" ? headerToSendProblem(item) : "must be a header name";
        if (problem === undefined) names.push((item as string).toLowerCase());
        else count(indexPath(at("includeHeaders"), i), problem);
      });
      if (names.length === items.length) includeHeaders = names;
    }
  }
  if (fields.errors() > 0 || url === undefined) return undefined;
  const spec: HookSpec = { url, timeoutMs, cacheSeconds };
  if (tokenSecretRef !== undefined) spec.tokenSecretRef = tokenSecretRef;
  if (includeHeaders !== undefined) spec.includeHeaders = includeHeaders;
  return spec;
}

/** Headers never sent to a hook: they may carry the agent's or the proxy's secrets. */
const NEVER_SENT = new Set(["authorization", "proxy-authorization", "cookie"]);

function headerToSendProblem(name: string): string | undefined {
  if (NEVER_SENT.has(name.toLowerCase()))
    return `${name} is never sent to a hook (it can carry credentials); remove it`;
  const problem = editableHeaderProblem(name);
  return problem?.includes("not a header name") === true ? problem : undefined;
}
