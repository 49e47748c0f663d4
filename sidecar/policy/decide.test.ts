import { expect } from "chai";
import { policyHash } from "./canonical-json.ts";
import { decide } from "./decide.ts";
import { load, type PolicyIndex } from "./load.ts";
import { credential, facts, mustCompile, mustLoad, policy, withoutMessage } from "./test-fixtures.ts";
import type { CompiledPolicy, Decision, RequestFacts } from "./types.ts";

// The index of the numbered cases: one policy exercising every line of decide's doc comment.
const main = mustLoad(
  [
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
      { name: "legacy", hosts: ["legacy.example.com"], credential: "legacy" },
      { name: "left", hosts: ["tie.example.com"], credential: "github" },
      { name: "right", hosts: ["tie.example.com"], credential: "legacy" },
    ]),
  ],
  [credential("github", { hosts: ["api.github.com", "tie.example.com"] }), credential("legacy")],
);

// A bundle whose credential bound excludes a rule's host: compile refuses this, so it is built
// by editing a compiled bundle (as a stale or hand-made bundle could be) and re-hashing it.
function mismatchIndex(mode: "Enforce" | "Audit"): PolicyIndex {
  const compiled = mustCompile({
    policies: [policy("p", [{ name: "r", hosts: ["api.github.com"], credential: "c" }], { mode })],
    credentials: [credential("c")],
  });
  const bundle = JSON.parse(JSON.stringify(compiled)) as CompiledPolicy;
  const c = bundle.credentials["agents/c"];
  if (c) c.hosts = [{ kind: "exact", name: "uploads.github.com" }];
  bundle.hash = policyHash(bundle);
  const loaded = load(bundle);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.value;
}

interface Case {
  name: string;
  index: PolicyIndex | null;
  facts: Partial<RequestFacts>;
  want: Decision;
  message?: string;
}

function run(cases: Case[]): void {
  for (const c of cases) {
    it(c.name, () => {
      const got = decide(c.index, facts(c.facts));
      expect(withoutMessage(got)).to.deep.equal(c.want);
      if (c.message !== undefined) expect(got.message).to.equal(c.message);
      if (got.outcome === "block") expect(got.message).to.be.a("string").and.not.equal("");
      if (got.reason === "RuleMatched") expect(got).to.not.have.property("message");
    });
  }
}

