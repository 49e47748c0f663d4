import { expect } from "chai";
import { compile } from "../../sidecar/policy/index.ts";
import { credentialReady } from "./credential-status.ts";
import { desiredState } from "./desired.ts";
import { analyseCredentials } from "./objects.ts";
import { policyReady, type PolicyFacts, type PolicyReason } from "./policy-status.ts";
import type { SecretInfo } from "./snapshot.ts";
import { allow, credential, inject, pod, policy, secret, snapshot } from "./test-fixtures.ts";

const none: PolicyFacts = {
  specErrors: [],
  compileErrors: [],
  conflicts: [],
  secretMissing: [],
  keyMissing: [],
  tracked: 0,
  pending: [],
};
const all: PolicyFacts = {
  specErrors: [{ path: "spec.mode", message: "bad" }],
  compileErrors: [{ path: "spec.egress[0].credential", message: "missing" }],
  conflicts: ["rules x and y conflict"],
  secretMissing: ["Credential a: Secret a not found; create it"],
  keyMissing: ['Credential b: Secret b has no key "k"; add it'],
  tracked: 2,
  pending: ["pod p: not acknowledged"],
};

describe("policyReady precedence (one case per line of its doc comment)", () => {
  const cases: { name: string; facts: PolicyFacts; want: [PolicyReason, "True" | "False", string] }[] = [
    { name: "1. InvalidSpec beats everything", facts: all, want: ["InvalidSpec", "False", "spec.mode: bad"] },
    {
      name: "2. CompileFailed beats Conflict and below",
      facts: { ...all, specErrors: [] },
      want: ["CompileFailed", "False", "spec.egress[0].credential: missing"],
    },
    {
      name: "3. Conflict beats missing Secrets and sync",
      facts: { ...all, specErrors: [], compileErrors: [] },
      want: ["Conflict", "False", "rules x and y conflict"],
    },
    {
      name: "4. SecretMissing beats KeyMissing, and its message lists both",
      facts: {
        ...none,
        secretMissing: all.secretMissing,
        keyMissing: all.keyMissing,
        pending: all.pending,
        tracked: 2,
      },
      want: ["SecretMissing", "False", `${all.secretMissing[0] ?? ""}; ${all.keyMissing[0] ?? ""}`],
    },
    {
      name: "5. KeyMissing beats SyncPending",
      facts: { ...none, keyMissing: all.keyMissing, pending: all.pending, tracked: 2 },
      want: ["KeyMissing", "False", all.keyMissing[0] ?? ""],
    },
    {
      name: "6. SyncPending when a tracked pod is not on its bundle",
      facts: { ...none, pending: all.pending, tracked: 2 },
      want: ["SyncPending", "False", "1 of 2 pods not on the current bundle: pod p: not acknowledged"],
    },
    {
      name: "7. Synced when every tracked pod reports its bundle",
      facts: { ...none, tracked: 1 },
      want: ["Synced", "True", "1 pod runs the current bundle"],
    },
    {
      name: "8. Compiled when no tracked pod includes it",
      facts: none,
      want: ["Compiled", "True", "compiled; selects no pod with an airlock sidecar"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [reason, status, message] = c.want;
      expect(policyReady(c.facts, 7)).to.deep.equal({
        type: "Ready",
        status,
        reason,
        message,
        observedGeneration: 7,
      });
    });
  }
});

describe("credentialReady precedence", () => {
  const cases: { name: string; raw: unknown; secrets: SecretInfo[]; want: string[] }[] = [
    {
      name: "1. InvalidSpec",
      raw: credential("c", { secretRef: { name: "Bad_Name", key: "token" } }),
      secrets: [],
      want: ["InvalidSpec", "False"],
    },
    { name: "2. SecretMissing", raw: credential("c"), secrets: [], want: ["SecretMissing", "False"] },
    {
      name: "3. KeyMissing",
      raw: credential("c"),
      secrets: [secret("c-token", ["other"])],
      want: ["KeyMissing", "False"],
    },
    {
      name: "4. SecretFound",
      raw: credential("c"),
      secrets: [secret("c-token")],
      want: ["SecretFound", "True"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [entry] = analyseCredentials([c.raw], c.secrets, "agents");
      if (entry === undefined) throw new Error("no entry");
      const got = credentialReady(entry, "agents");
      expect([got.reason, got.status]).to.deep.equal(c.want);
    });
  }
});

