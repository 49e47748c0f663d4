import { expect } from "chai";
import { decide } from "./decide.ts";
import { credential, facts, mustLoad, policy, withoutMessage } from "./test-fixtures.ts";
import type { Decision, RequestFacts } from "./types.ts";

// Each case compiles its own policies; `want` is the rule that decides.
describe("decide: precedence", () => {
  const creds = [credential("a"), credential("b")];
  const cases: { name: string; policies: unknown[]; facts: Partial<RequestFacts>; want: Decision }[] = [
    {
      name: "(a) exact host before wildcard",
      policies: [
        policy("p", [
          { name: "wild", hosts: ["*.example.com"] },
          { name: "exact", hosts: ["api.example.com"] },
        ]),
      ],
      facts: { host: "api.example.com" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "exact" },
    },
    {
      name: "(a) before (b): exact host beats a longer path on a wildcard",
      policies: [
        policy("p", [
          { name: "wild", hosts: ["*.example.com"], paths: ["/a/very/long/path/**"], credential: "a" },
          { name: "exact", hosts: ["api.example.com"] },
        ]),
      ],
      facts: { host: "api.example.com", path: "/a/very/long/path/x" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "exact" },
    },
    {
      name: "(a) the longer wildcard suffix first",
      policies: [
        policy("p", [
          { name: "short", hosts: ["*.example.com"] },
          { name: "long", hosts: ["*.eu.example.com"] },
        ]),
      ],
      facts: { host: "api.eu.example.com" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "long" },
    },
    {
      name: "(a) a rule ranks by its best host (exact and wildcard listed)",
      policies: [
        policy("p", [
          { name: "eu", hosts: ["*.eu.example.com"] },
          { name: "both", hosts: ["*.example.com", "api.eu.example.com"] },
        ]),
      ],
      facts: { host: "api.eu.example.com" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "both" },
    },
    {
      name: "(b) the longer path pattern first",
      policies: [
        policy("p", [
          { name: "short", hosts: ["api.example.com"], paths: ["/repos/**"] },
          { name: "long", hosts: ["api.example.com"], paths: ["/repos/*/issues"] },
        ]),
      ],
      facts: { host: "api.example.com", path: "/repos/x/issues" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "long" },
    },
    {
      name: "(b) the longest pattern that matched counts, not the longest listed",
      policies: [
        policy("p", [
          { name: "mixed", hosts: ["api.example.com"], paths: ["/x/**", "/a/much/longer/pattern"] },
          { name: "mid", hosts: ["api.example.com"], paths: ["/x/*/y"] },
        ]),
      ],
      facts: { host: "api.example.com", path: "/x/1/y" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "mid" },
    },
    {
      name: "(b) any path ranks below every path pattern",
      policies: [
        policy("p", [
          { name: "any", hosts: ["api.example.com"], credential: "a" },
          { name: "slash", hosts: ["api.example.com"], paths: ["/**"] },
        ]),
      ],
      facts: { host: "api.example.com" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "slash" },
    },
    {
      name: "(c) a rule with a credential before one without",
      policies: [
        policy("p", [
          { name: "plain", hosts: ["api.example.com"] },
          { name: "cred", hosts: ["api.example.com"], credential: "a" },
        ]),
      ],
      facts: { host: "api.example.com" },
      want: {
        outcome: "inject",
        reason: "RuleMatched",
        policy: "agents/p",
        rule: "cred",
        credential: "agents/a",
      },
    },
    {
      name: "(d) policy id in string order",
      policies: [
        policy("b", [{ name: "r", hosts: ["api.example.com"] }]),
        policy("a", [{ name: "r", hosts: ["api.example.com"] }]),
      ],
      facts: { host: "api.example.com" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/a", rule: "r" },
    },
    {
      name: "(d) policy id includes the namespace",
      policies: [
        policy("a", [{ name: "r", hosts: ["api.example.com"] }], { namespace: "zeta" }),
        policy("z", [{ name: "r", hosts: ["api.example.com"] }]),
      ],
      facts: { host: "api.example.com" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/z", rule: "r" },
    },
    {
      name: "(e) rule index",
      policies: [
        policy("p", [
          { name: "first", hosts: ["api.example.com"] },
          { name: "second", hosts: ["api.example.com"] },
        ]),
      ],
      facts: { host: "api.example.com" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "first" },
    },
    {
      name: "(5) same credential at the same rank is no conflict",
      policies: [
        policy("p", [
          { name: "x", hosts: ["api.example.com"], credential: "a" },
          { name: "y", hosts: ["api.example.com"], credential: "a" },
        ]),
      ],
      facts: { host: "api.example.com" },
      want: {
        outcome: "inject",
        reason: "RuleMatched",
        policy: "agents/p",
        rule: "x",
        credential: "agents/a",
      },
    },
    {
      name: "(5) different credentials at different path ranks is no conflict",
      policies: [
        policy("p", [
          { name: "x", hosts: ["api.example.com"], credential: "a" },
          { name: "y", hosts: ["api.example.com"], paths: ["/v2/**"], credential: "b" },
        ]),
      ],
      facts: { host: "api.example.com", path: "/v2/x" },
      want: {
        outcome: "inject",
        reason: "RuleMatched",
        policy: "agents/p",
        rule: "y",
        credential: "agents/b",
      },
    },
    {
      name: "(5) equal-length different patterns that both match conflict",
      policies: [
        policy("p", [
          { name: "x", hosts: ["api.example.com"], paths: ["/a/*"], credential: "a" },
          { name: "y", hosts: ["api.example.com"], paths: ["/*/b"], credential: "b" },
        ]),
      ],
      facts: { host: "api.example.com", path: "/a/b" },
      want: { outcome: "block", reason: "RuleConflict", policy: "agents/p", rule: "x" },
    },
    {
      name: "(5) a third tied rule with another credential still conflicts",
      policies: [
        policy("p", [
          { name: "x", hosts: ["api.example.com"], credential: "a" },
          { name: "y", hosts: ["api.example.com"], credential: "a" },
          { name: "z", hosts: ["api.example.com"], credential: "b" },
        ]),
      ],
      facts: { host: "api.example.com" },
      want: { outcome: "block", reason: "RuleConflict", policy: "agents/p", rule: "x" },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const index = mustLoad(c.policies, creds);
      expect(withoutMessage(decide(index, facts(c.facts)))).to.deep.equal(c.want);
    });
  }
});
