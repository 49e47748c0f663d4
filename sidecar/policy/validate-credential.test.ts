import { expect } from "chai";
import type { Credential } from "./manifest-types.ts";
import { credential } from "./test-fixtures.ts";
import { validateCredential } from "./validate-credential.ts";

function withInjection(injection: unknown): unknown {
  return credential("c", { injection });
}

describe("validateCredential accepts", () => {
  const base = {
    apiVersion: "airlock.dev/v1alpha1",
    kind: "Credential",
    metadata: { name: "github", namespace: "agents" },
  } as const;
  const cases: { name: string; spec: Record<string, unknown>; want: Credential["spec"] }[] = [
    {
      name: "the DESIGN.md example (header with prefix, hosts bound)",
      spec: {
        secretRef: { name: "github-token", key: "token" },
        injection: { header: { name: "Authorization", valuePrefix: "Bearer " } },
        hosts: ["api.github.com"],
      },
      want: {
        secretRef: { name: "github-token", key: "token" },
        injection: { header: { name: "Authorization", valuePrefix: "Bearer " } },
        hosts: ["api.github.com"],
      },
    },
    {
      name: "a header without prefix, no hosts bound",
      spec: { secretRef: { name: "s", key: "api_key.v1" }, injection: { header: { name: "X-Api-Key" } } },
      want: { secretRef: { name: "s", key: "api_key.v1" }, injection: { header: { name: "X-Api-Key" } } },
    },
    {
      name: "Cookie as the header",
      spec: {
        secretRef: { name: "s", key: "k" },
        injection: { header: { name: "Cookie", valuePrefix: "session=" } },
      },
      want: {
        secretRef: { name: "s", key: "k" },
        injection: { header: { name: "Cookie", valuePrefix: "session=" } },
      },
    },
    {
      name: "basicAuth with a wildcard bound",
      spec: {
        secretRef: { name: "s", key: "k" },
        injection: { basicAuth: { username: "x-access-token" } },
        hosts: ["*.github.com"],
      },
      want: {
        secretRef: { name: "s", key: "k" },
        injection: { basicAuth: { username: "x-access-token" } },
        hosts: ["*.github.com"],
      },
    },
    {
      name: "queryParam",
      spec: { secretRef: { name: "s", key: "k" }, injection: { queryParam: { name: "api_key" } } },
      want: { secretRef: { name: "s", key: "k" }, injection: { queryParam: { name: "api_key" } } },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(validateCredential({ ...base, spec: c.spec })).to.deep.equal({
        ok: true,
        value: { ...base, spec: c.want },
      });
    });
  }
});

