import { expect } from "chai";
import { compile } from "./compile.ts";
import { credential, mustCompile, policy } from "./test-fixtures.ts";
import type { CompiledPolicy, FieldError } from "./types.ts";

const github = credential("github", { hosts: ["api.github.com", "*.githubusercontent.com"] });

function errorsOf(result: ReturnType<typeof compile>): FieldError[] {
  if (result.ok) throw new Error("expected compile to fail");
  return result.errors;
}

describe("compile", () => {
  it("produces the whole CompiledPolicy for the DESIGN.md example", () => {
    const got = mustCompile({
      policies: [
        policy("coding-agent", [
          {
            name: "github-api",
            hosts: ["api.github.com"],
            ports: [443],
            methods: ["GET", "POST"],
            paths: ["/repos/**"],
            credential: "github",
          },
          { name: "npm", hosts: ["registry.npmjs.org", "*.npmjs.org"] },
        ]),
      ],
      credentials: [github, credential("unused")],
    });
    const want: Omit<CompiledPolicy, "hash"> = {
      apiVersion: "airlock.dev/v1alpha1",
      kind: "CompiledPolicy",
      mode: "Enforce",
      policies: [{ id: "agents/coding-agent", mode: "Enforce" }],
      rules: [
        {
          policy: "agents/coding-agent",
          rule: "github-api",
          index: 0,
          hosts: [{ kind: "exact", name: "api.github.com" }],
          ports: [443],
          methods: ["GET", "POST"],
          paths: ["/repos/**"],
          credential: "agents/github",
        },
        {
          policy: "agents/coding-agent",
          rule: "npm",
          index: 1,
          hosts: [
            { kind: "exact", name: "registry.npmjs.org" },
            { kind: "wildcard", suffix: "npmjs.org" },
          ],
          ports: [80, 443],
          methods: null,
          paths: null,
        },
      ],
      credentials: {
        "agents/github": {
          id: "agents/github",
          namespace: "agents",
          name: "github",
          secretRef: { name: "github-token", key: "token" },
          injection: { kind: "header", name: "Authorization", valuePrefix: "Bearer " },
          hosts: [
            { kind: "exact", name: "api.github.com" },
            { kind: "wildcard", suffix: "githubusercontent.com" },
          ],
        },
      },
      conflicts: [],
    };
    const { hash, ...rest } = got;
    expect(rest).to.deep.equal(want);
    expect(hash).to.match(/^sha256:[0-9a-f]{64}$/);
  });

  it("compiles every injection form; a header without prefix gets an empty one", () => {
    const got = mustCompile({
      policies: [
        policy("p", [
          { name: "a", hosts: ["a.com"], credential: "h" },
          { name: "b", hosts: ["b.com"], credential: "b" },
          { name: "q", hosts: ["q.com"], credential: "q" },
        ]),
      ],
      credentials: [
        credential("h", { injection: { header: { name: "X-Key" } } }),
        credential("b", { injection: { basicAuth: { username: "u" } } }),
        credential("q", { injection: { queryParam: { name: "key" } } }),
      ],
    });
    expect(Object.values(got.credentials).map((c) => c.injection)).to.deep.equal([
      { kind: "basicAuth", username: "u" },
      { kind: "header", name: "X-Key", valuePrefix: "" },
      { kind: "queryParam", name: "key" },
    ]);
    expect(Object.values(got.credentials).map((c) => c.hosts)).to.deep.equal([null, null, null]);
  });

  it("keeps metadata.generation and applies the default namespace", () => {
    const manifest = { ...policy("p", []), metadata: { name: "p", generation: 3 } };
    expect(
      mustCompile({ policies: [manifest], credentials: [], defaultNamespace: "team-a" }).policies,
    ).to.deep.equal([{ id: "team-a/p", mode: "Enforce", generation: 3 }]);
  });

  describe("credential references", () => {
    it("resolves a credential only in the policy's own namespace", () => {
      const errors = errorsOf(
        compile({
          policies: [
            policy("p", [{ name: "gh", hosts: ["api.github.com"], credential: "github" }], {
              namespace: "team-a",
            }),
          ],
          credentials: [github],
        }),
      );
      expect(errors).to.deep.equal([
        {
          object: { kind: "EgressPolicy", namespace: "team-a", name: "p" },
          path: "spec.egress[0].credential",
          message: "Credential github not found in namespace team-a; create it or remove the reference",
        },
      ]);
    });

    it("reports an invalid referenced Credential's own errors, not 'not found'", () => {
      const errors = errorsOf(
        compile({
          policies: [policy("p", [{ name: "gh", hosts: ["api.github.com"], credential: "github" }])],
          credentials: [credential("github", { injection: { header: { name: "Host" } } })],
        }),
      );
      expect(errors.map((e) => [e.object?.kind, e.path])).to.deep.equal([
        ["Credential", "spec.injection.header.name"],
      ]);
    });
  });

  describe("credential hosts bound", () => {
    const cases: { name: string; hosts: string[]; bound: string[]; wantPaths: string[] }[] = [
      {
        name: "exact host inside an exact bound",
        hosts: ["api.github.com"],
        bound: ["api.github.com"],
        wantPaths: [],
      },
      {
        name: "exact host under a wildcard bound",
        hosts: ["raw.githubusercontent.com"],
        bound: ["*.githubusercontent.com"],
        wantPaths: [],
      },
      {
        name: "wildcard under an equal wildcard",
        hosts: ["*.github.com"],
        bound: ["*.github.com"],
        wantPaths: [],
      },
      {
        name: "wildcard under a broader wildcard",
        hosts: ["*.eu.github.com"],
        bound: ["*.github.com"],
        wantPaths: [],
      },
      {
        name: "exact host outside the bound",
        hosts: ["api.github.com", "evil.com"],
        bound: ["api.github.com"],
        wantPaths: ["spec.egress[0].hosts[1]"],
      },
      {
        name: "apex outside a wildcard bound",
        hosts: ["github.com"],
        bound: ["*.github.com"],
        wantPaths: ["spec.egress[0].hosts[0]"],
      },
      {
        name: "wildcard under an exact bound",
        hosts: ["*.github.com"],
        bound: ["api.github.com"],
        wantPaths: ["spec.egress[0].hosts[0]"],
      },
      {
        name: "wildcard broader than the bound",
        hosts: ["*.github.com"],
        bound: ["*.api.github.com"],
        wantPaths: ["spec.egress[0].hosts[0]"],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const result = compile({
          policies: [policy("p", [{ name: "r", hosts: c.hosts, credential: "c" }])],
          credentials: [credential("c", { hosts: c.bound })],
        });
        expect(result.ok ? [] : result.errors.map((e) => e.path)).to.deep.equal(c.wantPaths);
      });
    }

    it("names the credential and the fix", () => {
      const errors = errorsOf(
        compile({
          policies: [policy("p", [{ name: "r", hosts: ["evil.com"], credential: "github" }])],
          credentials: [github],
        }),
      );
      expect(errors[0]?.message).to.equal(
        'host "evil.com" is outside the hosts of Credential agents/github (api.github.com, *.githubusercontent.com); ' +
          "remove it from this rule, move it to a rule without the credential, or add it to the Credential's hosts",
      );
      expect(errors[0]?.object).to.deep.equal({ kind: "EgressPolicy", namespace: "agents", name: "p" });
    });
  });

  describe("mode", () => {
    const cases: { name: string; modes: (string | undefined)[]; want: string }[] = [
      { name: "no policies → Enforce", modes: [], want: "Enforce" },
      { name: "one Audit policy → Audit", modes: ["Audit"], want: "Audit" },
      { name: "every policy Audit → Audit", modes: ["Audit", "Audit"], want: "Audit" },
      { name: "one Enforce among Audit → Enforce", modes: ["Audit", "Enforce"], want: "Enforce" },
      { name: "default mode counts as Enforce", modes: ["Audit", undefined], want: "Enforce" },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const policies = c.modes.map((mode, i) => policy(`p${i}`, [], mode === undefined ? {} : { mode }));
        expect(mustCompile({ policies, credentials: [] }).mode).to.equal(c.want);
      });
    }
  });

  describe("errors", () => {
    it("reports every error of every object, and fails the whole compile", () => {
      const errors = errorsOf(
        compile({
          policies: [
            policy("good", [{ name: "r", hosts: ["a.com"] }]),
            policy("bad", [{ name: "r", hosts: ["*"] }]),
            policy("worse", [], { mode: "audit" }),
          ],
          credentials: [credential("c", { hosts: [] })],
        }),
      );
      expect(errors.map((e) => [e.object?.name, e.path])).to.deep.equal([
        ["bad", "spec.egress[0].hosts[0]"],
        ["worse", "spec.mode"],
        ["c", "spec.hosts"],
      ]);
    });

    it("locates an object without a name by its position in the input", () => {
      const errors = errorsOf(
        compile({ policies: [policy("a", []), { kind: "EgressPolicy" }, null], credentials: [] }),
      );
      expect(errors.map((e) => e.path)).to.deep.equal([
        "policies[1].apiVersion",
        "policies[1].metadata",
        "policies[1].spec",
        "policies[2]",
      ]);
      expect(errors.every((e) => e.object === undefined)).to.equal(true);
    });

    it("refuses the same object twice", () => {
      const errors = errorsOf(compile({ policies: [policy("a", []), policy("a", [])], credentials: [] }));
      expect(errors).to.deep.equal([
        {
          object: { kind: "EgressPolicy", namespace: "agents", name: "a" },
          path: "metadata.name",
          message: "EgressPolicy agents/a is given twice (policies[0] and policies[1]); keep one",
        },
      ]);
    });

    it("never throws on malformed input", () => {
      for (const input of [
        null,
        {},
        { policies: "x", credentials: 1 },
        { policies: [1, [], "x"], credentials: [null] },
      ]) {
        expect(compile(input as never).ok).to.equal(false);
      }
    });
  });

  describe("determinism", () => {
    const policies = [
      policy("zeta", [{ name: "z", hosts: ["z.com"] }]),
      policy("alpha", [
        { name: "a1", hosts: ["api.github.com"], credential: "github" },
        { name: "a2", hosts: ["*.npmjs.org"] },
      ]),
      policy("mid", [{ name: "m", hosts: ["m.com"] }], { namespace: "other" }),
    ];
    const credentials = [credential("zzz"), github, credential("aaa")];

    it("orders policies by id and rules by (policy id, rule index); keeps only referenced credentials", () => {
      const got = mustCompile({ policies, credentials });
      expect(got.policies.map((p) => p.id)).to.deep.equal(["agents/alpha", "agents/zeta", "other/mid"]);
      expect(got.rules.map((r) => `${r.policy}#${r.rule}`)).to.deep.equal([
        "agents/alpha#a1",
        "agents/alpha#a2",
        "agents/zeta#z",
        "other/mid#m",
      ]);
      expect(Object.keys(got.credentials)).to.deep.equal(["agents/github"]);
    });

    it("gives the same bundle and hash for the same input in another order", () => {
      const a = mustCompile({ policies, credentials });
      const b = mustCompile({ policies: [...policies].reverse(), credentials: [...credentials].reverse() });
      expect(b).to.deep.equal(a);
      expect(b.hash).to.equal(a.hash);
    });

    it("changes the hash when anything changes", () => {
      const a = mustCompile({ policies, credentials });
      const b = mustCompile({ policies: [...policies, policy("new", [])], credentials });
      expect(b.hash).to.not.equal(a.hash);
    });
  });
});
