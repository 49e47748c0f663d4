import { expect } from "chai";
import { compilePathPattern, normalizePath, pathMatches, type NormalizedPath } from "./path.ts";

describe("normalizePath", () => {
  const cases: { name: string; target: string; want: NormalizedPath | { ok: false; includes: string } }[] = [
    { name: "plain path", target: "/repos/x", want: { ok: true, path: "/repos/x", query: "" } },
    { name: "root", target: "/", want: { ok: true, path: "/", query: "" } },
    {
      name: "query split off without '?'",
      target: "/a?x=1&y=2",
      want: { ok: true, path: "/a", query: "x=1&y=2" },
    },
    { name: "empty query", target: "/a?", want: { ok: true, path: "/a", query: "" } },
    {
      name: "query is not normalised",
      target: "/a?p=/../%7e",
      want: { ok: true, path: "/a", query: "p=/../%7e" },
    },
    { name: "dot segment", target: "/a/./b", want: { ok: true, path: "/a/b", query: "" } },
    { name: "dot-dot segment", target: "/a/b/../c", want: { ok: true, path: "/a/c", query: "" } },
    {
      name: "dot-dot above root stays at root",
      target: "/../../etc/passwd",
      want: { ok: true, path: "/etc/passwd", query: "" },
    },
    {
      name: "trailing dot-dot keeps the slash",
      target: "/a/b/..",
      want: { ok: true, path: "/a/", query: "" },
    },
    { name: "trailing dot keeps the slash", target: "/a/.", want: { ok: true, path: "/a/", query: "" } },
    { name: "encoded dots %2e%2E", target: "/a/b/%2e%2E/c", want: { ok: true, path: "/a/c", query: "" } },
    { name: "encoded single dot", target: "/a/%2E/b", want: { ok: true, path: "/a/b", query: "" } },
    { name: "half-encoded dot-dot", target: "/a/b/.%2e/c", want: { ok: true, path: "/a/c", query: "" } },
    {
      name: "unreserved %7E decoded to ~",
      target: "/%7Euser",
      want: { ok: true, path: "/~user", query: "" },
    },
    {
      name: "unreserved letters and digits decoded",
      target: "/%41%62%30%2D%5F",
      want: { ok: true, path: "/Ab0-_", query: "" },
    },
    { name: "kept escape %2f upper-cased", target: "/a%2fb", want: { ok: true, path: "/a%2Fb", query: "" } },
    {
      name: "encoded slash inside a segment is not a separator (GitLab project ids)",
      target: "/projects/group%2frepo/a%2Fb",
      want: { ok: true, path: "/projects/group%2Frepo/a%2Fb", query: "" },
    },
    {
      name: "encoded backslash inside a segment is kept",
      target: "/share/dom%5cuser",
      want: { ok: true, path: "/share/dom%5Cuser", query: "" },
    },
    {
      name: "dots inside a name next to an encoded slash",
      target: "/files/dir%2F.gitignore/x..y%2F..z",
      want: { ok: true, path: "/files/dir%2F.gitignore/x..y%2F..z", query: "" },
    },
    {
      name: "';' parameters on an ordinary segment are kept",
      target: "/app;jsessionid=1/a;v=2",
      want: { ok: true, path: "/app;jsessionid=1/a;v=2", query: "" },
    },
    {
      name: "a query holding '..;' and '..%2F' is not a path",
      target: "/a?p=..;/..%2F",
      want: { ok: true, path: "/a", query: "p=..;/..%2F" },
    },
    {
      name: "three dots are a name, not a dot segment",
      target: "/a/...;x/...%2Fb",
      want: { ok: true, path: "/a/...;x/...%2Fb", query: "" },
    },
    {
      name: "%25 is kept, not double-decoded",
      target: "/%252e%252e/x",
      want: { ok: true, path: "/%252e%252e/x", query: "" },
    },
    { name: "empty segments are kept", target: "/a//b", want: { ok: true, path: "/a//b", query: "" } },
    {
      name: "dot-dot after an empty segment",
      target: "/a//../b",
      want: { ok: true, path: "/a/b", query: "" },
    },
    { name: "no leading slash", target: "repos/x", want: { ok: false, includes: "must start with '/'" } },
    { name: "absolute form", target: "http://x/a", want: { ok: false, includes: "must start with '/'" } },
    { name: "asterisk form", target: "*", want: { ok: false, includes: "must start with '/'" } },
    { name: "empty", target: "", want: { ok: false, includes: "must start with '/'" } },
    { name: "fragment", target: "/a#frag", want: { ok: false, includes: "fragment" } },
    { name: "backslash", target: "/a\\..\\b", want: { ok: false, includes: "backslash" } },
    { name: "NUL", target: "/a\u0000b", want: { ok: false, includes: "control character" } },
    { name: "CR LF", target: "/a\r\nHost: evil", want: { ok: false, includes: "control character" } },
    { name: "DEL", target: "/a\u007f", want: { ok: false, includes: "control character" } },
    { name: "space", target: "/a b", want: { ok: false, includes: "%20" } },
    { name: "non-ASCII", target: "/é", want: { ok: false, includes: "non-ASCII" } },
    { name: "%00", target: "/a%00.json", want: { ok: false, includes: "%00" } },
    { name: "%00 in the query", target: "/a?x=%00", want: { ok: false, includes: "%00" } },
    { name: "truncated escape", target: "/a%2", want: { ok: false, includes: "malformed percent-escape" } },
    {
      name: "hidden dot segment '..;' (Tomcat path parameter)",
      target: "/public/..;/admin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '..;jsessionid=x'",
      target: "/public/..;jsessionid=x/admin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '.;'",
      target: "/public/.;/admin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '..%3B' (encoded ';')",
      target: "/public/..%3B/admin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '..%2F'",
      target: "/public/..%2Fadmin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '..%2f' (lower case)",
      target: "/public/..%2fadmin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '%2e%2e%2f' (all encoded)",
      target: "/public/%2e%2e%2fadmin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '..%5C'",
      target: "/public/..%5Cadmin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '..%5c' (lower case)",
      target: "/public/..%5cadmin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '.%2F'",
      target: "/public/.%2Fadmin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '..' after an encoded slash",
      target: "/public/x%2F..%2F..%2Fadmin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '..' between encoded slash and ';'",
      target: "/public/x%2F..;y/admin",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "hidden dot segment '..%2F' as the last segment",
      target: "/public/..%2F",
      want: { ok: false, includes: "send the path it resolves to" },
    },
    {
      name: "backslash dot-dot '..\\'",
      target: "/public/..\\admin",
      want: { ok: false, includes: "backslash" },
    },

    { name: "non-hex escape", target: "/a%zz", want: { ok: false, includes: "malformed percent-escape" } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = normalizePath(c.target);
      if ("includes" in c.want) {
        expect(got.ok).to.equal(false);
        expect(got.ok ? "" : got.message).to.include(c.want.includes);
      } else {
        expect(got).to.deep.equal(c.want);
      }
    });
  }
});

