// Request paths and path patterns. A rule's path is only meaningful if every spelling of the
// same resource reduces to one string before matching (`/a/%2e%2E/b` is `/b`), and matching
// must stay linear: the path is chosen by the agent, so no backtracking regex sees it.

/** A request-target split and normalised, or why it is refused. */
export type NormalizedPath = { ok: true; path: string; query: string } | { ok: false; message: string };

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const HEX2 = /^[0-9A-Fa-f]{2}$/;

function badCharMessage(text: string, what: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f)
      return `${what} contains a control character (NUL, CR, LF, …); remove it`;
    if (code === 0x20) return `${what} contains a space; percent-encode it as %20`;
    if (code > 0x7e) return `${what} contains a non-ASCII character; percent-encode it`;
    if (code === 0x5c) return `${what} contains a backslash; use '/' or percent-encode it as %5C`;
    if (code === 0x23) return `${what} contains '#'; a fragment is never sent, remove it`;
  }
  return undefined;
}

function escapeProblem(text: string, what: string): string | undefined {
  for (let i = text.indexOf("%"); i >= 0; i = text.indexOf("%", i + 1)) {
    const hex = text.slice(i + 1, i + 3);
    if (!HEX2.test(hex)) return `${what} has a malformed percent-escape; write '%' as %25`;
    if (hex === "00") return `${what} contains %00 (NUL); remove it`;
  }
  return undefined;
}

// RFC 3986 §5.2.4 on whole segments: equivalent to the spec's string algorithm, but linear.
function removeDotSegments(path: string): string {
  const segments = path.split("/").slice(1);
  const out: string[] = [];
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === "." || segment === "..") {
      if (segment === "..") out.pop();
      if (last) out.push("");
      return;
    }
    out.push(segment);
  });
  return `/${out.join("/")}`;
}

// What a lenient upstream may treat as a separator inside one of our segments (escapes are
// upper-cased by then), and where it may cut off a ';parameters' suffix: Tomcat, Jetty and Spring
// strip ';…' before resolving dot segments; others decode %2F and %5C first. (A literal '\' never
// gets this far: badCharMessage refuses it.)
const LENIENT_SEPARATOR = /%2F|%5C/;
const PARAMETERS = /;|%3B/;

/**
 * The first segment of `decodedPath` that is not itself a dot segment but contains one a lenient
 * upstream would resolve ("..;", "..;x=1", "..%2F", ".%5C"), with the fix; undefined if none.
 * Plain "." and ".." are not reported: they are resolved here, the same way upstreams do.
 */
function hiddenDotSegmentProblem(decodedPath: string): string | undefined {
  for (const segment of decodedPath.split("/")) {
    if (segment === "." || segment === "..") continue;
    for (const piece of segment.split(LENIENT_SEPARATOR)) {
      const bare = piece.split(PARAMETERS)[0];
      if (bare === "." || bare === "..") {
        return (
          `path segment "${segment}" is the dot segment "${bare}" to servers that strip ';' parameters ` +
          `or decode %2F and %5C (Tomcat, Spring, …), so it cannot be matched safely; ` +
          `send the path it resolves to instead`
        );
      }
    }
  }
  return undefined;
}

/**
 * Splits an origin-form request-target into normalised path and raw query (without '?'):
 * unreserved escapes decoded, other escapes' hex upper-cased, dot-segments resolved (also when
 * percent-encoded). Refuses fragments, controls, backslashes, non-ASCII, bad escapes and %00, and
 * dot segments hidden behind ';parameters' or an encoded '/' or '\' (see hiddenDotSegmentProblem):
 * this sidecar would match them as ordinary segments while the upstream walks up the tree.
 */
export function normalizePath(target: string): NormalizedPath {
  if (typeof target !== "string" || !target.startsWith("/")) {
    return {
      ok: false,
      message: "request path must start with '/'; send an origin-form target such as /index.html",
    };
  }
  const problem = badCharMessage(target, "request target") ?? escapeProblem(target, "request target");
  if (problem !== undefined) return { ok: false, message: problem };

  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  let decoded = "";
  for (let i = 0; i < rawPath.length; i++) {
    const ch = rawPath.charAt(i);
    if (ch !== "%") {
      decoded += ch;
      continue;
    }
    const hex = rawPath.slice(i + 1, i + 3);
    const byte = String.fromCharCode(parseInt(hex, 16));
    decoded += UNRESERVED.test(byte) ? byte : `%${hex.toUpperCase()}`;
    i += 2;
  }
  const hidden = hiddenDotSegmentProblem(decoded);
  if (hidden !== undefined) return { ok: false, message: hidden };
  return { ok: true, path: removeDotSegments(decoded), query };
}

const STAR = -1;
const GLOBSTAR = -2;
const SLASH = 0x2f;
const MAX_PATTERN_LENGTH = 1024;

/**
 * A compiled path pattern: `*` matches within one segment, `**` (a whole segment) across
 * segments. `length` (characters of the pattern) ranks longer patterns first.
 */
