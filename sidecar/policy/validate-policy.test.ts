import { expect } from "chai";
import { policy } from "./test-fixtures.ts";
import type { EgressPolicy } from "./manifest-types.ts";
import type { FieldError } from "./types.ts";
import { validatePolicy } from "./validate-policy.ts";

const designExample = {
  apiVersion: "airlock.dev/v1alpha1",
  kind: "EgressPolicy",
  metadata: { name: "coding-agent", namespace: "agents" },
  spec: {
    podSelector: { matchLabels: { app: "coding-agent" } },
    mode: "Enforce",
    egress: [
      {
        name: "github-api",
        hosts: ["api.github.com"],
        ports: [443],
        methods: ["GET", "POST"],
        paths: ["/repos/**"],
        credential: "github",
      },
      { name: "npm", hosts: ["registry.npmjs.org", "*.npmjs.org"] },
    ],
  },
};

// A rule inside an otherwise valid policy named "p" in namespace "agents".
function withRule(rule: unknown): unknown {
  return policy("p", [rule]);
}

function withSpec(spec: Record<string, unknown>): unknown {
  return { ...policy("p", []), spec };
}

describe("validatePolicy accepts", () => {
  it("the DESIGN.md example, unchanged", () => {
    const want: EgressPolicy = {
      apiVersion: "airlock.dev/v1alpha1",
      kind: "EgressPolicy",
      metadata: { name: "coding-agent", namespace: "agents" },
      spec: {
        podSelector: { matchLabels: { app: "coding-agent" } },
        mode: "Enforce",
        egress: [
          {
            name: "github-api",
            hosts: ["api.github.com"],
            ports: [443],
            methods: ["GET", "POST"],
            paths: ["/repos/**"],
            credential: "github",
          },
          { name: "npm", hosts: ["registry.npmjs.org", "*.npmjs.org"] },
        ],
      },
    };
    expect(validatePolicy(designExample)).to.deep.equal({ ok: true, value: want });
  });

  it("defaults: namespace, mode Enforce, egress []", () => {
    const manifest = {
      apiVersion: "airlock.dev/v1alpha1",
      kind: "EgressPolicy",
      metadata: { name: "p" },
      spec: { podSelector: {} },
    };
    expect(validatePolicy(manifest)).to.deep.equal({
      ok: true,
      value: {
        apiVersion: "airlock.dev/v1alpha1",
        kind: "EgressPolicy",
        metadata: { name: "p", namespace: "default" },
        spec: { podSelector: {}, mode: "Enforce", egress: [] },
      },
    });
    const inTeam = validatePolicy(manifest, "team-a");
    expect(inTeam.ok && inTeam.value.metadata.namespace).to.equal("team-a");
  });

  it("keeps generation; ignores status and other metadata", () => {
    const manifest = {
      ...policy("p", [], { mode: "Audit" }),
      metadata: {
        name: "p",
        namespace: "agents",
        generation: 7,
        uid: "x",
        labels: { a: "b" },
        annotations: { "x/y": "z" },
      },
      status: { conditions: [] },
    };
    const got = validatePolicy(manifest);
    expect(got.ok && got.value.metadata).to.deep.equal({ name: "p", namespace: "agents", generation: 7 });
    expect(got.ok && got.value.spec.mode).to.equal("Audit");
  });

  it("a full LabelSelector", () => {
    const podSelector = {
      matchLabels: { "app.kubernetes.io/name": "agent", tier: "" },
      matchExpressions: [
        { key: "env", operator: "In", values: ["dev", "prod"] },
        { key: "legacy", operator: "DoesNotExist" },
        { key: "team", operator: "Exists", values: [] },
      ],
    };
    const got = validatePolicy(policy("p", [], { podSelector }));
    expect(got.ok && got.value.spec.podSelector).to.deep.equal({
      matchLabels: { "app.kubernetes.io/name": "agent", tier: "" },
      matchExpressions: [
        { key: "env", operator: "In", values: ["dev", "prod"] },
        { key: "legacy", operator: "DoesNotExist" },
        { key: "team", operator: "Exists" },
      ],
    });
  });
});

