import { expect } from "chai";
import { generateKeyPairSync } from "node:crypto";
import { eventually } from "../test/helpers/eventually.ts";
import { credential, inject, pod, policy, secret } from "./core/test-fixtures.ts";
import { Reconciler } from "./reconciler.ts";
import { FakeSidecar } from "./test-fake-sidecar.ts";
import { MemoryCluster, type WriteEvent } from "./test-memory-cluster.ts";

const NS = "agents";
const ROLE = "airlock-secrets-agent";
const keys = generateKeyPairSync("ed25519");

/** Polls `probe` until it returns true (each try after the event loop turned), failing after `ms`. */
async function until(probe: () => boolean, what: string, ms = 10_000): Promise<void> {
  await eventually(() => expect(probe()).to.equal(true), { timeoutMs: ms, intervalMs: 10, what });
}

function ready(cluster: MemoryCluster, kind: "EgressPolicy" | "Credential", name: string) {
  const status = (cluster.get(NS, kind, name) as { status?: { conditions?: unknown[] } } | undefined)?.status;
  return status?.conditions?.[0] as { reason: string; message: string } | undefined;
}

function secretsOf(cluster: MemoryCluster): string[] | undefined {
  return cluster.roles(NS).get(ROLE)?.rules[0].resourceNames;
}