describe("decide: one case per numbered check", () => {
  run([
    {
      name: "1. no index loaded → block NoPolicyLoaded",
      index: null,
      facts: {},
      want: { outcome: "block", reason: "NoPolicyLoaded" },
    },
    {
      name: "2. host, port, method and path all match → the rule is a candidate",
      index: main,
      facts: { method: "POST", path: "/repos/acme/x/issues" },
      want: {
        outcome: "inject",
        reason: "RuleMatched",
        policy: "agents/coding-agent",
        rule: "github-api",
        credential: "agents/github",
      },
    },
    {
      name: "2. an IP literal host matches nothing",
      index: main,
      facts: { host: "140.82.112.6" },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
    {
      name: "2. an invalid host matches nothing",
      index: main,
      facts: { host: "api_github.com" },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
    {
      name: "2. a port not listed matches nothing",
      index: main,
      facts: { port: 8443, path: "/repos/x" },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
    {
      name: "2. a method not listed matches nothing",
      index: main,
      facts: { method: "DELETE", path: "/repos/x" },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
    {
      name: "2. a path not matched matches nothing",
      index: main,
      facts: { path: "/user" },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
    {
      name: "2. a rule without methods/paths matches any",
      index: main,
      facts: { host: "registry.npmjs.org", method: "PUT", path: "/x/y" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/coding-agent", rule: "npm" },
    },
    {
      name: "2. a rule without methods does not match TRACE (it would reflect the credential)",
      index: main,
      facts: { host: "registry.npmjs.org", method: "TRACE", path: "/x" },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
    {
      name: "2. a rule without methods does not match an extension method",
      index: main,
      facts: { host: "registry.npmjs.org", method: "PROPFIND", path: "/x" },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
    {
      name: "2. a rule without methods matches OPTIONS (one of the documented set)",
      index: main,
      facts: { host: "registry.npmjs.org", method: "OPTIONS", path: "/x" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/coding-agent", rule: "npm" },
    },
    {
      name: "3. no candidate → block NoRuleMatched, saying what to change",
      index: main,
      facts: { host: "example.com", path: "/y" },
      want: { outcome: "block", reason: "NoRuleMatched" },
      message:
        "no rule of the loaded policy allows GET https://example.com:443/y; add a rule to an EgressPolicy selecting this pod",
    },
    {
      name: "3. wildcard does not match apex",
      index: main,
      facts: { host: "npmjs.org" },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
    {
      name: "4. candidates are ranked (exact host first; see the precedence table)",
      index: main,
      facts: { host: "registry.npmjs.org" },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/coding-agent", rule: "npm" },
    },
    {
      name: "5. a tie on host and path with different credentials → block RuleConflict",
      index: main,
      facts: { host: "tie.example.com" },
      want: { outcome: "block", reason: "RuleConflict", policy: "agents/coding-agent", rule: "left" },
      message:
        "rules agents/coding-agent#left and agents/coding-agent#right both match GET https://tie.example.com:443/ at the same " +
        "precedence but attach different credentials (agents/github, agents/legacy); refusing to guess: give one rule a more " +
        "specific path, or make both use one credential",
    },
    {
      name: "6. credential bound excludes the host → block CredentialHostMismatch",
      index: mismatchIndex("Enforce"),
      facts: {},
      want: { outcome: "block", reason: "CredentialHostMismatch", policy: "agents/p", rule: "r" },
    },
    {
      name: "6. credential over cleartext http → block CredentialRequiresTls",
      index: main,
      facts: { scheme: "http", host: "legacy.example.com", port: 80 },
      want: {
        outcome: "block",
        reason: "CredentialRequiresTls",
        policy: "agents/coding-agent",
        rule: "legacy",
      },
      message:
        "rule agents/coding-agent#legacy attaches Credential agents/legacy, which never leaves over cleartext; request https://legacy.example.com/ instead",
    },
    {
      name: "6. credential over https → inject RuleMatched with the credential",
      index: main,
      facts: { host: "legacy.example.com" },
      want: {
        outcome: "inject",
        reason: "RuleMatched",
        policy: "agents/coding-agent",
        rule: "legacy",
        credential: "agents/legacy",
      },
    },
    {
      name: "7. rule without credential → allow RuleMatched",
      index: main,
      facts: { scheme: "http", host: "a.b.npmjs.org", port: 80 },
      want: { outcome: "allow", reason: "RuleMatched", policy: "agents/coding-agent", rule: "npm" },
    },
  ]);
});

describe("decide: canonical facts", () => {
  run([
    {
      name: "upper-case host with trailing dot is the same host",
      index: main,
      facts: { host: "API.GitHub.com.", path: "/repos/x" },
      want: {
        outcome: "inject",
        reason: "RuleMatched",
        policy: "agents/coding-agent",
        rule: "github-api",
        credential: "agents/github",
      },
    },
    {
      name: "IPv6 literal matches nothing",
      index: main,
      facts: { host: "::1" },
      want: { outcome: "block", reason: "NoRuleMatched" },
      message:
        "no rule of the loaded policy allows GET https://[::1]:443/; IP literals never match a rule: address the service by its DNS name; add a rule to an EgressPolicy selecting this pod",
    },
    {
      name: "lower-case method is not an upper-case one",
      index: main,
      facts: { method: "get", path: "/repos/x" },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
    {
      name: "malformed facts block instead of throwing",
      index: main,
      facts: { host: undefined, path: undefined },
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
  ]);
});

describe("decide: totality", () => {
  it("never throws on facts that are not facts", () => {
    for (const bad of [null, undefined, 42, "GET /", { host: 1, port: "443", path: null }]) {
      expect(withoutMessage(decide(main, bad as unknown as RequestFacts))).to.deep.equal({
        outcome: "block",
        reason: "NoRuleMatched",
      });
    }
  });
});

describe("decide: Audit", () => {
  const audit = mustLoad(
    [
      policy(
        "p",
        [
          { name: "legacy", hosts: ["legacy.example.com"], credential: "a" },
          { name: "x", hosts: ["tie.example.com"], credential: "a" },
          { name: "y", hosts: ["tie.example.com"], credential: "b" },
        ],
        { mode: "Audit" },
      ),
    ],
    [credential("a"), credential("b")],
  );
  run([
    {
      name: "NoRuleMatched becomes allow AuditWouldBlock",
      index: audit,
      facts: { host: "example.com" },
      want: { outcome: "allow", reason: "AuditWouldBlock", auditReason: "NoRuleMatched" },
    },
    {
      name: "RuleConflict becomes allow AuditWouldBlock, naming the rule",
      index: audit,
      facts: { host: "tie.example.com" },
      want: {
        outcome: "allow",
        reason: "AuditWouldBlock",
        auditReason: "RuleConflict",
        policy: "agents/p",
        rule: "x",
      },
    },
    {
      name: "CredentialRequiresTls becomes allow without the credential",
      index: audit,
      facts: { scheme: "http", host: "legacy.example.com", port: 80 },
      want: {
        outcome: "allow",
        reason: "AuditWouldBlock",
        auditReason: "CredentialRequiresTls",
        policy: "agents/p",
        rule: "legacy",
      },
    },
    {
      name: "CredentialHostMismatch becomes allow without the credential",
      index: mismatchIndex("Audit"),
      facts: {},
      want: {
        outcome: "allow",
        reason: "AuditWouldBlock",
        auditReason: "CredentialHostMismatch",
        policy: "agents/p",
        rule: "r",
      },
    },
    {
      name: "a matching inject rule still injects",
      index: audit,
      facts: { host: "legacy.example.com" },
      want: {
        outcome: "inject",
        reason: "RuleMatched",
        policy: "agents/p",
        rule: "legacy",
        credential: "agents/a",
      },
    },
    {
      name: "NoPolicyLoaded is never relaxed",
      index: null,
      facts: {},
      want: { outcome: "block", reason: "NoPolicyLoaded" },
    },
    {
      name: "one Enforce policy among Audit ones enforces",
      index: mustLoad([policy("a", [], { mode: "Audit" }), policy("b", [])]),
      facts: {},
      want: { outcome: "block", reason: "NoRuleMatched" },
    },
  ]);
});
