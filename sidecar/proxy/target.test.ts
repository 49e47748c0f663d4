// requestTarget as a table, one row a request (smokescreen's style): how the connection was opened,
// the request target, the Host headers sent, and the whole answer: a target, or the refusal.
import { expect } from "chai";
import { requestTarget, type RequestTarget, type TargetContext } from "./target.ts";

/** The explicit proxy (HTTP_PROXY): absolute form only. */
const EXPLICIT: TargetContext = { entry: "http", scheme: "http" };
/** A transparent HTTP connection the capture rules recorded as port 80: no host bound. */
const CAPTURED: TargetContext = { entry: "transparent-http", scheme: "http", bound: { port: 80 } };
/** Plain HTTP inside `CONNECT api.example.com:80`. */
const CONNECT: TargetContext = {
  entry: "connect",
  scheme: "http",
  bound: { host: "api.example.com", port: 80 },
};
/** Intercepted TLS whose SNI (or CONNECT target, which must equal it) is api.example.com:443. */
const SNI: TargetContext = {
  entry: "transparent-tls",
  scheme: "https",
  bound: { host: "api.example.com", port: 443 },
};

interface Row {
  name: string;
  ctx: TargetContext;
  url: string;
  /** Host header values, in order; none when absent. */
  host?: string[];
  want: RequestTarget;
}

const ok = (host: string, port: number, pathAndQuery: string): RequestTarget => ({
  ok: true,
  host,
  port,
  pathAndQuery,
});
const invalid = (message: string): RequestTarget => ({ ok: false, reason: "InvalidRequest", message });
const mismatch = (message: string): RequestTarget => ({ ok: false, reason: "HostMismatch", message });
const URI_MISMATCH = mismatch("the Host header differs from the request URI");
const ABSOLUTE_ONLY = "expected an absolute-form request target (http://host/path)";

