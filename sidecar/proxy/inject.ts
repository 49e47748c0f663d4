// Attaching a credential to an outgoing request, and the header hygiene around it. Pure functions
// over header lists so the rules are table-tested without sockets.
import { SIGV4_HEADERS } from "../policy/index.ts";
import type { SigV4Keys } from "./sigv4.ts";
import type { CompiledCredential } from "../policy/index.ts";
import { encodedForms } from "./scrub-forms.ts";
import { scrubPatterns } from "./scrub.ts";

/**
 * Headers that never cross the proxy, in either direction. Most describe one hop (RFC 9110
 * §7.6.1); the proxy-* ones are addressed to a proxy; Host is rewritten, not hop-by-hop.
 */
const NEVER_FORWARDED = new Set([
  // Hop-by-hop: about this connection only (the headers it names are dropped too).
  "connection",
  // Hop-by-hop: this connection's keep-alive parameters.
  "keep-alive",
  // The Connection header old clients send a proxy: hop-by-hop in practice.
  "proxy-connection",
  // The agent's credentials for a proxy: never the upstream's to see (THREATS, "Credentials").
  "proxy-authorization",
  // A proxy's challenge to its client: an upstream's would ask the agent for proxy credentials.
  "proxy-authenticate",
  // Hop-by-hop: the transfer-codings this connection accepts; Node frames each side itself.
  "te",
  // Announces trailers, which the sidecar never relays.
  "trailer",
  // Hop-by-hop framing: Node frames the body again on each side.
  "transfer-encoding",
  // A protocol switch on this connection: only WebSocket upgrades are relayed, and the upstream
  // hop writes its own Upgrade (websocket.ts); every other upgrade is refused.
  "upgrade",
  // Not hop-by-hop: the sidecar writes the canonical Host of the target it decided on itself.
  "host",
  // An expectation the sidecar meets itself: the agent already had its 100 Continue from the
  // sidecar's server; the upstream gets the body at once (its own 100 would not be relayed).
  "expect",
]);

/** [name, value] pairs in their original order and case. */
export type HeaderList = [string, string][];

/** Pairs rawHeaders (flat name/value list) into a HeaderList. */
export function pairHeaders(raw: string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] ?? "", raw[i + 1] ?? ""]);
  return out;
}

/**
 * Drops the headers that never cross the proxy (NEVER_FORWARDED), every header the Connection
 * header names, and `extraDrop` (lower-case names), case-insensitively and for every duplicate.
 */
export function forwardableHeaders(headers: HeaderList, extraDrop: Iterable<string> = []): HeaderList {
  // Called twice per request: no copy of NEVER_FORWARDED, and a set only when more is dropped.
  let drop: Set<string> | undefined;
  for (const name of extraDrop) (drop ??= new Set()).add(name.toLowerCase());
  for (const [name, value] of headers) {
    if (name.length !== 10 || name.toLowerCase() !== "connection") continue;
    for (const token of value.split(",")) (drop ??= new Set()).add(token.trim().toLowerCase());
  }
  return headers.filter(([name]) => {
    const lower = name.toLowerCase();
    return !NEVER_FORWARDED.has(lower) && drop?.has(lower) !== true;
  });
}

/**
 * Drops headers that make claims about the client or the hops before it (`Forwarded`,
 * `X-Forwarded-*`, `X-Real-IP`): the agent could forge them, and upstreams trust them for access
 * decisions and logs. The boundary vouches for no such claim, so none crosses it.
 */
export function withoutClientClaims(headers: HeaderList): HeaderList {
  return headers.filter(([name]) => {
    const lower = name.toLowerCase();
    return lower !== "forwarded" && lower !== "x-real-ip" && !lower.startsWith("x-forwarded-");
  });
}

