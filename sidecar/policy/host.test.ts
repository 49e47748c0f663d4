import { expect } from "chai";
import {
  canonicalHost,
  hostMatches,
  hostPatternCovers,
  parseHostPattern,
  type CanonicalHost,
} from "./host.ts";
import type { HostPattern } from "./types.ts";

describe("canonicalHost", () => {
  const cases: {
    name: string;
    input: string;
    want: CanonicalHost | { kind: "invalid"; includes: string };
  }[] = [
    { name: "plain name", input: "api.github.com", want: { kind: "name", name: "api.github.com" } },
    {
      name: "upper case is lowered",
      input: "API.GitHub.COM",
      want: { kind: "name", name: "api.github.com" },
    },
    {
      name: "one trailing dot is removed",
      input: "api.github.com.",
      want: { kind: "name", name: "api.github.com" },
    },
    { name: "single label", input: "my-svc", want: { kind: "name", name: "my-svc" } },
    { name: "numeric label not last", input: "1.example.com", want: { kind: "name", name: "1.example.com" } },
    {
      name: "label of 63 characters",
      input: `${"a".repeat(63)}.com`,
      want: { kind: "name", name: `${"a".repeat(63)}.com` },
    },
    { name: "IPv4 dotted quad", input: "127.0.0.1", want: { kind: "ip", address: "127.0.0.1", family: 4 } },
    { name: "IPv4 short form 127.1", input: "127.1", want: { kind: "ip", address: "127.0.0.1", family: 4 } },
    {
      name: "IPv4 hex 0x7f000001",
      input: "0x7f000001",
      want: { kind: "ip", address: "127.0.0.1", family: 4 },
    },
    {
      name: "IPv4 upper hex 0X7F000001",
      input: "0X7F000001",
      want: { kind: "ip", address: "127.0.0.1", family: 4 },
    },
    {
      name: "IPv4 decimal 2130706433",
      input: "2130706433",
      want: { kind: "ip", address: "127.0.0.1", family: 4 },
    },
    {
      name: "IPv4 octal 0177.0.0.1",
      input: "0177.0.0.1",
      want: { kind: "ip", address: "127.0.0.1", family: 4 },
    },
    {
      name: "IPv4 with trailing dot",
      input: "10.0.0.1.",
      want: { kind: "ip", address: "10.0.0.1", family: 4 },
    },
    { name: "IPv4 bare 0x", input: "0x", want: { kind: "ip", address: "0.0.0.0", family: 4 } },
    {
      name: "IPv4-mapped IPv6 in brackets",
      input: "[::ffff:127.0.0.1]",
      want: { kind: "ip", address: "::ffff:7f00:1", family: 6 },
    },
    { name: "IPv6 loopback without brackets", input: "::1", want: { kind: "ip", address: "::1", family: 6 } },
    {
      name: "IPv6 long form is shortened",
      input: "[0:0:0:0:0:0:0:1]",
      want: { kind: "ip", address: "::1", family: 6 },
    },
    {
      name: "IPv6 upper case is lowered",
      input: "[2001:DB8::A]",
      want: { kind: "ip", address: "2001:db8::a", family: 6 },
    },
    { name: "empty", input: "", want: { kind: "invalid", includes: "empty" } },
    { name: "underscore", input: "a_b.example.com", want: { kind: "invalid", includes: "'_'" } },
    { name: "percent-encoding", input: "api%2egithub.com", want: { kind: "invalid", includes: "'%'" } },
    { name: "userinfo", input: "user@api.github.com", want: { kind: "invalid", includes: "'@'" } },
    { name: "slash", input: "api.github.com/x", want: { kind: "invalid", includes: "'/'" } },
    { name: "backslash", input: "evil.com\\api.github.com", want: { kind: "invalid", includes: "'\\'" } },
    { name: "space", input: "api.github.com ", want: { kind: "invalid", includes: "U+0020" } },
    { name: "NUL", input: "api.github.com\u0000.evil", want: { kind: "invalid", includes: "U+0000" } },
    {
      name: "non-ASCII (IDNA is never applied)",
      input: "ａpi.github.com",
      want: { kind: "invalid", includes: "non-ASCII" },
    },
    {
      name: "two trailing dots",
      input: "api.github.com..",
      want: { kind: "invalid", includes: "empty label" },
    },
    { name: "empty label", input: "api..github.com", want: { kind: "invalid", includes: "empty label" } },
    { name: "leading hyphen", input: "-api.github.com", want: { kind: "invalid", includes: "'-'" } },
    {
      name: "label of 64 characters",
      input: `${"a".repeat(64)}.com`,
      want: { kind: "invalid", includes: "at most 63" },
    },
    {
      name: "name over 253 characters",
      input: `${"a.".repeat(127)}com`,
      want: { kind: "invalid", includes: "at most 253" },
    },
    {
      name: "numeric last label that is no IPv4",
      input: "example.123",
      want: { kind: "invalid", includes: "numeric" },
    },
    { name: "IPv4 octet out of range", input: "1.2.3.256", want: { kind: "invalid", includes: "numeric" } },
    { name: "host with port", input: "api.github.com:443", want: { kind: "invalid", includes: "port" } },
    { name: "unclosed bracket", input: "[::1", want: { kind: "invalid", includes: "'['" } },
    {
      name: "brackets around a name",
      input: "[api.github.com]",
      want: { kind: "invalid", includes: "IPv6" },
    },
    { name: "IPv6 zone id", input: "[fe80::1%25eth0]", want: { kind: "invalid", includes: "'%'" } },
    { name: "wildcard is not a host", input: "*.github.com", want: { kind: "invalid", includes: "'*'" } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = canonicalHost(c.input);
      if ("includes" in c.want) {
        expect(got.kind).to.equal("invalid");
        expect(got.kind === "invalid" ? got.message : "").to.include(c.want.includes);
      } else {
        expect(got).to.deep.equal(c.want);
      }
    });
  }

  it("never throws on a non-string", () => {
    expect(canonicalHost(42 as unknown as string)).to.deep.equal({
      kind: "invalid",
      message: "host must be a string",
    });
  });
});