describe("validateCredential refuses", () => {
  const cases: { name: string; manifest: unknown; want: { path: string; includes: string }[] }[] = [
    {
      name: "a wrong kind",
      manifest: { ...credential("c"), kind: "Secret" },
      want: [{ path: "kind", includes: 'must be "Credential"' }],
    },
    {
      name: "a missing spec",
      manifest: { ...credential("c"), spec: undefined },
      want: [{ path: "spec", includes: "add spec" }],
    },
    {
      name: "an unknown spec field",
      manifest: credential("c", { host: ["a.com"] }),
      want: [{ path: "spec.host", includes: "did you mean hosts?" }],
    },
    {
      name: "a missing secretRef",
      manifest: credential("c", { secretRef: undefined }),
      want: [{ path: "spec.secretRef", includes: "is required" }],
    },
    {
      name: "an invalid secretRef",
      manifest: credential("c", { secretRef: { name: "My Secret", key: "a/b", optional: true } }),
      want: [
        { path: "spec.secretRef.optional", includes: "unknown field" },
        { path: "spec.secretRef.name", includes: "not a valid name" },
        { path: "spec.secretRef.key", includes: "not a valid Secret key" },
      ],
    },
    {
      name: "a secretRef without key",
      manifest: credential("c", { secretRef: { name: "s" } }),
      want: [{ path: "spec.secretRef.key", includes: "is required" }],
    },
    {
      name: "a missing injection",
      manifest: credential("c", { injection: undefined }),
      want: [{ path: "spec.injection", includes: "exactly one of header, basicAuth, queryParam" }],
    },
    {
      name: "an empty injection",
      manifest: withInjection({}),
      want: [{ path: "spec.injection", includes: "must set exactly one" }],
    },
    {
      name: "two injection forms",
      manifest: withInjection({ header: { name: "Authorization" }, queryParam: { name: "k" } }),
      want: [{ path: "spec.injection", includes: "sets header and queryParam; keep exactly one" }],
    },
    {
      name: "a misspelt injection form",
      manifest: withInjection({ headers: { name: "Authorization" } }),
      want: [
        { path: "spec.injection.headers", includes: "did you mean header?" },
        { path: "spec.injection", includes: "must set exactly one" },
      ],
    },
    {
      name: "a header without name",
      manifest: withInjection({ header: { valuePrefix: "Bearer " } }),
      want: [{ path: "spec.injection.header.name", includes: "is required" }],
    },
    {
      name: "Host as the header",
      manifest: withInjection({ header: { name: "Host" } }),
      want: [{ path: "spec.injection.header.name", includes: "use a header such as Authorization" }],
    },
    {
      name: "Content-Length as the header",
      manifest: withInjection({ header: { name: "content-length" } }),
      want: [{ path: "spec.injection.header.name", includes: "cannot carry a credential" }],
    },
    {
      name: "Transfer-Encoding as the header",
      manifest: withInjection({ header: { name: "Transfer-Encoding" } }),
      want: [{ path: "spec.injection.header.name", includes: "cannot carry a credential" }],
    },
    {
      name: "Connection as the header",
      manifest: withInjection({ header: { name: "Connection" } }),
      want: [{ path: "spec.injection.header.name", includes: "hop-by-hop" }],
    },
    {
      name: "Proxy-Authorization as the header",
      manifest: withInjection({ header: { name: "Proxy-Authorization" } }),
      want: [{ path: "spec.injection.header.name", includes: "hop-by-hop" }],
    },
    {
      name: "Upgrade as the header",
      manifest: withInjection({ header: { name: "Upgrade" } }),
      want: [{ path: "spec.injection.header.name", includes: "hop-by-hop" }],
    },
    {
      name: "TE as the header",
      manifest: withInjection({ header: { name: "TE" } }),
      want: [{ path: "spec.injection.header.name", includes: "hop-by-hop" }],
    },
    {
      name: "a header name with a space",
      manifest: withInjection({ header: { name: "X Api Key" } }),
      want: [{ path: "spec.injection.header.name", includes: "not a valid HTTP header name" }],
    },
    {
      name: "a header name with a colon",
      manifest: withInjection({ header: { name: "X-Key:" } }),
      want: [{ path: "spec.injection.header.name", includes: "not a valid HTTP header name" }],
    },
    {
      name: "a prefix with CR LF",
      manifest: withInjection({ header: { name: "Authorization", valuePrefix: "Bearer\r\nX-Evil: 1" } }),
      want: [{ path: "spec.injection.header.valuePrefix", includes: "control characters" }],
    },
    {
      name: "a prefix with NUL",
      manifest: withInjection({ header: { name: "Authorization", valuePrefix: "a\u0000" } }),
      want: [{ path: "spec.injection.header.valuePrefix", includes: "control characters" }],
    },
    {
      name: "a non-string prefix",
      manifest: withInjection({ header: { name: "Authorization", valuePrefix: 1 } }),
      want: [{ path: "spec.injection.header.valuePrefix", includes: "must be a string" }],
    },
    {
      name: "an unknown header field",
      manifest: withInjection({ header: { name: "Authorization", prefix: "Bearer " } }),
      want: [{ path: "spec.injection.header.prefix", includes: "unknown field" }],
    },
    {
      name: "a username with ':'",
      manifest: withInjection({ basicAuth: { username: "a:b" } }),
      want: [{ path: "spec.injection.basicAuth.username", includes: "must not contain ':'" }],
    },
    {
      name: "a username with a control character",
      manifest: withInjection({ basicAuth: { username: "a\nb" } }),
      want: [{ path: "spec.injection.basicAuth.username", includes: "control characters" }],
    },
    {
      name: "basicAuth with a password",
      manifest: withInjection({ basicAuth: { username: "u", password: "p" } }),
      want: [{ path: "spec.injection.basicAuth.password", includes: "unknown field" }],
    },
    {
      name: "an invalid query parameter",
      manifest: withInjection({ queryParam: { name: "api key&x" } }),
      want: [{ path: "spec.injection.queryParam.name", includes: "not a valid query parameter name" }],
    },
    {
      name: "a form that is not an object",
      manifest: withInjection({ header: "Authorization" }),
      want: [{ path: "spec.injection.header", includes: "must be an object" }],
    },
    {
      name: "empty hosts",
      manifest: credential("c", { hosts: [] }),
      want: [{ path: "spec.hosts", includes: "attach the credential nowhere" }],
    },
    {
      name: "invalid and duplicate hosts",
      manifest: credential("c", { hosts: ["*", "a.com", "a.com", 1] }),
      want: [
        { path: "spec.hosts[0]", includes: 'use "*.example.com"' },
        { path: "spec.hosts[3]", includes: "must be a string" },
        { path: "spec.hosts[2]", includes: "duplicates spec.hosts[1]" },
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = validateCredential(c.manifest);
      if (got.ok) throw new Error("expected errors");
      expect(got.errors.map((e) => e.path)).to.deep.equal(c.want.map((w) => w.path));
      got.errors.forEach((e, i) => {
        expect(e.message).to.include(c.want[i]?.includes);
      });
    });
  }

  it("names the object on every error", () => {
    const got = validateCredential(credential("github", { hosts: ["*"] }, "team-a"));
    expect(got.ok ? [] : got.errors.map((e) => e.object)).to.deep.equal([
      { kind: "Credential", namespace: "team-a", name: "github" },
    ]);
  });

  it("never throws on odd inputs", () => {
    for (const input of [
      undefined,
      null,
      1,
      [],
      { spec: [] },
      { spec: { injection: { header: null } } },
      { spec: { secretRef: null, hosts: null } },
    ]) {
      expect(validateCredential(input).ok).to.equal(false);
    }
  });
});
