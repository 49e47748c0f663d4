// One host grammar for Host headers, SNI, CONNECT targets, DNS names and policy patterns
// (DESIGN.md §2). Requests arrive in every spelling WHATWG URL accepts, so IP literals are
// recognised in all of them: an IP must never slip through as a "name" and match a rule.

import type { HostPattern } from "./types.ts";

/** A host as it arrived, canonicalised: a DNS name, an IP literal, or the reason it is neither. */
export type CanonicalHost =
  | { kind: "name"; name: string }
  | { kind: "ip"; address: string; family: 4 | 6 }
  | { kind: "invalid"; message: string };

const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const HOST_CHARS = /^[A-Za-z0-9._:[\]-]$/;
/** Every character a HOST_CHARS one: the common case, checked in one test (no message needed). */
const ALL_HOST_CHARS = /^[A-Za-z0-9._:[\]-]*$/;
/** A valid DNS name as dnsNameProblem defines it, in one test (its loop then only explains why not). */
const DNS_NAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const DOTTED_QUAD = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
// WHATWG "ends in a number": such a host is parsed as IPv4 (and fails if it is not one).
const NUMERIC_LABEL = /^(?:\d+|0x[0-9a-f]*)$/;

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  return `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
}

function forbiddenCharMessage(raw: string): string | undefined {
  if (ALL_HOST_CHARS.test(raw)) return undefined;
  for (const ch of raw) {
    if (HOST_CHARS.test(ch)) continue;
    const code = ch.codePointAt(0) ?? 0;
    if (ch === "%")
      return "'%' is not allowed in a host: percent-encoding is never decoded; send the plain name";
    if (ch === "@")
      return "'@' is not allowed in a host: userinfo does not belong in a host; send the host alone";
    if (ch === "/" || ch === "\\" || ch === "?" || ch === "#") {
      return `'${ch}' is not allowed in a host; send the host without path, query or fragment`;
    }
    if (code <= 0x20 || code === 0x7f) {
      return `whitespace or control character ${describeChar(ch)} is not allowed in a host; remove it`;
    }
    if (code > 0x7f) {
      return `non-ASCII character ${describeChar(ch)} is not allowed in a host; use the IDNA A-label form (xn--…)`;
    }
    return `character '${ch}' is not allowed in a host; use letters, digits, '-' and '.'`;
  }
  return undefined;
}

/**
 * Why `name` (lower case, no trailing dot) is not a DNS name, or undefined when it is one:
 * labels of a-z, 0-9 and '-', 1–63 characters, not starting or ending with '-', 253 in all.
 */
export function dnsNameProblem(name: string): string | undefined {
  if (DNS_NAME.test(name)) return undefined;
  if (name === "") return 'host is empty; name a host such as "api.example.com"';
  if (name.length > MAX_NAME_LENGTH) {
    return `host name is ${name.length} characters long; a DNS name has at most ${MAX_NAME_LENGTH}`;
  }
  for (const label of name.split(".")) {
    if (label === "") return `"${name}" has an empty label; remove the extra '.'`;
    if (label.length > MAX_LABEL_LENGTH) {
      return `label "${label.slice(0, 16)}…" is ${label.length} characters long; a DNS label has at most ${MAX_LABEL_LENGTH}`;
    }
    if (label.includes("_")) return `'_' is not allowed in a host name; labels use only a-z, 0-9 and '-'`;
    if (!/^[a-z0-9-]+$/.test(label)) return `label "${label}" is not valid; labels use only a-z, 0-9 and '-'`;
    if (label.startsWith("-") || label.endsWith("-")) {
      return `label "${label}" starts or ends with '-'; labels begin and end with a letter or digit`;
    }
  }
  return undefined;
}

function canonicalIPv6(inner: string, raw: string): CanonicalHost {
  const invalid: CanonicalHost = {
    kind: "invalid",
    message: `"${raw}" is not a valid IPv6 address; a port does not belong in the host`,
  };
  if (inner.includes("[") || inner.includes("]") || !inner.includes(":")) return invalid;
  try {
    const hostname = new URL(`http://[${inner}]/`).hostname;
    return { kind: "ip", address: hostname.slice(1, -1), family: 6 };
  } catch {
    return invalid;
  }
}

/**
 * Hosts seen recently, canonicalised: an agent talks to a handful of hosts, so nearly every request
 * is one Map hit instead of the character screen and the DNS-name test. Bounded (emptied when
 * full); only host-sized inputs are kept; the results are frozen, so no caller can alter another's.
 */
const RECENT = new Map<string, CanonicalHost>();
const RECENT_LIMIT = 1024;
const RECENT_MAX_INPUT = MAX_NAME_LENGTH + 2;

/**
 * Canonicalises a host as it arrives (Host header without port, SNI, CONNECT target, URL host):
 * names lower-cased without one trailing dot; IP literals in canonical form, in every spelling
 * WHATWG URL accepts (`127.1`, `0x7f000001`, `[::ffff:127.0.0.1]`, …). Never throws.
 */
export function canonicalHost(raw: string): CanonicalHost {
  const seen = RECENT.get(raw);
  if (seen !== undefined) return seen;
  const result = Object.freeze(canonicalise(raw));
  if (typeof raw === "string" && raw.length <= RECENT_MAX_INPUT) {
    if (RECENT.size >= RECENT_LIMIT) RECENT.clear();
    RECENT.set(raw, result);
  }
  return result;
}