describe("parseHostPattern", () => {
  const accepted: { name: string; input: string; want: HostPattern }[] = [
    { name: "exact name", input: "api.github.com", want: { kind: "exact", name: "api.github.com" } },
    { name: "single-label exact name", input: "my-svc", want: { kind: "exact", name: "my-svc" } },
    {
      name: "wildcard over two labels",
      input: "*.example.com",
      want: { kind: "wildcard", suffix: "example.com" },
    },
    {
      name: "wildcard over three labels",
      input: "*.eu.example.com",
      want: { kind: "wildcard", suffix: "eu.example.com" },
    },
  ];
  for (const c of accepted) {
    it(`accepts ${c.name}`, () => {
      expect(parseHostPattern(c.input)).to.deep.equal({ ok: true, value: c.want });
    });
  }

  const refused: { name: string; input: string; includes: string }[] = [
    { name: "empty", input: "", includes: 'name a host such as "api.example.com"' },
    { name: "upper case", input: "API.github.com", includes: 'use lower case: "api.github.com"' },
    { name: "upper case wildcard", input: "*.Example.com", includes: 'use lower case: "*.example.com"' },
    { name: "trailing dot", input: "api.github.com.", includes: 'remove the trailing dot: "api.github.com"' },
    { name: "bare *", input: "*", includes: 'use "*.example.com"' },
    { name: "mid-label *", input: "a*.example.com", includes: 'use "*.example.com"' },
    { name: "non-leading *", input: "foo.*.com", includes: 'use "*.example.com"' },
    { name: "two wildcards", input: "*.*.example.com", includes: 'use "*.example.com"' },
    { name: "* without a dot", input: "*example.com", includes: "whole first label" },
    { name: "TLD wildcard", input: "*.com", includes: 'at least two labels after "*."' },
    { name: "IPv4 literal", input: "10.0.0.1", includes: "IP literals are not hosts; name the host" },
    {
      name: "IPv4 literal in another spelling",
      input: "127.1",
      includes: "IP literals are not hosts; name the host",
    },
    { name: "IPv6 literal", input: "::1", includes: "IP literals are not hosts; name the host" },
    { name: "bracketed IPv6 literal", input: "[::1]", includes: "IP literals are not hosts; name the host" },
    {
      name: "IPv4 CIDR",
      input: "10.0.0.0/8",
      includes: "IP literals and CIDRs are not hosts; name the host",
    },
    { name: "IPv6 CIDR", input: "fd00::/8", includes: "IP literals and CIDRs are not hosts; name the host" },
    { name: "wildcard over an IP", input: "*.0.0.1", includes: "name the host" },
    { name: "underscore", input: "my_svc.example.com", includes: "labels use only a-z, 0-9 and '-'" },
    { name: "leading hyphen", input: "-a.example.com", includes: "begin and end with a letter or digit" },
    { name: "label too long", input: `${"a".repeat(64)}.com`, includes: "at most 63" },
    { name: "empty label", input: "a..com", includes: "remove the extra '.'" },
    { name: "host with a path", input: "api.github.com/repos", includes: 'put paths in "paths"' },
    { name: "host with a port", input: "api.github.com:443", includes: 'put ports in "ports"' },
    { name: "URL", input: "https://api.github.com", includes: 'put paths in "paths"' },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}`, () => {
      const got = parseHostPattern(c.input);
      expect(got.ok).to.equal(false);
      expect(got.ok ? "" : got.message).to.include(c.includes);
    });
  }
});

describe("hostMatches", () => {
  const wildcard: HostPattern = { kind: "wildcard", suffix: "example.com" };
  const cases: { name: string; pattern: HostPattern; host: string; want: boolean }[] = [
    {
      name: "exact matches itself",
      pattern: { kind: "exact", name: "example.com" },
      host: "example.com",
      want: true,
    },
    {
      name: "exact does not match a subdomain",
      pattern: { kind: "exact", name: "example.com" },
      host: "a.example.com",
      want: false,
    },
    { name: "wildcard matches one level", pattern: wildcard, host: "a.example.com", want: true },
    { name: "wildcard matches any depth", pattern: wildcard, host: "a.b.c.example.com", want: true },
    { name: "wildcard does not match apex", pattern: wildcard, host: "example.com", want: false },
    {
      name: "wildcard does not match a lookalike suffix",
      pattern: wildcard,
      host: "badexample.com",
      want: false,
    },
    {
      name: "wildcard does not match a suffix-prefixed host",
      pattern: wildcard,
      host: "example.com.evil.net",
      want: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(hostMatches(c.pattern, c.host)).to.equal(c.want);
    });
  }
});

describe("hostPatternCovers", () => {
  const exact = (name: string): HostPattern => ({ kind: "exact", name });
  const wild = (suffix: string): HostPattern => ({ kind: "wildcard", suffix });
  const cases: { name: string; outer: HostPattern; inner: HostPattern; want: boolean }[] = [
    { name: "exact covers the same exact", outer: exact("a.com"), inner: exact("a.com"), want: true },
    { name: "wildcard covers an exact under it", outer: wild("a.com"), inner: exact("x.a.com"), want: true },
    { name: "wildcard does not cover its apex", outer: wild("a.com"), inner: exact("a.com"), want: false },
    { name: "wildcard covers the same wildcard", outer: wild("a.com"), inner: wild("a.com"), want: true },
    { name: "wildcard covers a narrower wildcard", outer: wild("a.com"), inner: wild("x.a.com"), want: true },
    {
      name: "wildcard does not cover a broader wildcard",
      outer: wild("x.a.com"),
      inner: wild("a.com"),
      want: false,
    },
    { name: "exact never covers a wildcard", outer: exact("x.a.com"), inner: wild("a.com"), want: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(hostPatternCovers(c.outer, c.inner)).to.equal(c.want);
    });
  }
});
