// Reducing a request's addressing (absolute URI, Host header, CONNECT authority) to one host and
// port, refusing every ambiguity rather than picking a side.

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