export interface PathPattern {
  source: string;
  length: number;
  /** Character codes, with STAR/GLOBSTAR as negative codes; matched by NFA simulation. */
  tokens: readonly number[];
  /** The literal text before the first wildcard (the whole pattern when it has none). */
  prefix: string;
  /**
   * How pathMatches decides, cheapest first: `literal` (no wildcard: equality), `globstar-tail`
   * (prefix + "**": the path starts with the prefix), `star-tail` (prefix + "*": it starts with the
   * prefix and no '/' follows), `nfa` (anything else: the prefix first, then the simulation).
   */
  shape: "literal" | "globstar-tail" | "star-tail" | "nfa";
}

/** A path pattern compiled, or why it is refused with the fix. */
export type PathPatternResult = { ok: true; value: PathPattern } | { ok: false; message: string };

function segmentProblem(segment: string): string | undefined {
  if (segment === "." || segment === "..") {
    return `dot segment "${segment}"; paths are matched after dot segments are resolved, so write the resolved path`;
  }
  if (segment.includes("***"))
    return `"***" is not a wildcard; use "*" (within a segment) or "**" (across segments)`;
  if (segment.includes("**") && segment !== "**") {
    return `"**" must be a whole segment, as in "/a/**/b" or "/a/**"; use "*" to match within a segment`;
  }
  return undefined;
}

function patternEscapeProblem(pattern: string): string | undefined {
  for (let i = pattern.indexOf("%"); i >= 0; i = pattern.indexOf("%", i + 1)) {
    const hex = pattern.slice(i + 1, i + 3);
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (UNRESERVED.test(ch))
      return `"%${hex}" encodes '${ch}', which paths are matched decoded; write '${ch}'`;
    if (hex !== hex.toUpperCase())
      return `percent-escapes are matched upper-case; write "%${hex.toUpperCase()}"`;
  }
  return undefined;
}

/** Compiles a policy path pattern (already normalised, starting with '/'). Never throws. */
export function compilePathPattern(pattern: string): PathPatternResult {
  if (typeof pattern !== "string" || !pattern.startsWith("/")) {
    return { ok: false, message: "a path pattern starts with '/'; write e.g. \"/repos/**\"" };
  }
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return {
      ok: false,
      message: `path pattern is longer than ${MAX_PATTERN_LENGTH} characters; shorten it with "*"`,
    };
  }
  if (pattern.includes("?"))
    return { ok: false, message: "path patterns never match the query; remove '?' and what follows" };
  const problem =
    badCharMessage(pattern, "path pattern") ??
    escapeProblem(pattern, "path pattern") ??
    patternEscapeProblem(pattern) ??
    pattern
      .split("/")
      .slice(1)
      .map(segmentProblem)
      .find((m) => m !== undefined);
  if (problem !== undefined) return { ok: false, message: problem };

  const tokens: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern.startsWith("**", i)) {
      tokens.push(GLOBSTAR);
      i++;
    } else {
      tokens.push(pattern.charAt(i) === "*" ? STAR : pattern.charCodeAt(i));
    }
  }
  const star = pattern.indexOf("*");
  const prefix = star === -1 ? pattern : pattern.slice(0, star);
  const tail = pattern.slice(prefix.length);
  const shape =
    star === -1 ? "literal" : tail === "**" ? "globstar-tail" : tail === "*" ? "star-tail" : "nfa";
  return { ok: true, value: { source: pattern, length: pattern.length, tokens, prefix, shape } };
}

// The NFA's two state sets, kept between calls (grown when a longer pattern comes): pathMatches
// runs per rule per request, and two typed arrays per call were most of its time.
let scratchCurrent = new Uint8Array(64);
let scratchNext = new Uint8Array(64);

function closeOverWildcards(tokens: readonly number[], states: Uint8Array): void {
  // A wildcard may match nothing, so being before it means also being after it.
  for (let s = 0; s < tokens.length; s++) {
    if (states[s] === 1 && (tokens[s] ?? 0) < 0) states[s + 1] = 1;
  }
}

/** Whether normalised `path` matches `pattern`; O(path × pattern), whatever the input. */
export function pathMatches(pattern: PathPattern, path: string): boolean {
  switch (pattern.shape) {
    case "literal":
      return path === pattern.source;
    case "globstar-tail":
      return path.startsWith(pattern.prefix);
    case "star-tail":
      return path.startsWith(pattern.prefix) && !path.includes("/", pattern.prefix.length);
    case "nfa":
      return path.startsWith(pattern.prefix) && nfaMatches(pattern.tokens, path);
  }
}

function nfaMatches(tokens: readonly number[], path: string): boolean {
  if (scratchCurrent.length < tokens.length + 1) {
    scratchCurrent = new Uint8Array(tokens.length + 1);
    scratchNext = new Uint8Array(tokens.length + 1);
  }
  const states = tokens.length + 1;
  let current = scratchCurrent;
  let next = scratchNext;
  current.fill(0, 0, states);
  current[0] = 1;
  closeOverWildcards(tokens, current);
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    next.fill(0, 0, states);
    let alive = false;
    for (let s = 0; s < tokens.length; s++) {
      if (current[s] !== 1) continue;
      const t = tokens[s];
      if (t === GLOBSTAR || (t === STAR && c !== SLASH)) {
        next[s] = 1;
        alive = true;
      } else if (t === c) {
        next[s + 1] = 1;
        alive = true;
      }
    }
    if (!alive) return false;
    closeOverWildcards(tokens, next);
    [current, next] = [next, current];
  }
  return current[tokens.length] === 1;
}
