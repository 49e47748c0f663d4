import { expect } from "chai";
import { compile, type CompiledPolicy } from "../../sidecar/policy/index.ts";
import { desiredState } from "./desired.ts";
import type { PodPlan } from "./pods.ts";
import type { PodInfo } from "./snapshot.ts";
import { allow, credential, inject, pod, policy, secret, snapshot } from "./test-fixtures.ts";

function bundleOf(policies: unknown[], credentials: unknown[] = []): CompiledPolicy {
  const result = compile({ policies, credentials, defaultNamespace: "agents" });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

const web = policy("web", [allow("npm", "registry.npmjs.org")], {
  podSelector: { matchLabels: { app: "a" } },
});
const gh = policy("gh", [inject("gh", "api.github.com", "github")], {
  podSelector: { matchLabels: { app: "a" } },
});
const github = credential("github");
const ready = { credentials: [github], secrets: [secret("github-token")] };

function plan(p: Partial<PodPlan> & Pick<PodPlan, "name">): PodPlan {
  return {
    uid: `uid-${p.name}`,
    serviceAccount: "agent",
    identity: [],
    heldBy: [],
    hash: null,
    reported: null,
    sync: "Pending",
    detail: "",
    ...p,
  };
}

describe("desiredState: identities, bundles and pushes", () => {
  it("pods with the same labels share one bundle", () => {
    const got = desiredState(
      snapshot({ policies: [web, gh], ...ready, pods: [pod("b", { app: "a" }), pod("a", { app: "a" })] }),
    );
    const bundle = bundleOf([gh, web], [github]);
    expect(got.bundles).to.deep.equal([bundle]);
    expect(got.pushes).to.deep.equal([
      { pod: "a", uid: "uid-a", podIP: "10.0.0.1", hash: bundle.hash, policy: bundle },
      { pod: "b", uid: "uid-b", podIP: "10.0.0.1", hash: bundle.hash, policy: bundle },
    ]);
    expect(got.pods.map((p) => [p.name, p.identity, p.hash])).to.deep.equal([
      ["a", ["gh", "web"], bundle.hash],
      ["b", ["gh", "web"], bundle.hash],
    ]);
  });

  it("a pod selected by no policy gets the empty bundle, which blocks everything", () => {
    const got = desiredState(snapshot({ policies: [web], pods: [pod("lonely", { app: "other" })] }));
    const empty = bundleOf([]);
    expect(empty).to.include({ mode: "Enforce" });
    expect(empty.rules).to.deep.equal([]);
    expect(got.pushes).to.deep.equal([
      { pod: "lonely", uid: "uid-lonely", podIP: "10.0.0.6", hash: empty.hash, policy: empty },
    ]);
  });

  it("a sidecar that already reports the hash is not pushed to again", () => {
    const hash = bundleOf([web]).hash;
    const got = desiredState(
      snapshot({ policies: [web], pods: [pod("a", { app: "a" })], sidecars: { a: { generation: 3, hash } } }),
    );
    expect(got.pushes).to.deep.equal([]);
    expect(got.pods).to.deep.equal([
      plan({
        name: "a",
        identity: ["web"],
        hash,
        reported: hash,
        sync: "Synced",
        detail: `runs bundle ${hash.slice(0, 19)}`,
      }),
    ]);
  });

  const targets: { name: string; pod: Partial<PodInfo>; push: boolean; sync: PodPlan["sync"] }[] = [
    { name: "running with an IP", pod: {}, push: true, sync: "Pending" },
    {
      name: "pending with an IP (native sidecar already up)",
      pod: { phase: "Pending" },
      push: true,
      sync: "Pending",
    },
    { name: "no IP yet", pod: { podIP: undefined }, push: false, sync: "NoAddress" },
    { name: "not injected", pod: { injected: false }, push: false, sync: "Untracked" },
    { name: "deleting", pod: { deleting: true }, push: false, sync: "Untracked" },
    { name: "succeeded", pod: { phase: "Succeeded" }, push: false, sync: "Untracked" },
    { name: "phase Unknown (node lost)", pod: { phase: "Unknown" }, push: false, sync: "Pending" },
  ];
  for (const t of targets) {
    it(`push target when ${t.name}: ${String(t.push)}`, () => {
      const got = desiredState(snapshot({ policies: [web], pods: [pod("a", { app: "a" }, t.pod)] }));
      expect(got.pushes.map((p) => p.pod)).to.deep.equal(t.push ? ["a"] : []);
      expect(got.pods.map((p) => p.sync)).to.deep.equal([t.sync]);
    });
  }

  it("an invalid policy stops new bundles for the identities it selects and reports InvalidSpec with its field path", () => {
    const bad = policy("bad", [allow("any", "*")], { podSelector: { matchLabels: { app: "a" } } });
    const got = desiredState(
      snapshot({ policies: [web, bad], pods: [pod("a", { app: "a" }), pod("z", { app: "z" })] }),
    );
    expect(got.pushes.map((p) => p.pod)).to.deep.equal(["z"]);
    expect(got.pods[0]).to.deep.include({
      name: "a",
      identity: ["web"],
      heldBy: ["bad"],
      hash: null,
      sync: "Held",
    });
    const status = got.policies.find((p) => p.name === "bad")?.status;
    expect(status?.conditions[0]).to.include({ status: "False", reason: "InvalidSpec" });
    expect(status?.conditions[0]?.message).to.match(/^spec\.egress\[0\]\.hosts\[0\]: /);
    expect(got.policies.find((p) => p.name === "web")?.status.conditions[0]).to.deep.include({
      reason: "SyncPending",
      message:
        "1 of 1 pod not on the current bundle: pod a: no new bundle: EgressPolicy bad selecting it must be " +
        "fixed; the sidecar keeps its last good bundle",
    });
  });

  it("a policy whose podSelector is invalid holds every pod of the namespace", () => {
    const bad = policy("bad", [], { podSelector: { matchLabels: { "bad key!": "x" } } });
    const got = desiredState(
      snapshot({ policies: [web, bad], pods: [pod("a", { app: "a" }), pod("z", {})] }),
    );
    expect(got.pushes).to.deep.equal([]);
    expect(got.pods.map((p) => [p.name, p.heldBy])).to.deep.equal([
      ["a", ["bad"]],
      ["z", ["bad"]],
    ]);
    expect(got.policies.find((p) => p.name === "bad")?.status.selectedPods).to.equal(0);
  });

  it("a rule naming a Credential that does not exist: CompileFailed with its path, selected pods held", () => {
    const got = desiredState(snapshot({ policies: [gh], pods: [pod("a", { app: "a" })] }));
    expect(got.pushes).to.deep.equal([]);
    expect(got.policies[0]?.status.conditions[0]).to.deep.include({
      status: "False",
      reason: "CompileFailed",
      message:
        "spec.egress[0].credential: Credential github not found in namespace agents; create it or remove the reference",
    });
  });

  it("a rule naming an invalid Credential: CompileFailed on the policy, InvalidSpec on the Credential", () => {
    const broken = credential("github", { injection: {} });
    const got = desiredState(
      snapshot({ policies: [gh], credentials: [broken], pods: [pod("a", { app: "a" })] }),
    );
    expect(got.pushes).to.deep.equal([]);
    expect(got.policies[0]?.status.conditions[0]).to.deep.include({
      reason: "CompileFailed",
      message:
        "spec.egress[0].credential: Credential github is invalid (see its status); fix it or remove the reference",
    });
    expect(got.credentials[0]?.status.conditions[0]).to.include({ reason: "InvalidSpec" });
  });

  it("a host outside the Credential's bound: CompileFailed naming the host's path", () => {
    const bound = credential("github", { hosts: ["api.github.com"] });
    const wide = policy("gh", [
      { name: "gh", hosts: ["api.github.com", "evil.example"], credential: "github" },
    ]);
    const got = desiredState(snapshot({ policies: [wide], credentials: [bound], pods: [pod("a", {})] }));
    expect(got.pushes).to.deep.equal([]);
    expect(got.policies[0]?.status.conditions[0]?.reason).to.equal("CompileFailed");
    expect(got.policies[0]?.status.conditions[0]?.message).to.match(
      /^spec\.egress\[0\]\.hosts\[1\]: host "evil\.example"/,
    );
  });

  it("one bad object never hides the others: an unrelated valid policy still compiles and pushes", () => {
    const bad = policy("bad", [allow("any", "*")], { podSelector: { matchLabels: { app: "b" } } });
    const got = desiredState(snapshot({ policies: [bad, web], pods: [pod("a", { app: "a" })] }));
    expect(got.pushes.map((p) => [p.pod, p.hash])).to.deep.equal([["a", bundleOf([web]).hash]]);
    expect(got.policies.map((p) => [p.name, p.status.conditions[0]?.reason])).to.deep.equal([
      ["bad", "InvalidSpec"],
      ["web", "SyncPending"],
    ]);
  });

  it("an invalid Credential no policy uses holds nothing back", () => {
    const broken = credential("broken", { injection: {} });
    const got = desiredState(
      snapshot({
        policies: [web, gh],
        credentials: [broken, github],
        secrets: ready.secrets,
        pods: [pod("a", { app: "a" })],
      }),
    );
    expect(got.pushes.map((p) => [p.pod, p.hash])).to.deep.equal([["a", bundleOf([gh, web], [github]).hash]]);
    expect(got.credentials.map((c) => [c.name, c.status.conditions[0]?.reason])).to.deep.equal([
      ["broken", "InvalidSpec"],
      ["github", "SecretFound"],
    ]);
  });

  it("objects of another namespace or without a name are ignored", () => {
    const other = { ...web, metadata: { name: "other", namespace: "elsewhere" } };
    const got = desiredState(snapshot({ policies: [other, { spec: {} }], pods: [] }));
    expect(got.policies).to.deep.equal([]);
  });

  it("is deterministic and JSON-serialisable whatever the input order", () => {
    const pods = [pod("c", { app: "a" }), pod("a", {}), pod("b", { app: "a" }, { serviceAccount: "other" })];
    const one = desiredState(snapshot({ policies: [web, gh], ...ready, pods }));
    const two = desiredState(
      snapshot({
        policies: [gh, web],
        credentials: [github],
        secrets: ready.secrets,
        pods: [...pods].reverse(),
      }),
    );
    expect(two).to.deep.equal(one);
    expect(JSON.parse(JSON.stringify(one))).to.deep.equal(one);
  });
});