describe("EgressPolicy and Credential status", () => {
  const gh = policy("gh", [inject("gh", "api.github.com", "github")], { generation: 4 });

  it("a credential whose Secret lacks the key → KeyMissing on the credential and on every policy using it", () => {
    const also = policy("also", [inject("gh2", "uploads.github.com", "github")]);
    const unrelated = policy("unrelated", [allow("npm", "registry.npmjs.org")]);
    const got = desiredState(
      snapshot({
        policies: [gh, also, unrelated],
        credentials: [credential("github")],
        secrets: [secret("github-token", ["password"])],
      }),
    );
    expect(got.credentials).to.deep.equal([
      {
        name: "github",
        uid: "uid-github",
        status: {
          observedGeneration: 1,
          conditions: [
            {
              type: "Ready",
              status: "False",
              reason: "KeyMissing",
              message: 'Secret github-token has no key "token"; add it or fix spec.secretRef.key',
              observedGeneration: 1,
            },
          ],
        },
      },
    ]);
    expect(
      got.policies.map((p) => [p.name, p.status.conditions[0]?.reason, p.status.conditions[0]?.message]),
    ).to.deep.equal([
      ["also", "KeyMissing", 'Credential github: Secret github-token has no key "token"; add it'],
      ["gh", "KeyMissing", 'Credential github: Secret github-token has no key "token"; add it'],
      ["unrelated", "Compiled", "compiled; selects no pod with an airlock sidecar"],
    ]);
  });

  it("a NACK shows as SyncPending with its reason and errors", () => {
    const hash = compile({ policies: [gh], credentials: [credential("github")], defaultNamespace: "agents" });
    if (!hash.ok) throw new Error("compile");
    const got = desiredState(
      snapshot({
        policies: [gh],
        credentials: [credential("github")],
        secrets: [secret("github-token")],
        pods: [pod("a", {})],
        sidecars: {
          a: {
            generation: 2,
            hash: null,
            lastError: {
              reason: "LoadFailed",
              message: "the policy in the bundle failed to load",
              errors: [{ path: "rules[0].hosts", message: "bad" }],
            },
          },
        },
      }),
    );
    expect(got.policies[0]?.status).to.deep.equal({
      observedGeneration: 4,
      conditions: [
        {
          type: "Ready",
          status: "False",
          reason: "SyncPending",
          message:
            `1 of 1 pod not on the current bundle: pod a: bundle ${hash.value.hash.slice(0, 19)} rejected: ` +
            "LoadFailed: the policy in the bundle failed to load (rules[0].hosts: bad)",
          observedGeneration: 4,
        },
      ],
      selectedPods: 1,
      syncedPods: 0,
    });
    expect(got.pods[0]?.sync).to.equal("Rejected");
    expect(got.pushes.map((p) => p.pod)).to.deep.equal(["a"]); // retried, with the caller's backoff
  });

  it("a NACK about another hash is stale and not shown", () => {
    const got = desiredState(
      snapshot({
        policies: [policy("p", [])],
        pods: [pod("a", {})],
        sidecars: {
          a: {
            generation: 1,
            hash: null,
            lastError: { reason: "BadSignature", message: "x", hash: "sha256:old" },
          },
        },
      }),
    );
    expect(got.pods[0]?.sync).to.equal("Pending");
  });

  it("Synced counts the pods on their bundle; selectedPods counts matching pods, injected or not, not deleting", () => {
    const p = policy("p", [allow("npm", "registry.npmjs.org")], {
      podSelector: { matchLabels: { app: "a" } },
    });
    const result = compile({ policies: [p], credentials: [], defaultNamespace: "agents" });
    if (!result.ok) throw new Error("compile");
    const hash = result.value.hash;
    const got = desiredState(
      snapshot({
        policies: [p],
        pods: [
          pod("on", { app: "a" }),
          pod("plain", { app: "a" }, { injected: false }),
          pod("done", { app: "a" }, { phase: "Succeeded" }),
          pod("gone", { app: "a" }, { deleting: true }),
          pod("other", { app: "b" }),
        ],
        sidecars: { on: { generation: 1, hash } },
      }),
    );
    expect(got.policies[0]?.status).to.deep.include({ selectedPods: 3, syncedPods: 1 });
    expect(got.policies[0]?.status.conditions[0]).to.include({ reason: "Synced", status: "True" });
  });

  it("rules of two policies in conflict: both report Conflict naming both rules; the bundle is still pushed", () => {
    const a = policy("a", [inject("x", "api.github.com", "one")]);
    const b = policy("b", [inject("y", "api.github.com", "two")]);
    const got = desiredState(
      snapshot({
        policies: [a, b],
        credentials: [credential("one"), credential("two")],
        secrets: [secret("one-token"), secret("two-token")],
        pods: [pod("p", {})],
      }),
    );
    for (const status of got.policies.map((p) => p.status)) {
      expect(status.conditions[0]?.reason).to.equal("Conflict");
      expect(status.conditions[0]?.message).to.contain("agents/a#x").and.contain("agents/b#y");
    }
    expect(got.pushes).to.have.length(1);
  });

  it("a conflict inside one policy is reported even when it selects no pod", () => {
    const p = policy("p", [inject("x", "api.github.com", "one"), inject("y", "api.github.com", "two")]);
    const got = desiredState(
      snapshot({ policies: [p], credentials: [credential("one"), credential("two")], secrets: [] }),
    );
    expect(got.policies[0]?.status.conditions[0]?.reason).to.equal("Conflict");
  });
});
