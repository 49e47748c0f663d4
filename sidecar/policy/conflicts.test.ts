import { expect } from "chai";
import { credential, mustCompile, policy } from "./test-fixtures.ts";

describe("compile: conflicts", () => {
  const creds = [credential("a"), credential("b")];
  const rule = (name: string, extra: Record<string, unknown>): Record<string, unknown> => ({
    name,
    hosts: ["api.example.com"],
    ...extra,
  });
  const cases: { name: string; rules: Record<string, unknown>[]; want: [string, string][] }[] = [
    {
      name: "same host, any path, different credentials",
      rules: [rule("x", { credential: "a" }), rule("y", { credential: "b" })],
      want: [["agents/p#x", "agents/p#y"]],
    },
    {
      name: "same credential is no conflict",
      rules: [rule("x", { credential: "a" }), rule("y", { credential: "a" })],
      want: [],
    },
    {
      name: "one rule without credential is no conflict",
      rules: [rule("x", { credential: "a" }), rule("y", {})],
      want: [],
    },
    {
      name: "disjoint ports",
      rules: [rule("x", { credential: "a", ports: [443] }), rule("y", { credential: "b", ports: [8443] })],
      want: [],
    },
    {
      name: "overlapping ports",
      rules: [
        rule("x", { credential: "a", ports: [443, 8443] }),
        rule("y", { credential: "b", ports: [8443] }),
      ],
      want: [["agents/p#x", "agents/p#y"]],
    },
    {
      name: "disjoint methods",
      rules: [
        rule("x", { credential: "a", methods: ["GET"] }),
        rule("y", { credential: "b", methods: ["POST"] }),
      ],
      want: [],
    },
    {
      name: "any method overlaps every method",
      rules: [rule("x", { credential: "a" }), rule("y", { credential: "b", methods: ["POST"] })],
      want: [["agents/p#x", "agents/p#y"]],
    },
    {
      name: "identical path pattern",
      rules: [
        rule("x", { credential: "a", paths: ["/v1/**", "/x"] }),
        rule("y", { credential: "b", paths: ["/v1/**"] }),
      ],
      want: [["agents/p#x", "agents/p#y"]],
    },
    {
      name: "different path patterns",
      rules: [
        rule("x", { credential: "a", paths: ["/v1/**"] }),
        rule("y", { credential: "b", paths: ["/v2/**"] }),
      ],
      want: [],
    },
    {
      name: "paths vs any path ranks differently",
      rules: [rule("x", { credential: "a", paths: ["/v1/**"] }), rule("y", { credential: "b" })],
      want: [],
    },
    {
      name: "exact vs wildcard host ranks differently",
      rules: [rule("x", { credential: "a" }), { name: "y", hosts: ["*.example.com"], credential: "b" }],
      want: [],
    },
    {
      name: "a pair sharing two hosts is reported once",
      rules: [
        { name: "x", hosts: ["a.example.com", "b.example.com"], credential: "a" },
        { name: "y", hosts: ["b.example.com", "a.example.com"], credential: "b" },
      ],
      want: [["agents/p#x", "agents/p#y"]],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(
        mustCompile({ policies: [policy("p", c.rules)], credentials: creds }).conflicts.map((x) => x.rules),
      ).to.deep.equal(c.want);
    });
  }

  it("across policies, with a message naming both rules, without failing compilation", () => {
    const got = mustCompile({
      policies: [
        policy("team-b", [rule("y", { credential: "b" })]),
        policy("team-a", [rule("x", { credential: "a" })]),
      ],
      credentials: creds,
    });
    expect(got.conflicts).to.deep.equal([
      {
        rules: ["agents/team-a#x", "agents/team-b#y"],
        message:
          'rules agents/team-a#x and agents/team-b#y both match host "api.example.com" at the same precedence but attach ' +
          "different credentials (agents/a, agents/b); requests matching both are blocked with RuleConflict; give one rule " +
          "a more specific path, or make both use one credential",
      },
    ]);
  });
});