// prettier-ignore
const rows: Row[] = [
  // The explicit proxy: absolute form; a Host header, when sent, must name the same authority.
  { name: "absolute form, no Host", ctx: EXPLICIT, url: "http://api.example.com/v1?q=1",
    want: ok("api.example.com", 80, "/v1?q=1") },
  { name: "absolute form, same Host", ctx: EXPLICIT, url: "http://api.example.com/v1", host: ["api.example.com"],
    want: ok("api.example.com", 80, "/v1") },
  { name: "Host names the default port the URI leaves out", ctx: EXPLICIT, url: "http://api.example.com/", host: ["api.example.com:80"],
    want: ok("api.example.com", 80, "/") },
  { name: "case and trailing dot are canonicalised on both sides", ctx: EXPLICIT, url: "http://API.Example.COM./x", host: ["api.example.com:80"],
    want: ok("api.example.com", 80, "/x") },
  { name: "scheme is case-insensitive, empty path is /", ctx: EXPLICIT, url: "HTTP://api.example.com",
    want: ok("api.example.com", 80, "/") },
  { name: "query without a path", ctx: EXPLICIT, url: "http://api.example.com?x=1",
    want: ok("api.example.com", 80, "/?x=1") },
  { name: "explicit port", ctx: EXPLICIT, url: "http://api.example.com:8080/", host: ["api.example.com:8080"],
    want: ok("api.example.com", 8080, "/") },
  { name: "Host differs from the URI", ctx: EXPLICIT, url: "http://api.example.com/", host: ["evil.example.com"],
    want: URI_MISMATCH },
  { name: "Host port differs from the URI's default", ctx: EXPLICIT, url: "http://api.example.com/", host: ["api.example.com:8080"],
    want: URI_MISMATCH },
  { name: "URI port differs from the Host's default", ctx: EXPLICIT, url: "http://api.example.com:8080/", host: ["api.example.com"],
    want: URI_MISMATCH },
  { name: "an unparsable Host against a good URI is a mismatch", ctx: EXPLICIT, url: "http://api.example.com/", host: ["bad host"],
    want: URI_MISMATCH },
  { name: "an empty Host against a good URI is a mismatch", ctx: EXPLICIT, url: "http://api.example.com/", host: [""],
    want: URI_MISMATCH },
  { name: "a bad URI host that the Host repeats is a mismatch, not invalid", ctx: EXPLICIT, url: "http://bad_host!/", host: ["bad_host!"],
    want: URI_MISMATCH },
  { name: "a bad URI host alone is invalid", ctx: EXPLICIT, url: "http://bad_host!/",
    want: invalid("character '!' is not allowed in a host; use letters, digits, '-' and '.'") },
  { name: "two Host headers", ctx: EXPLICIT, url: "http://api.example.com/", host: ["api.example.com", "api.example.com"],
    want: invalid("more than one Host header") },
  { name: "origin form on the explicit proxy", ctx: EXPLICIT, url: "/v1", host: ["api.example.com"],
    want: invalid("send requests to the proxy in absolute form (http://host/path)") },
  { name: "https:// on the explicit proxy (CONNECT is the way)", ctx: EXPLICIT, url: "https://api.example.com/",
    want: invalid("an https:// target on an http connection; use CONNECT for https") },
  { name: "another scheme", ctx: EXPLICIT, url: "ftp://api.example.com/",
    want: invalid('scheme "ftp" is not proxied; use http:// or CONNECT for https') },
  { name: "asterisk form", ctx: EXPLICIT, url: "*",
    want: invalid(ABSOLUTE_ONLY) },
  { name: "empty request target", ctx: EXPLICIT, url: "",
    want: invalid(ABSOLUTE_ONLY) },
  { name: "garbage request target", ctx: EXPLICIT, url: "not a url",
    want: invalid(ABSOLUTE_ONLY) },
  { name: "empty authority", ctx: EXPLICIT, url: "http:///x",
    want: invalid("empty host") },
  { name: "fragment", ctx: EXPLICIT, url: "http://api.example.com#frag",
    want: invalid("fragments are not sent in requests") },
  { name: "userinfo in the URI", ctx: EXPLICIT, url: "http://user:pw@api.example.com/",
    want: invalid("userinfo (@) is not allowed in a request target") },
  { name: "percent-encoded host", ctx: EXPLICIT, url: "http://api%2eexample.com/",
    want: invalid("'%' is not allowed in a host: percent-encoding is never decoded; send the plain name") },
  // Ports.
  { name: "empty port", ctx: EXPLICIT, url: "http://api.example.com:/",
    want: invalid('bad port in "api.example.com:"') },
  { name: "port 0", ctx: EXPLICIT, url: "http://api.example.com:0/",
    want: invalid("port 0 is out of range") },
  { name: "port 65536", ctx: EXPLICIT, url: "http://api.example.com:65536/",
    want: invalid("port 65536 is out of range") },
  { name: "six-digit port", ctx: EXPLICIT, url: "http://api.example.com:123456/",
    want: invalid('bad port in "api.example.com:123456"') },
  { name: "port with letters", ctx: EXPLICIT, url: "http://api.example.com:80a/",
    want: invalid('bad port in "api.example.com:80a"') },
  // IP literals: canonical, whatever the spelling (the gate then checks the address).
  { name: "IPv6 literal with port, Host spelled differently", ctx: EXPLICIT, url: "http://[2001:DB8:0::1]:8080/", host: ["[2001:db8::1]:8080"],
    want: ok("2001:db8::1", 8080, "/") },
  { name: "IPv6 literal without brackets", ctx: EXPLICIT, url: "http://2001:db8::1/",
    want: invalid('bad authority "2001:db8::1"') },
  { name: "unterminated IPv6 literal", ctx: EXPLICIT, url: "http://[2001:db8::1/",
    want: invalid('unterminated IPv6 literal in "[2001:db8::1"') },
  { name: "decimal IPv4 in the URI, dotted in Host", ctx: EXPLICIT, url: "http://2130706433/", host: ["127.0.0.1"],
    want: ok("127.0.0.1", 80, "/") },
  { name: "hex and short IPv4", ctx: EXPLICIT, url: "http://0x7f.1/",
    want: ok("127.0.0.1", 80, "/") },
  // A captured connection: origin form, the Host names the host, the capture rules the port.
  { name: "captured: origin form with Host", ctx: CAPTURED, url: "/x", host: ["api.example.com"],
    want: ok("api.example.com", 80, "/x") },
  { name: "captured: absolute form is read too", ctx: CAPTURED, url: "http://api.example.com/x",
    want: ok("api.example.com", 80, "/x") },
  { name: "captured: a path starting // is a path", ctx: CAPTURED, url: "//evil.example.com/x", host: ["api.example.com"],
    want: ok("api.example.com", 80, "//evil.example.com/x") },
  { name: "captured: no Host", ctx: CAPTURED, url: "/x",
    want: invalid("missing Host header") },
  { name: "captured: Host port differs from the captured port", ctx: CAPTURED, url: "/x", host: ["api.example.com:8080"],
    want: mismatch("Host api.example.com:8080 differs from the connection's target (captured):80") },
  { name: "captured: IPv6 literal Host", ctx: CAPTURED, url: "/x", host: ["[::1]"],
    want: ok("::1", 80, "/x") },
  { name: "captured: short IPv4 Host", ctx: CAPTURED, url: "/x", host: ["1.2.3"],
    want: ok("1.2.0.3", 80, "/x") },
  { name: "captured: userinfo in Host", ctx: CAPTURED, url: "/x", host: ["user@api.example.com"],
    want: invalid("userinfo (@) is not allowed in a request target") },
  { name: "captured: empty Host", ctx: CAPTURED, url: "/x", host: [""],
    want: invalid("empty host") },
  { name: "captured: Host with only a port", ctx: CAPTURED, url: "/x", host: [":80"],
    want: invalid("empty host") },
  { name: "captured: Host with an empty port", ctx: CAPTURED, url: "/x", host: ["api.example.com:"],
    want: invalid('bad port in "api.example.com:"') },
  { name: "captured: two Host headers", ctx: CAPTURED, url: "/x", host: ["a.example.com", "b.example.com"],
    want: invalid("more than one Host header") },
  // Inside CONNECT: the request must name the CONNECT authority.
  { name: "CONNECT: Host equals the CONNECT target", ctx: CONNECT, url: "/x", host: ["api.example.com"],
    want: ok("api.example.com", 80, "/x") },
  { name: "CONNECT: Host differs from the CONNECT target", ctx: CONNECT, url: "/x", host: ["other.example.com"],
    want: mismatch("Host other.example.com:80 differs from the connection's target api.example.com:80") },
  { name: "CONNECT: absolute URI and Host agree, but not with the target", ctx: CONNECT, url: "http://other.example.com/x", host: ["other.example.com"],
    want: mismatch("Host other.example.com:80 differs from the connection's target api.example.com:80") },
  { name: "CONNECT: Host port differs from the CONNECT port", ctx: CONNECT, url: "/x", host: ["api.example.com:8080"],
    want: mismatch("Host api.example.com:8080 differs from the connection's target api.example.com:80") },
  // Intercepted TLS: the request must name the SNI, on the tunnel's port.
  { name: "SNI: Host equals the SNI (case, trailing dot)", ctx: SNI, url: "/x", host: ["API.example.com."],
    want: ok("api.example.com", 443, "/x") },
  { name: "SNI: Host names the default port", ctx: SNI, url: "/x", host: ["api.example.com:443"],
    want: ok("api.example.com", 443, "/x") },
  { name: "SNI: Host differs from the SNI", ctx: SNI, url: "/x", host: ["other.example.com"],
    want: mismatch("Host other.example.com:443 differs from the connection's target api.example.com:443") },
  { name: "SNI: Host port differs", ctx: SNI, url: "/x", host: ["api.example.com:8443"],
    want: mismatch("Host api.example.com:8443 differs from the connection's target api.example.com:443") },
  { name: "SNI: https:// absolute form", ctx: SNI, url: "https://api.example.com/x",
    want: ok("api.example.com", 443, "/x") },
  { name: "SNI: https:// URI and a Host that differs", ctx: SNI, url: "https://api.example.com/x", host: ["other.example.com"],
    want: URI_MISMATCH },
  { name: "SNI: http:// on a TLS connection", ctx: SNI, url: "http://api.example.com/x",
    want: invalid("an http:// target on an https connection; use CONNECT for https") },
];

describe("requestTarget: one host and port from the request's addressing, or a refusal", () => {
  for (const row of rows)
    it(row.name, () => {
      const rawHeaders = (row.host ?? []).flatMap((value) => ["Host", value]);
      expect(requestTarget({ url: row.url, rawHeaders }, row.ctx)).to.deep.equal(row.want);
    });
});
