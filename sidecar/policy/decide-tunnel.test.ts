import { expect } from "chai";
import { decideTunnel } from "./decide.ts";
import type { PolicyIndex } from "./load.ts";
import { credential, mustLoad, policy } from "./test-fixtures.ts";
import type { TunnelDecision, TunnelFacts } from "./types.ts";

const index = mustLoad(
  [
    policy("p", [
      { name: "npm", hosts: ["registry.npmjs.org", "*.npmjs.org"], ports: [443] },
      { name: "npm-exact", hosts: ["cdn.npmjs.org"], ports: [443] },
      { name: "github", hosts: ["api.github.com"], credential: "github" },
      { name: "github-open", hosts: ["api.github.com"] },
      { name: "read-only", hosts: ["docs.example.com"], methods: ["GET"] },
      { name: "some-paths", hosts: ["files.example.com"], paths: ["/public/**"] },
    ]),
  ],
  [credential("github")],
);
const audit = mustLoad([policy("p", [{ name: "r", hosts: ["a.example.com"] }], { mode: "Audit" })]);

function stripMessage(got: TunnelDecision): TunnelDecision {
  if (got.action === "intercept") return got;
  const decision = { ...got.decision };
  delete decision.message;
  return { ...got, decision };
}

describe("decideTunnel", () => {
  const cases: {
    name: string;
    index: PolicyIndex | null;
    facts: Omit<TunnelFacts, "entry">;
    want: TunnelDecision;
  }[] = [
    {
      name: "no index → block NoPolicyLoaded",
      index: null,
      facts: { host: "registry.npmjs.org", port: 443 },
      want: { action: "block", decision: { outcome: "block", reason: "NoPolicyLoaded" } },
    },
    {
      name: "no rule for the host → block NoRuleMatched",
      index,
      facts: { host: "example.com", port: 443 },
      want: { action: "block", decision: { outcome: "block", reason: "NoRuleMatched" } },
    },
    {
      name: "no rule for the port → block NoRuleMatched",
      index,
      facts: { host: "registry.npmjs.org", port: 80 },
      want: { action: "block", decision: { outcome: "block", reason: "NoRuleMatched" } },
    },
    {
      name: "IP literal → block NoRuleMatched",
      index,
      facts: { host: "104.16.0.1", port: 443 },
      want: { action: "block", decision: { outcome: "block", reason: "NoRuleMatched" } },
    },
    {
      name: "allow-only rule → passthrough with its decision",
      index,
      facts: { host: "registry.npmjs.org", port: 443 },
      want: {
        action: "passthrough",
        decision: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "npm" },
      },
    },
    {
      name: "several allow-only rules → passthrough with the best-ranked",
      index,
      facts: { host: "cdn.npmjs.org", port: 443 },
      want: {
        action: "passthrough",
        decision: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "npm-exact" },
      },
    },
    {
      name: "host is canonicalised first",
      index,
      facts: { host: "Registry.NPMJS.org.", port: 443 },
      want: {
        action: "passthrough",
        decision: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "npm" },
      },
    },
    {
      name: "a credential rule → intercept",
      index,
      facts: { host: "api.github.com", port: 443 },
      want: { action: "intercept" },
    },
    {
      name: "a methods constraint → intercept",
      index,
      facts: { host: "docs.example.com", port: 443 },
      want: { action: "intercept" },
    },
    {
      name: "a paths constraint → intercept",
      index,
      facts: { host: "files.example.com", port: 443 },
      want: { action: "intercept" },
    },
    {
      name: "Audit: no rule → passthrough with allow AuditWouldBlock",
      index: audit,
      facts: { host: "b.example.com", port: 443 },
      want: {
        action: "passthrough",
        decision: { outcome: "allow", reason: "AuditWouldBlock", auditReason: "NoRuleMatched" },
      },
    },
    {
      name: "Audit: a matching allow rule → passthrough RuleMatched",
      index: audit,
      facts: { host: "a.example.com", port: 443 },
      want: {
        action: "passthrough",
        decision: { outcome: "allow", reason: "RuleMatched", policy: "agents/p", rule: "r" },
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = decideTunnel(c.index, { ...c.facts, entry: "connect" });
      expect(stripMessage(got)).to.deep.equal(c.want);
      if (got.action === "block") expect(got.decision.message).to.match(/add a rule|wait for the first/);
    });
  }
});