/** A credential value prepared for one request: what to set, and every form to scrub on the way back. */
export interface PreparedInjection {
  /** Header to add (after removing every agent-supplied header of that name). */
  header?: [string, string];
  /** Query parameter to add (after removing every agent-supplied parameter of that name). */
  query?: [string, string];
  /** Every string put on the wire that carries the value, the value first. */
  sent: string[];
  /** The scrub patterns for `sent` (see scrub-forms.ts), ready for scrubText / ScrubStream. */
  patterns: Buffer[];
  /** awsSigV4: the request is signed with these keys instead (sigv4.ts); region/service may be left to the host. */
  sigv4?: Omit<SigV4Keys, "region" | "service"> & {
    region?: string;
    service?: string;
    unsignedPayload: boolean;
  };
}

/** Why a secret value cannot be sent (it would let the agent or an upstream split the request). */
export function unsafeValueReason(value: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value))
    return "the secret value contains control characters (CR, LF, NUL…)";
  if (value.length === 0) return "the secret value is empty";
  return undefined;
}

/** Builds the injection for `credential` with `value`; the caller has checked unsafeValueReason. */
export function prepareInjection(credential: CompiledCredential, value: string): PreparedInjection {
  const injection = credential.injection;
  const prepared = (sent: string[], set: Pick<PreparedInjection, "header" | "query">): PreparedInjection => ({
    ...set,
    sent,
    patterns: scrubPatterns(encodedForms(sent)),
  });
  switch (injection.kind) {
    case "header": {
      const headerValue = injection.valuePrefix + value;
      return prepared([value, headerValue], { header: [injection.name, headerValue] });
    }
    case "basicAuth": {
      const pair = `${injection.username}:${value}`;
      const token = Buffer.from(pair).toString("base64");
      return prepared([value, pair, token, `Basic ${token}`], {
        header: ["Authorization", `Basic ${token}`],
      });
    }
    case "queryParam": {
      const pair = `${encodeURIComponent(injection.name)}=${encodeURIComponent(value)}`;
      return prepared([value, pair], { query: [injection.name, value] });
    }
    case "awsSigV4":
      // Nothing is attached as is: the gate adds the keys and each request is signed (sigv4.ts).
      return prepared([value], {});
  }
}

/**
 * The injection of an awsSigV4 credential: nothing attached as is, the keys to sign with, and the
 * scrub patterns of what is secret or sent (the secret key, never sent; the session token, sent).
 */
export function prepareSigV4(
  credential: CompiledCredential,
  keys: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
): PreparedInjection {
  const injection = credential.injection;
  const sent = [keys.secretAccessKey, ...(keys.sessionToken !== undefined ? [keys.sessionToken] : [])];
  const sigv4: NonNullable<PreparedInjection["sigv4"]> = {
    ...keys,
    unsignedPayload: injection.kind === "awsSigV4" && injection.unsignedPayload,
  };
  if (injection.kind === "awsSigV4" && injection.region !== undefined) sigv4.region = injection.region;
  if (injection.kind === "awsSigV4" && injection.service !== undefined) sigv4.service = injection.service;
  return { sent, patterns: scrubPatterns(encodedForms(sent)), sigv4 };
}

/** The lower-case header names an injection sets (removed from the agent's request first). */
export function injectedHeaderNames(credential: CompiledCredential): string[] {
  switch (credential.injection.kind) {
    case "header":
      return [credential.injection.name.toLowerCase()];
    case "basicAuth":
      return ["authorization"];
    case "queryParam":
      return [];
    case "awsSigV4":
      return [...SIGV4_HEADERS];
  }
}

/** Removes every `name` parameter from a raw query string and appends `name=value` when given. */
export function rewriteQuery(query: string, name: string, value?: string): string {
  const kept = query
    .split("&")
    .filter((pair) => pair !== "")
    .filter((pair) => {
      const rawName = pair.split("=", 1)[0] ?? "";
      let decoded: string;
      try {
        decoded = decodeURIComponent(rawName.replace(/\+/g, " "));
      } catch {
        // An undecodable name cannot be the parameter we set, but an upstream might decode it
        // leniently: drop it rather than guess.
        return false;
      }
      return decoded !== name;
    });
  if (value !== undefined) kept.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return kept.join("&");
}
