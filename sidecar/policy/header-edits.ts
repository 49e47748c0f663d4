// Static header edits of a rule (`setHeaders`, `removeHeaders`): non-secret values the sidecar sets
// or removes on every request the rule matches, after the agent's headers are cleaned and before
// a credential is attached. What they may not touch is checked here, where a policy is validated
// (headers that describe one connection or its framing) and compiled (the header the rule's
// credential is attached as, and what the credential path must control itself).
import { SIGV4_HEADERS } from "./aws-sigv4.ts";
import {
  describeType,
  expectArray,
  expectRecord,
  fieldPath,
  indexPath,
  type ErrorSink,
  checkKnownFields,
} from "./fields.ts";
import type { Injection } from "./types.ts";

/** One header a rule sets: its name as written, and its value. */
export interface HeaderSet {
  name: string;
  value: string;
}

/** At most this many entries in a rule's setHeaders, and in its removeHeaders. */
export const MAX_HEADER_EDITS = 32;
const MAX_VALUE_LENGTH = 4096;

/**
 * Headers no rule may set or remove, and why: each is about one connection, its framing or its
 * target, which the sidecar writes itself on each side.
 */
const NOT_EDITABLE: Record<string, string> = {
  connection: "hop-by-hop: it describes one connection",
  "keep-alive": "hop-by-hop: it describes one connection",
  "proxy-connection": "hop-by-hop: it describes one connection",
  "proxy-authorization": "it carries proxy credentials, which never cross the sidecar",
  "proxy-authenticate": "it is a proxy's challenge, which never crosses the sidecar",
  te: "hop-by-hop: the sidecar sends it itself where it applies",
  trailer: "hop-by-hop framing",
  "transfer-encoding": "hop-by-hop framing: the sidecar frames each side itself",
  "content-length": "framing: the sidecar frames each side itself",
  upgrade: "a protocol switch is decided by the sidecar, not set by a rule",
  host: "the sidecar writes the Host of the target it decided on",
  expect: "the sidecar meets expectations itself",
};

/** RFC 9110 token characters (a field name). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Why `name` cannot be a header a rule edits (ending with the fix), or undefined. */
export function editableHeaderProblem(name: string): string | undefined {
  if (!TOKEN.test(name)) return `"${name}" is not a header name (letters, digits and !#$%&'*+-.^_\`|~ only)`;
  const why = NOT_EDITABLE[name.toLowerCase()];
  return why === undefined ? undefined : `${name} cannot be edited by a rule: ${why}; remove it`;
}

function valueProblem(value: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value))
    return "a header value cannot hold control characters (CR, LF, NUL…); remove them";
  if (value.length > MAX_VALUE_LENGTH)
    return `is ${value.length} characters; at most ${MAX_VALUE_LENGTH} are allowed`;
  if (/[\u0100-\uffff]/.test(value))
    return "a header value is Latin-1 text; percent-encode or drop characters beyond it";
  return undefined;
}

/** A rule's `setHeaders` ([{name, value}]), or undefined after reporting every problem. */
export function validateSetHeaders(value: unknown, path: string, add: ErrorSink): HeaderSet[] | undefined {
  const items = expectArray(value, path, add, {
    min: 1,
    max: MAX_HEADER_EDITS,
    emptyHint: "remove setHeaders to set none",
  });
  if (items === undefined) return undefined;
  let errors = 0;
  const count: ErrorSink = (at, message) => {
    errors++;
    add(at, message);
  };
  const seen = new Map<string, number>();
  const out: HeaderSet[] = [];
  items.forEach((item, i) => {
    const at = indexPath(path, i);
    const entry = expectRecord(item, at, count, '; write {name: "X-Client", value: "agent"}');
    if (entry === undefined) return;
    checkKnownFields(entry, at, ["name", "value"], count);
    const { name, value: headerValue } = entry;
    if (typeof name !== "string") {
      count(fieldPath(at, "name"), `must be a string naming a header, got ${describeType(name)}`);
      return;
    }
    const problem = editableHeaderProblem(name);
    if (problem !== undefined) count(fieldPath(at, "name"), problem);
    const first = seen.get(name.toLowerCase());
    if (first !== undefined)
      count(fieldPath(at, "name"), `sets ${name} again (${indexPath(path, first)} sets it); keep one`);
    seen.set(name.toLowerCase(), i);
    if (typeof headerValue !== "string") {
      count(fieldPath(at, "value"), `must be a string, got ${describeType(headerValue)}; quote the value`);
      return;
    }
    const bad = valueProblem(headerValue);
    if (bad !== undefined) count(fieldPath(at, "value"), bad);
    out.push({ name, value: headerValue });
  });
  return errors === 0 ? out : undefined;
}

/**
 * A rule's `removeHeaders` ([name]), or undefined after reporting every problem; `compiled`: the
 * names must be lower-case already (a bundle's).
 */
export function validateRemoveHeaders(
  value: unknown,
  path: string,
  add: ErrorSink,
  compiled = false,
): string[] | undefined {
  const items = expectArray(value, path, add, {
    min: 1,
    max: MAX_HEADER_EDITS,
    emptyHint: "remove removeHeaders to remove none",
  });
  if (items === undefined) return undefined;
  let errors = 0;
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const at = indexPath(path, i);
    if (typeof item !== "string") {
      errors++;
      add(at, `must be a string naming a header, got ${describeType(item)}`);
      return;
    }
    const problem =
      editableHeaderProblem(item) ??
      (compiled && item !== item.toLowerCase() ? "a compiled name is lower-case" : undefined);
    const first = seen.get(item.toLowerCase());
    const message =
      problem ?? (first === undefined ? undefined : `duplicates ${indexPath(path, first)}; remove one`);
    seen.set(item.toLowerCase(), i);
    if (message !== undefined) {
      errors++;
      add(at, message);
    }
  });
  return errors === 0 ? (items as string[]) : undefined;
}

/**
 * Headers a rule attaching a credential with `injection` may not edit, and why: the one the
 * credential is attached as (it always wins, and a static value there would look like a
 * credential), and Accept-Encoding (a response is asked for unencoded so it can be scrubbed).
 */
export function credentialOwnedHeaders(injection: Injection): Map<string, string> {
  const owned = new Map<string, string>([
    ["accept-encoding", "the credential path asks for unencoded responses, so they can be scrubbed"],
    [
      "grpc-accept-encoding",
      "the credential path asks for uncompressed gRPC messages, so they can be scrubbed",
    ],
  ]);
  if (injection.kind === "header")
    owned.set(injection.name.toLowerCase(), "the credential is attached as it");
  if (injection.kind === "basicAuth") owned.set("authorization", "the credential is attached as it (Basic)");
  if (injection.kind === "awsSigV4")
    for (const name of SIGV4_HEADERS) owned.set(name, "the sidecar signs the request with it (SigV4)");
  return owned;
}

/** Lower-case names; what the data path compares with. */
export function lowerNames(names: readonly string[]): string[] {
  return names.map((n) => n.toLowerCase());
}