function canonicalise(raw: string): CanonicalHost {
  if (typeof raw !== "string") return { kind: "invalid", message: "host must be a string" };
  if (raw === "") return { kind: "invalid", message: "host is empty; send a host name" };
  // Screened before URL ever sees the input: URL would percent-decode, apply IDNA, strip userinfo.
  const bad = forbiddenCharMessage(raw);
  if (bad !== undefined) return { kind: "invalid", message: bad };

  if (raw.startsWith("[")) {
    if (!raw.endsWith("]")) return { kind: "invalid", message: `"${raw}" has an unclosed '['; close it` };
    return canonicalIPv6(raw.slice(1, -1), raw);
  }
  if (raw.includes(":") || raw.includes("]")) return canonicalIPv6(raw, raw);

  const lower = raw.toLowerCase();
  const name = lower.endsWith(".") ? lower.slice(0, -1) : lower;
  const lastLabel = name.slice(name.lastIndexOf(".") + 1);
  if (name !== "" && NUMERIC_LABEL.test(lastLabel)) {
    try {
      const hostname = new URL(`http://${name}/`).hostname;
      if (DOTTED_QUAD.test(hostname)) return { kind: "ip", address: hostname, family: 4 };
    } catch {
      // Falls through: a numeric last label that is not an IPv4 address is not a name either.
    }
    return {
      kind: "invalid",
      message: `"${raw}" is neither an IPv4 address nor a DNS name (its last label is numeric); send a host name`,
    };
  }
  const problem = dnsNameProblem(name);
  if (problem !== undefined) return { kind: "invalid", message: problem };
  return { kind: "name", name };
}

/** A host pattern parsed from a policy, or the reason it is refused with the fix. */
export type HostPatternResult = { ok: true; value: HostPattern } | { ok: false; message: string };

const WILDCARD_EXAMPLE = '"*.example.com"';

// Policy patterns use canonicalise directly: they are parsed once per compile, and 10,000
// distinct names would only churn the data path's cache of recent hosts.
function ipPatternMessage(raw: string, whole: CanonicalHost): string | undefined {
  const slash = raw.indexOf("/");
  if (slash >= 0 && canonicalise(raw.slice(0, slash)).kind === "ip") {
    return `"${raw}" is a CIDR; IP literals and CIDRs are not hosts; name the host`;
  }
  if (whole.kind === "ip") return `"${raw}" is an IP literal; IP literals are not hosts; name the host`;
  return undefined;
}

/**
 * Parses the policy host grammar: a lower-case DNS name, or `*.suffix` (any depth under a suffix of
 * at least two labels, never the apex). Every refusal says what to write instead. Never throws.
 */
export function parseHostPattern(raw: string): HostPatternResult {
  if (typeof raw !== "string" || raw === "") {
    return { ok: false, message: 'host is empty; name a host such as "api.example.com"' };
  }
  if (raw === "*") return { ok: false, message: `"*" is not a host; use ${WILDCARD_EXAMPLE}` };
  const whole = canonicalise(raw);
  const ipMessage = ipPatternMessage(raw, whole);
  if (ipMessage !== undefined) return { ok: false, message: ipMessage };
  if (raw.includes("/")) return { ok: false, message: `"${raw}" is not a host; put paths in "paths"` };
  if (raw.includes(":")) return { ok: false, message: `"${raw}" is not a host; put ports in "ports"` };
  const lower = raw.toLowerCase();
  if (lower !== raw)
    return { ok: false, message: `host "${raw}" has upper case; use lower case: "${lower}"` };
  if (raw.endsWith(".")) {
    return {
      ok: false,
      message: `host "${raw}" ends with '.'; remove the trailing dot: "${raw.slice(0, -1)}"`,
    };
  }

  if (raw.includes("*")) {
    const suffix = raw.slice(2);
    if (!raw.startsWith("*.") || suffix.includes("*")) {
      const labels = raw.split(".");
      const rest = labels.slice(labels.findLastIndex((label) => label.includes("*")) + 1);
      const suggestion = rest.length >= 2 ? `"*.${rest.join(".")}"` : WILDCARD_EXAMPLE;
      return {
        ok: false,
        message: `"${raw}" is not a valid wildcard; '*' may only be a whole first label followed by '.'; use ${suggestion}`,
      };
    }
    const parsed = canonicalise(suffix);
    if (parsed.kind === "ip")
      return { ok: false, message: `"${raw}" wildcards an IP literal; name the host` };
    if (parsed.kind === "invalid") return { ok: false, message: parsed.message };
    if (!suffix.includes(".")) {
      return {
        ok: false,
        message: `"${raw}" wildcards a whole top-level domain; a wildcard needs at least two labels after "*.", such as ${WILDCARD_EXAMPLE}`,
      };
    }
    return { ok: true, value: { kind: "wildcard", suffix } };
  }

  const parsed = whole;
  if (parsed.kind === "invalid") return { ok: false, message: parsed.message };
  if (parsed.kind === "ip") return { ok: false, message: `"${raw}" is an IP literal; name the host` };
  return { ok: true, value: { kind: "exact", name: parsed.name } };
}

/** The pattern as written in a policy (`api.example.com` or `*.example.com`). */
export function hostPatternString(pattern: HostPattern): string {
  return pattern.kind === "exact" ? pattern.name : `*.${pattern.suffix}`;
}

/** Whether canonical DNS name `name` matches `pattern`; a wildcard never matches its apex. */
export function hostMatches(pattern: HostPattern, name: string): boolean {
  if (pattern.kind === "exact") return name === pattern.name;
  return name.length > pattern.suffix.length + 1 && name.endsWith(`.${pattern.suffix}`);
}

/**
 * Whether every name `inner` can match is also matched by `outer`: an exact name by any pattern
 * matching it, a wildcard only by an equal or broader wildcard.
 */
export function hostPatternCovers(outer: HostPattern, inner: HostPattern): boolean {
  if (inner.kind === "exact") return hostMatches(outer, inner.name);
  return outer.kind === "wildcard" && (inner.suffix === outer.suffix || hostMatches(outer, inner.suffix));
}
