import { expect } from "chai";
import { load } from "./load.ts";
import { policyHash } from "./canonical-json.ts";
import { credential, mustCompile, policy } from "./test-fixtures.ts";
import type { CompiledPolicy } from "./types.ts";

const compiled = mustCompile({
  policies: [
    policy("p", [
      {
        name: "gh",
        hosts: ["api.github.com"],
        ports: [443],
        methods: ["GET"],
        paths: ["/repos/**"],
        credential: "github",
      },
      { name: "npm", hosts: ["registry.npmjs.org", "*.npmjs.org"] },
    ]),
  ],
  credentials: [credential("github", { hosts: ["api.github.com"] })],
});

// A JSON copy of the bundle, edited by `edit`, and re-hashed unless `rehash` is false.
function variant(edit: (bundle: Record<string, unknown> & CompiledPolicy) => void, rehash = true): unknown {
  const bundle = JSON.parse(JSON.stringify(compiled)) as Record<string, unknown> & CompiledPolicy;
  edit(bundle);
  if (rehash) bundle.hash = policyHash(bundle);
  return bundle;
}

describe("load", () => {
  it("round-trips compile → JSON → load", () => {
    const got = load(JSON.parse(JSON.stringify(compiled)));
    expect(got.ok && got.value.policy).to.deep.equal(compiled);
  });

  it("indexes exact hosts and wildcard suffixes", () => {
    const got = load(compiled);
    if (!got.ok) throw new Error("load failed");
    expect([...got.value.exact.keys()]).to.deep.equal(["api.github.com", "registry.npmjs.org"]);
    expect([...got.value.wildcard.keys()]).to.deep.equal(["npmjs.org"]);
  });

  it("refuses a tampered bundle with hash mismatch", () => {
    const got = load(variant((b) => b.rules[0]?.ports.push(80), false));
    expect(got.ok ? [] : got.errors.map((e) => e.path)).to.deep.equal(["hash"]);
    expect(got.ok ? "" : got.errors[0]?.message).to.match(/^hash mismatch/);
  });

  it("loads a consistently re-hashed edit: the hash proves integrity, the bundle signature proves origin", () => {
    // The hash is a content check, not a signature (the control port verifies signatures);
    // a consistent bundle with different content loads, and is what it says.
    const got = load(variant((b) => b.rules[1]?.ports.push(8080)));
    expect(got.ok && got.value.policy.rules[1]?.ports).to.deep.equal([80, 443, 8080]);
  });

  const refused: { name: string; bundle: unknown; paths: string[] }[] = [
    { name: "not an object", bundle: "bundle", paths: [""] },
    { name: "null", bundle: null, paths: [""] },
    { name: "an unknown top-level field", bundle: variant((b) => (b.extra = 1)), paths: ["extra"] },
    { name: "a wrong kind", bundle: variant((b) => (b.kind = "EgressPolicy" as never)), paths: ["kind"] },
    { name: "a malformed hash", bundle: variant((b) => (b.hash = "md5:x"), false), paths: ["hash"] },
    { name: "a wrong mode", bundle: variant((b) => (b.mode = "audit" as never)), paths: ["mode"] },
    {
      name: "missing rules",
      bundle: variant((b) => delete (b as Partial<CompiledPolicy>).rules),
      paths: ["rules"],
    },
    {
      name: "a rule of an unknown policy",
      bundle: variant((b) => b.rules[0] && (b.rules[0].policy = "agents/q")),
      paths: ["rules[0].policy"],
    },
    {
      name: "an invalid exact host",
      bundle: variant((b) => b.rules[0] && (b.rules[0].hosts = [{ kind: "exact", name: "*" }])),
      paths: ["rules[0].hosts[0].name"],
    },
    {
      name: "a TLD wildcard",
      bundle: variant((b) => b.rules[0] && (b.rules[0].hosts = [{ kind: "wildcard", suffix: "com" }])),
      paths: ["rules[0].hosts[0].suffix"],
    },
    {
      name: "a host pattern of unknown kind",
      bundle: variant((b) => b.rules[0] && (b.rules[0].hosts = [{ kind: "regex" } as never])),
      paths: ["rules[0].hosts[0].kind"],
    },
    {
      name: "an empty host list",
      bundle: variant((b) => b.rules[0] && (b.rules[0].hosts = [])),
      paths: ["rules[0].hosts"],
    },
    {
      name: "a port out of range",
      bundle: variant((b) => b.rules[0] && (b.rules[0].ports = [0])),
      paths: ["rules[0].ports[0]"],
    },
    {
      name: "a TRACE method",
      bundle: variant((b) => b.rules[0] && (b.rules[0].methods = ["TRACE"])),
      paths: ["rules[0].methods[0]"],
    },
    {
      name: "an invalid path pattern",
      bundle: variant((b) => b.rules[0] && (b.rules[0].paths = ["/a**"])),
      paths: ["rules[0].paths[0]"],
    },
    {
      name: "methods absent instead of null",
      bundle: variant((b) => b.rules[1] && delete (b.rules[1] as Partial<(typeof b.rules)[1]>).methods),
      paths: ["rules[1].methods"],
    },
    {
      name: "a dangling credential reference",
      bundle: variant((b) => b.rules[0] && (b.rules[0].credential = "agents/nope")),
      paths: ["rules[0].credential"],
    },
    {
      name: "a duplicate rule",
      bundle: variant((b) => b.rules[1] && b.rules.push(b.rules[1])),
      paths: ["rules[2]"],
    },
    {
      name: "a credential whose id is not its key",
      bundle: variant(
        (b) => b.credentials["agents/github"] && (b.credentials["agents/github"].id = "agents/x"),
      ),
      paths: ['credentials["agents/github"].id'],
    },
    {
      name: "a credential header that could smuggle",
      bundle: variant(
        (b) =>
          b.credentials["agents/github"] &&
          (b.credentials["agents/github"].injection = {
            kind: "header",
            name: "Authorization",
            valuePrefix: "x\r\nEvil: 1",
          }),
      ),
      paths: ['credentials["agents/github"].injection.valuePrefix'],
    },
    {
      name: "an unknown injection kind",
      bundle: variant(
        (b) =>
          b.credentials["agents/github"] &&
          (b.credentials["agents/github"].injection = { kind: "cookie" } as never),
      ),
      paths: ['credentials["agents/github"].injection.kind'],
    },
    {
      name: "a conflict with one rule",
      bundle: variant((b) => (b.conflicts = [{ rules: ["a"], message: "m" } as never])),
      paths: ["conflicts[0].rules"],
    },
    {
      name: "a duplicate policy id",
      bundle: variant((b) => b.policies[0] && b.policies.push(b.policies[0])),
      paths: ["policies[1]"],
    },
    {
      name: "a policy id that is not namespace/name",
      bundle: variant((b) => b.policies.push({ id: "x", mode: "Enforce" })),
      paths: ["policies[1].id"],
    },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}, with the path`, () => {
      const got = load(c.bundle);
      expect(got.ok ? [] : got.errors.map((e) => e.path)).to.deep.equal(c.paths);
    });
  }

  it("never throws on odd inputs", () => {
    for (const input of [
      undefined,
      0,
      [],
      { rules: "x" },
      { rules: [null], credentials: [], policies: {} },
      { credentials: { a: null } },
    ]) {
      expect(load(input).ok).to.equal(false);
    }
  });
});