describe("validatePolicy refuses", () => {
  const cases: { name: string; manifest: unknown; want: { path: string; includes: string }[] }[] = [
    { name: "a non-object", manifest: "EgressPolicy", want: [{ path: "", includes: "must be an object" }] },
    {
      name: "a wrong apiVersion",
      manifest: { ...policy("p", []), apiVersion: "v1" },
      want: [{ path: "apiVersion", includes: 'must be "airlock.dev/v1alpha1", got "v1"' }],
    },
    {
      name: "a wrong kind",
      manifest: { ...policy("p", []), kind: "NetworkPolicy" },
      want: [{ path: "kind", includes: 'must be "EgressPolicy"' }],
    },
    {
      name: "an unknown top-level field",
      manifest: { ...policy("p", []), sepc: {} },
      want: [{ path: "sepc", includes: "did you mean spec?" }],
    },
    {
      name: "missing metadata",
      manifest: { ...policy("p", []), metadata: undefined },
      want: [{ path: "metadata", includes: "add metadata" }],
    },
    {
      name: "a missing name",
      manifest: { ...policy("p", []), metadata: { namespace: "agents" } },
      want: [{ path: "metadata.name", includes: "is required" }],
    },
    {
      name: "an invalid name",
      manifest: { ...policy("p", []), metadata: { name: "Coding_Agent" } },
      want: [{ path: "metadata.name", includes: "lower-case letters" }],
    },
    {
      name: "an invalid namespace",
      manifest: { ...policy("p", []), metadata: { name: "p", namespace: "a.b" } },
      want: [{ path: "metadata.namespace", includes: "not a DNS label" }],
    },
    {
      name: "a negative generation",
      manifest: { ...policy("p", []), metadata: { name: "p", generation: -1 } },
      want: [{ path: "metadata.generation", includes: "non-negative integer" }],
    },
    {
      name: "a missing spec",
      manifest: { ...policy("p", []), spec: undefined },
      want: [{ path: "spec", includes: "add spec" }],
    },
    {
      name: "an unknown spec field",
      manifest: withSpec({ podSelector: {}, egres: [] }),
      want: [{ path: "spec.egres", includes: "unknown field spec.egres; did you mean egress?" }],
    },
    {
      name: "a missing podSelector",
      manifest: withSpec({ egress: [] }),
      want: [{ path: "spec.podSelector", includes: "use {} to select every pod" }],
    },
    {
      name: "a podSelector that is a list",
      manifest: withSpec({ podSelector: [] }),
      want: [{ path: "spec.podSelector", includes: "use {} to select every pod" }],
    },
    {
      name: "a lower-case mode",
      manifest: withSpec({ podSelector: {}, mode: "enforce" }),
      want: [{ path: "spec.mode", includes: "must be Enforce or Audit" }],
    },
    {
      name: "egress that is not a list",
      manifest: withSpec({ podSelector: {}, egress: { name: "x" } }),
      want: [{ path: "spec.egress", includes: "must be a list" }],
    },
    {
      name: "more than 256 rules",
      manifest: policy(
        "p",
        Array.from({ length: 257 }, (_, i) => ({ name: `r${i}`, hosts: ["a.com"] })),
      ),
      want: [{ path: "spec.egress", includes: "at most 256" }],
    },
    {
      name: "a rule that is not an object",
      manifest: withRule("api.github.com"),
      want: [{ path: "spec.egress[0]", includes: "must be an object" }],
    },
    {
      name: "a misspelt field (host for hosts)",
      manifest: withRule({ name: "r", host: ["a.com"] }),
      want: [
        { path: "spec.egress[0].host", includes: "unknown field spec.egress[0].host; did you mean hosts?" },
        { path: "spec.egress[0].hosts", includes: "is required" },
      ],
    },
    {
      name: "a rule without a name",
      manifest: withRule({ hosts: ["a.com"] }),
      want: [{ path: "spec.egress[0].name", includes: "is required" }],
    },
    {
      name: "a rule name that is no DNS label",
      manifest: withRule({ name: "GitHub API", hosts: ["a.com"] }),
      want: [{ path: "spec.egress[0].name", includes: "not a DNS label" }],
    },
    {
      name: "a rule name over 63 characters",
      manifest: withRule({ name: "r".repeat(64), hosts: ["a.com"] }),
      want: [{ path: "spec.egress[0].name", includes: "at most 63" }],
    },
    {
      name: "duplicate rule names",
      manifest: policy("p", [
        { name: "r", hosts: ["a.com"] },
        { name: "s", hosts: ["b.com"] },
        { name: "r", hosts: ["c.com"] },
      ]),
      want: [{ path: "spec.egress[2].name", includes: 'duplicate rule name "r" (also spec.egress[0].name)' }],
    },
    {
      name: "empty hosts",
      manifest: withRule({ name: "r", hosts: [] }),
      want: [{ path: "spec.egress[0].hosts", includes: "list at least one host" }],
    },
    {
      name: "more than 64 hosts",
      manifest: withRule({ name: "r", hosts: Array.from({ length: 65 }, (_, i) => `h${i}.com`) }),
      want: [{ path: "spec.egress[0].hosts", includes: "at most 64" }],
    },
    {
      name: "a bare * host",
      manifest: withRule({ name: "r", hosts: ["a.com", "*"] }),
      want: [{ path: "spec.egress[0].hosts[1]", includes: 'use "*.example.com"' }],
    },
    {
      name: "an IP host",
      manifest: withRule({ name: "r", hosts: ["10.0.0.1"] }),
      want: [{ path: "spec.egress[0].hosts[0]", includes: "name the host" }],
    },
    {
      name: "a non-string host",
      manifest: withRule({ name: "r", hosts: [42] }),
      want: [{ path: "spec.egress[0].hosts[0]", includes: "must be a string" }],
    },
    {
      name: "a duplicate host",
      manifest: withRule({ name: "r", hosts: ["a.com", "a.com"] }),
      want: [{ path: "spec.egress[0].hosts[1]", includes: "duplicates spec.egress[0].hosts[0]" }],
    },
    {
      name: "ports out of range, fractional, quoted and duplicated",
      manifest: withRule({ name: "r", hosts: ["a.com"], ports: [0, 65536, 1.5, "443", 8443, 8443] }),
      want: [
        { path: "spec.egress[0].ports[0]", includes: "from 1 to 65535, got 0" },
        { path: "spec.egress[0].ports[1]", includes: "got 65536" },
        { path: "spec.egress[0].ports[2]", includes: "got 1.5" },
        { path: "spec.egress[0].ports[3]", includes: 'got "443"' },
        { path: "spec.egress[0].ports[5]", includes: "duplicates spec.egress[0].ports[4]" },
      ],
    },
    {
      name: "empty ports",
      manifest: withRule({ name: "r", hosts: ["a.com"], ports: [] }),
      want: [{ path: "spec.egress[0].ports", includes: "remove ports to use the default [80, 443]" }],
    },
    {
      name: "bad methods",
      manifest: withRule({
        name: "r",
        hosts: ["a.com"],
        methods: ["get", "TRACE", "CONNECT", "PURGE", "GET", "GET"],
      }),
      want: [
        { path: "spec.egress[0].methods[0]", includes: "use GET" },
        { path: "spec.egress[0].methods[1]", includes: "could echo an injected credential" },
        { path: "spec.egress[0].methods[2]", includes: "CONNECT is refused" },
        { path: "spec.egress[0].methods[3]", includes: "use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" },
        { path: "spec.egress[0].methods[5]", includes: "duplicates spec.egress[0].methods[4]" },
      ],
    },
    {
      name: "empty methods",
      manifest: withRule({ name: "r", hosts: ["a.com"], methods: [] }),
      want: [{ path: "spec.egress[0].methods", includes: "remove methods to allow every listed method" }],
    },
    {
      name: "bad paths",
      manifest: withRule({ name: "r", hosts: ["a.com"], paths: ["/a**b", "repos", "/x", "/x"] }),
      want: [
        { path: "spec.egress[0].paths[0]", includes: '"**" must be a whole segment' },
        { path: "spec.egress[0].paths[1]", includes: "starts with '/'" },
        { path: "spec.egress[0].paths[3]", includes: "duplicates spec.egress[0].paths[2]" },
      ],
    },
    {
      name: "empty paths",
      manifest: withRule({ name: "r", hosts: ["a.com"], paths: [] }),
      want: [{ path: "spec.egress[0].paths", includes: "remove paths to allow any path" }],
    },
    {
      name: "a credential that is not a name",
      manifest: withRule({ name: "r", hosts: ["a.com"], credential: "GitHub Token" }),
      want: [{ path: "spec.egress[0].credential", includes: "not a valid name" }],
    },
    {
      name: "a credential that is an object",
      manifest: withRule({ name: "r", hosts: ["a.com"], credential: { name: "x" } }),
      want: [{ path: "spec.egress[0].credential", includes: "naming a Credential" }],
    },
    {
      name: "every error at once, not only the first",
      manifest: {
        ...policy("p", [
          { name: "r", hosts: ["*"] },
          { name: "s", hosts: ["A.com"], ports: [0] },
        ]),
        kind: "Policy",
      },
      want: [
        { path: "kind", includes: "EgressPolicy" },
        { path: "spec.egress[0].hosts[0]", includes: 'use "*.example.com"' },
        { path: "spec.egress[1].hosts[0]", includes: "use lower case" },
        { path: "spec.egress[1].ports[0]", includes: "from 1 to 65535" },
      ],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const got = validatePolicy(c.manifest);
      if (got.ok) throw new Error("expected errors");
      expect(got.errors.map((e) => e.path)).to.deep.equal(c.want.map((w) => w.path));
      got.errors.forEach((e, i) => {
        expect(e.message).to.include(c.want[i]?.includes);
      });
    });
  }

  it("names the object on every error when its name is known", () => {
    const got = validatePolicy({ ...policy("p", [{ name: "r", hosts: ["*"] }]), apiVersion: "x" });
    const want: FieldError["object"] = { kind: "EgressPolicy", namespace: "agents", name: "p" };
    expect(got.ok ? [] : got.errors.map((e) => e.object)).to.deep.equal([want, want]);
  });

  it("never throws on odd inputs", () => {
    for (const input of [
      undefined,
      null,
      0,
      [],
      "x",
      { spec: null },
      { metadata: [] },
      { spec: { egress: [null] } },
      { spec: { podSelector: { matchExpressions: [null] } } },
    ]) {
      expect(validatePolicy(input).ok).to.equal(false);
    }
  });
});
