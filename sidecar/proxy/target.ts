// Reducing a request's addressing (absolute URI, Host header, CONNECT authority, SNI) to one host
// and port, refusing every ambiguity rather than picking a side. Pure: no sockets, no verdicts.
import { canonicalHost, type Entry } from "../policy/index.ts";

/** A parsed authority: host as written (unbracketed IPv6), port when given. */
export interface Authority {
  host: string;
  port?: number;
}

/** Parses `host[:port]` / `[v6][:port]`; userinfo, empty hosts and bad ports are errors. */
export function parseAuthority(
  text: string,
): { ok: true; value: Authority } | { ok: false; message: string } {
  if (text.length === 0) return { ok: false, message: "empty host" };
  if (text.includes("@")) return { ok: false, message: "userinfo (@) is not allowed in a request target" };
  let host: string;
  let rest: string;
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end === -1) return { ok: false, message: `unterminated IPv6 literal in "${text}"` };
    host = text.slice(1, end);
    rest = text.slice(end + 1);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon !== -1 && text.indexOf(":") !== colon) return { ok: false, message: `bad authority "${text}"` };
    host = colon === -1 ? text : text.slice(0, colon);
    rest = colon === -1 ? "" : text.slice(colon);
  }
  if (host.length === 0) return { ok: false, message: "empty host" };
  if (rest === "") return { ok: true, value: { host } };
  if (!/^:[0-9]{1,5}$/.test(rest)) return { ok: false, message: `bad port in "${text}"` };
  const port = Number(rest.slice(1));
  if (port < 1 || port > 65535) return { ok: false, message: `port ${port} is out of range` };
  return { ok: true, value: { host, port } };
}

/** An absolute-form request target split into authority and origin-form path+query. */
export interface AbsoluteTarget {
  scheme: "http" | "https";
  authority: Authority;
  /** Path and query, always starting with '/'. */
  pathAndQuery: string;
}

/** Parses `http://authority/path?query` (scheme case-insensitive); anything else is an error. */
export function parseAbsoluteTarget(
  url: string,
): { ok: true; value: AbsoluteTarget } | { ok: false; message: string } {
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(url);
  if (!match) return { ok: false, message: "expected an absolute-form request target (http://host/path)" };
  const scheme = (match[1] ?? "").toLowerCase();
  if (scheme !== "http" && scheme !== "https")
    return { ok: false, message: `scheme "${scheme}" is not proxied; use http:// or CONNECT for https` };
  const authority = parseAuthority(match[2] ?? "");
  if (!authority.ok) return authority;
  let pathAndQuery = match[3] ?? "";
  if (pathAndQuery.startsWith("#")) return { ok: false, message: "fragments are not sent in requests" };
  if (!pathAndQuery.startsWith("/")) pathAndQuery = "/" + pathAndQuery;
  return { ok: true, value: { scheme, authority: authority.value, pathAndQuery } };
}

/** The values of every header called `name` (case-insensitive) in a flat rawHeaders list. */
export function headerValues(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? "").toLowerCase() === name) out.push(rawHeaders[i + 1] ?? "");
  }
  return out;
}

/** How the connection a request arrived on was opened: what its addressing is checked against. */
export interface TargetContext {
  entry: Entry;
  scheme: "http" | "https";
  /**
   * What the connection is bound to: the CONNECT target or SNI name (host), and the port it was
   * opened to (port; from CONNECT or the capture rules). Each request on it must match both.
   */
  bound?: { host?: string; port: number };
}

/** The parts of a request its target is read from (an IncomingMessage has both). */
export interface RequestLine {
  url?: string | undefined;
  rawHeaders: string[];
}

/** One canonical host and port with the origin-form path, or why the addressing is refused. */
export type RequestTarget =
  | { ok: true; host: string; port: number; pathAndQuery: string }
  | { ok: false; reason: "InvalidRequest" | "HostMismatch"; message: string };

/**
 * Reduces a request's addressing to one host and port; any disagreement is a refusal:
 * 1. more than one Host header: InvalidRequest;
 * 2. origin form (`/path`): refused on the explicit proxy, else the Host header names the target;
 * 3. absolute form: http(s) only, the connection's scheme, and a Host header, when sent, naming
 *    the same canonical host and port (HostMismatch otherwise);
 * 4. the authority parses (no userinfo, a port in range) and its host is canonical;
 * 5. on a bound connection (CONNECT, SNI, captured port) host and port equal the binding.
 */
export function requestTarget(req: RequestLine, ctx: TargetContext): RequestTarget {
  const invalid = (message: string): RequestTarget => ({ ok: false, reason: "InvalidRequest", message });
  const hosts = headerValues(req.rawHeaders, "host");
  if (hosts.length > 1) return invalid("more than one Host header");
  const defaultPort = ctx.scheme === "https" ? 443 : 80;
  const url = req.url ?? "";
  let authorityText: string;
  let pathAndQuery: string;
  if (url.startsWith("/")) {
    if (ctx.entry === "http")
      return invalid("send requests to the proxy in absolute form (http://host/path)");
    if (hosts[0] === undefined) return invalid("missing Host header");
    authorityText = hosts[0];
    pathAndQuery = url;
  } else {
    const absolute = parseAbsoluteTarget(url);
    if (!absolute.ok) return invalid(absolute.message);
    if (absolute.value.scheme !== ctx.scheme)
      return invalid(
        `an ${absolute.value.scheme}:// target on an ${ctx.scheme} connection; use CONNECT for https`,
      );
    const { host, port } = absolute.value.authority;
    authorityText = port === undefined ? host : `${host.includes(":") ? `[${host}]` : host}:${port}`;
    pathAndQuery = absolute.value.pathAndQuery;
    const hostHeader = hosts[0];
    if (hostHeader !== undefined && !sameAuthority(hostHeader, authorityText, defaultPort))
      return { ok: false, reason: "HostMismatch", message: "the Host header differs from the request URI" };
  }
  const authority = parseAuthority(authorityText);
  if (!authority.ok) return invalid(authority.message);
  const canonical = canonicalHost(authority.value.host);
  if (canonical.kind === "invalid") return invalid(canonical.message);
  const host = canonical.kind === "ip" ? canonical.address : canonical.name;
  const port = authority.value.port ?? defaultPort;
  if (ctx.bound && ((ctx.bound.host !== undefined && ctx.bound.host !== host) || ctx.bound.port !== port))
    return {
      ok: false,
      reason: "HostMismatch",
      message: `Host ${host}:${port} differs from the connection's target ${ctx.bound.host ?? "(captured)"}:${ctx.bound.port}`,
    };
  return { ok: true, host, port, pathAndQuery };
}

function sameAuthority(a: string, b: string, defaultPort: number): boolean {
  const pa = parseAuthority(a);
  const pb = parseAuthority(b);
  if (!pa.ok || !pb.ok) return false;
  const ca = canonicalHost(pa.value.host);
  const cb = canonicalHost(pb.value.host);
  const name = (c: typeof ca): string => (c.kind === "ip" ? c.address : c.kind === "name" ? c.name : "");
  return (
    ca.kind !== "invalid" &&
    name(ca) === name(cb) &&
    (pa.value.port ?? defaultPort) === (pb.value.port ?? defaultPort)
  );
}