describe("operator reconciler, in-process against an in-memory Cluster and fake sidecars", function () {
  let cluster: MemoryCluster;
  let sidecar: FakeSidecar;
  let reconciler: Reconciler;

  beforeEach(async function () {
    cluster = new MemoryCluster();
    sidecar = await FakeSidecar.start("agent-a", "127.0.0.2", 0, keys.publicKey, cluster.log);
    reconciler = new Reconciler({
      cluster,
      push: { privateKey: keys.privateKey, port: sidecar.port, timeoutMs: 2000 },
      resyncMs: 3_600_000,
      workers: 1,
      now: () => "2024-01-01T00:00:00Z",
    });
    // Policy p injects credential c (Secret c-token) for pod agent-a; an unrelated Secret sits beside it.
    cluster.apply(NS, "EgressPolicy", policy("p", [inject("r", "api.example.test", "c")]));
    cluster.apply(NS, "Credential", credential("c"));
    cluster.apply(NS, "Secret", secret("c-token"));
    cluster.apply(NS, "Secret", secret("unrelated"));
    cluster.apply(NS, "Pod", pod("agent-a", { app: "a" }, { podIP: "127.0.0.2" }));
  });
  afterEach(async function () {
    await reconciler.stop();
    await sidecar.close();
  });

  /** Reconciles until a pass changes nothing: no write, no push (at most 5 passes). */
  async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      const before = cluster.log.length;
      await reconciler.reconcile(NS);
      if (cluster.log.length === before) return;
    }
    throw new Error(`not settled after 5 passes: ${JSON.stringify(cluster.log)}`);
  }

  it("writes a Role naming exactly the referenced Secret before the push, and statuses after it", async function () {
    let grantedAtPush: string[] | undefined;
    sidecar.onPush = () => (grantedAtPush = secretsOf(cluster));
    const result = await reconciler.reconcile(NS);

    expect(result.failedPushes).to.equal(0);
    expect(secretsOf(cluster)).to.deep.equal(["c-token"]);
    expect(cluster.roleBindings(NS).get(ROLE)?.subjects).to.deep.equal([
      { kind: "ServiceAccount", name: "agent", namespace: NS },
    ]);
    expect(grantedAtPush, "the Secret was readable when the bundle naming it arrived").to.deep.equal([
      "c-token",
    ]);
    expect(sidecar.hash).to.equal(result.desired.bundles[0]?.hash);
    expect(ready(cluster, "EgressPolicy", "p")?.reason).to.equal("Synced");
    expect(ready(cluster, "Credential", "c")?.reason).to.equal("SecretFound");
    const ops = cluster.log.map((e) => `${e.op} ${e.kind}`);
    expect(ops).to.deep.equal([
      "put Role",
      "put RoleBinding",
      "push Bundle",
      "status EgressPolicy",
      "status Credential",
    ]);
  });

  it("writes nothing on a pass over an unchanged world", async function () {
    await reconciler.reconcile(NS);
    const before = cluster.log.length;
    const policyBefore = cluster.get(NS, "EgressPolicy", "p");
    const result = await reconciler.reconcile(NS);
    expect(cluster.log.slice(before)).to.deep.equal([]);
    expect(result).to.deep.include({ rbacWrites: 0, statusWrites: 0, failedPushes: 0 });
    expect(cluster.get(NS, "EgressPolicy", "p")).to.deep.equal(policyBefore);
  });

  it("removes the Role and RoleBinding once no bundle names a Secret, only after the sidecar ACKs", async function () {
    await settle();
    let grantedAtPush: string[] | undefined;
    sidecar.onPush = () => (grantedAtPush = secretsOf(cluster));
    cluster.remove(NS, "EgressPolicy", "p");
    cluster.remove(NS, "Credential", "c");
    await settle();

    expect(grantedAtPush, "make before break: still readable while the new bundle is pushed").to.deep.equal([
      "c-token",
    ]);
    expect([...cluster.roles(NS).keys()]).to.deep.equal([]);
    expect([...cluster.roleBindings(NS).keys()]).to.deep.equal([]);
    const deletes = cluster.log.filter((e) => e.op === "delete").map((e) => `${e.kind} ${e.name}`);
    expect(deletes).to.have.members([`Role ${ROLE}`, `RoleBinding ${ROLE}`]);
  });

  for (const reason of ["BadSignature", "LoadFailed"] as const) {
    it(`leaves the policy SyncPending on a ${reason} NACK and requeues until the sidecar ACKs`, async function () {
      sidecar.mode = reason;
      const result = await reconciler.reconcile(NS);
      expect(result.failedPushes).to.equal(1);
      expect(sidecar.hash).to.equal(null);
      const condition = ready(cluster, "EgressPolicy", "p");
      expect(condition?.reason).to.equal("SyncPending");
      expect(condition?.message).to.include(reason);

      // The workers retry the namespace with no watch event and no resync: the queue requeued it.
      reconciler.start();
      await until(() => pushes(cluster.log) >= 2, "a retried push");
      sidecar.mode = "ACK";
      await until(() => ready(cluster, "EgressPolicy", "p")?.reason === "Synced", "policy Synced");
      expect(sidecar.hash).to.equal(result.desired.bundles[0]?.hash);
    });
  }

  it("a pass that fails midway pushes nothing, writes no status, and the retry completes it", async function () {
    cluster.failOnce({ op: "put", kind: "RoleBinding" });
    let failure: unknown;
    await reconciler.reconcile(NS).catch((err: unknown) => (failure = err));
    expect(String(failure)).to.include("injected API error");
    expect(secretsOf(cluster)).to.deep.equal(["c-token"]);
    expect([...cluster.roleBindings(NS).keys()]).to.deep.equal([]);
    expect(sidecar.hash, "no bundle before its RBAC is complete").to.equal(null);
    expect(ready(cluster, "EgressPolicy", "p")).to.equal(undefined);

    // Started on the failed key alone (no new event): the worker's retry restores the whole state.
    cluster.failOnce({ op: "status", kind: "Credential" });
    reconciler.start();
    await until(() => ready(cluster, "Credential", "c")?.reason === "SecretFound", "credential status");
    expect([...cluster.roleBindings(NS).keys()]).to.deep.equal([ROLE]);
    expect(ready(cluster, "EgressPolicy", "p")?.reason).to.equal("Synced");
    expect(sidecar.hash).to.not.equal(null);
  });
});

function pushes(log: readonly WriteEvent[]): number {
  return log.filter((e) => e.op === "push").length;
}