describe("compilePathPattern", () => {
  it("returns the pattern's length for precedence", () => {
    const got = compilePathPattern("/repos/*/issues");
    expect(got.ok && got.value.length).to.equal("/repos/*/issues".length);
    expect(got.ok && got.value.source).to.equal("/repos/*/issues");
  });

  const refused: { name: string; pattern: string; includes: string }[] = [
    { name: "no leading slash", pattern: "repos/**", includes: "starts with '/'" },
    { name: "*** in a segment", pattern: "/a/***", includes: '"***" is not a wildcard' },
    { name: "** inside a segment", pattern: "/a**b", includes: '"**" must be a whole segment' },
    { name: "** after text", pattern: "/repos/v1**", includes: '"**" must be a whole segment' },
    { name: "dot segment", pattern: "/a/./b", includes: "dot segment" },
    { name: "dot-dot segment", pattern: "/a/../b", includes: "dot segment" },
    { name: "query", pattern: "/a?x=1", includes: "never match the query" },
    { name: "fragment", pattern: "/a#b", includes: "fragment" },
    { name: "encoded unreserved character", pattern: "/%7Euser", includes: "write '~'" },
    { name: "lower-case escape", pattern: "/a%2fb", includes: 'write "%2F"' },
    { name: "malformed escape", pattern: "/a%zz", includes: "malformed percent-escape" },
    { name: "%00", pattern: "/a%00", includes: "%00" },
    { name: "backslash", pattern: "/a\\b", includes: "backslash" },
    { name: "control character", pattern: "/a\nb", includes: "control character" },
    { name: "too long", pattern: `/${"a".repeat(1024)}`, includes: "longer than 1024" },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}`, () => {
      const got = compilePathPattern(c.pattern);
      expect(got.ok).to.equal(false);
      expect(got.ok ? "" : got.message).to.include(c.includes);
    });
  }
});

describe("pathMatches", () => {
  const cases: { name: string; pattern: string; path: string; want: boolean }[] = [
    { name: "literal matches itself", pattern: "/a/b", path: "/a/b", want: true },
    { name: "literal does not match a prefix", pattern: "/a", path: "/a/b", want: false },
    { name: "literal does not match with a trailing slash", pattern: "/a", path: "/a/", want: false },
    { name: "* matches within a segment", pattern: "/repos/*", path: "/repos/x", want: true },
    { name: "* matches an empty segment", pattern: "/repos/*", path: "/repos/", want: true },
    { name: "* does not cross '/'", pattern: "/repos/*", path: "/repos/x/y", want: false },
    { name: "* inside a segment", pattern: "/v1/*.json", path: "/v1/data.json", want: true },
    {
      name: "* inside a segment does not cross '/'",
      pattern: "/v1/*.json",
      path: "/v1/a/b.json",
      want: false,
    },
    { name: "** matches across segments", pattern: "/repos/**", path: "/repos/x/y", want: true },
    { name: "/repos/** matches /repos/", pattern: "/repos/**", path: "/repos/", want: true },
    { name: "/repos/** does not match /repos", pattern: "/repos/**", path: "/repos", want: false },
    { name: "/repos/** does not match /repository", pattern: "/repos/**", path: "/repository", want: false },
    { name: "/a/**/b matches one segment between", pattern: "/a/**/b", path: "/a/x/b", want: true },
    { name: "/a/**/b matches several segments between", pattern: "/a/**/b", path: "/a/x/y/b", want: true },
    { name: "/a/**/b needs the segment separators", pattern: "/a/**/b", path: "/a/b", want: false },
    { name: "/** matches everything", pattern: "/**", path: "/anything/at/all", want: true },
    { name: "* and ** together", pattern: "/orgs/*/repos/**", path: "/orgs/acme/repos/x/pulls", want: true },
    {
      name: "* and ** together, * must not cross",
      pattern: "/orgs/*/repos/**",
      path: "/orgs/a/b/repos/x",
      want: false,
    },
    { name: "regex metacharacters are literal", pattern: "/a.b/(c)+", path: "/axb/(c)+", want: false },
    { name: "regex metacharacters match themselves", pattern: "/a.b/(c)+", path: "/a.b/(c)+", want: true },
    { name: "kept escapes match literally", pattern: "/a%2Fb", path: "/a%2Fb", want: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const compiled = compilePathPattern(c.pattern);
      if (!compiled.ok) throw new Error(compiled.message);
      expect(pathMatches(compiled.value, c.path)).to.equal(c.want);
    });
  }

  it("stays linear on an adversarial path (no backtracking)", () => {
    const compiled = compilePathPattern("/**/**/**/**/**/**/**/**/*a*a*a*a*a*a*a*a*b");
    if (!compiled.ok) throw new Error(compiled.message);
    const path = `/${"a/".repeat(2000)}${"a".repeat(4000)}`;
    const started = performance.now();
    expect(pathMatches(compiled.value, path)).to.equal(false);
    expect(performance.now() - started).to.be.below(2000);
  });
});
