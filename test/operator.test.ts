// The operator end to end (control plane), every part a real process: a real kube-apiserver; pods
// created with kubectl (no kubelet: their status is patched to Running with a loopback pod IP);
// `airlock sidecar` on each pod IP holding the operator's public key and reading Secrets with the
// pods' own ServiceAccount token; two `airlock operator` replicas with the token of a ServiceAccount
// bound to exactly operator/rbac/clusterrole.yaml. Asserts what results: enforcement through each
// sidecar, .status, RBAC, metrics, and the Lease handing over. Each test first brings the world to
// the state it starts from (helpers/operator-world.ts), so any one runs on its own (mocha -g).
import { expect } from "chai";
import { stopProcess } from "./helpers/agent-pods.ts";
import { CONTROL_PLANE_TIMEOUT_MS, serviceAccountCan } from "./helpers/control-plane.ts";
import { eventually, eventuallyEqual } from "./helpers/eventually.ts";
import { LEASE_SECONDS, OperatorWorld, sample } from "./helpers/operator-world.ts";

describe("operator (control plane): operator and sidecar processes, least privilege", function () {
  this.timeout(60_000); // polls for up to 20 s; the repo default is 20 s per test
  const w = new OperatorWorld();
  const { ns, kubectl, apply } = w;

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    await w.start();
  });
  after(async function () {
    await w.stop();
  });

  it("one operator replica leads and the other stands by (airlock_operator_leading)", async function () {
    const { leader, standby } = await w.leaderAndStandby();
    expect(await w.leaseHolder()).to.equal(leader);
    expect(sample(await w.metrics(leader), "airlock_operator_leading")).to.equal(1);
    expect(sample(await w.metrics(standby), "airlock_operator_leading")).to.equal(0);
    // Both pass their start-up checks (namespace, CRDs, RBAC including airlock-operator-namespace).
    for (const identity of [leader, standby])
      await eventuallyEqual(async () => (await fetch(`${w.operator(identity).metrics}/readyz`)).status, 200);
  });

  it("a pod no policy selects gets the empty bundle: everything blocks with NoRuleMatched", async function () {
    await kubectl(["-n", ns, "delete", "egresspolicies", "--all"]);
    await w.everySidecar("api.example.test", { status: 403, reason: "NoRuleMatched" });
  });

  it("a Secret, Credential and EgressPolicy applied with kubectl are enforced by every sidecar: Synced", async function () {
    await apply(w.objects.secret("s3cret"));
    await apply(w.objects.credential());
    await apply(w.apiPolicy());
    // Each sidecar reads the Secret with the pods' own token, through the Role the operator wrote.
    await w.everySidecar("api.example.test", { status: 200, sent: "s3cret" });
    await w.synced("agent", 2);
  });

  it("an unchanged world writes nothing: resourceVersions stay put across resyncs", async function () {
    await w.arrangeApiPolicy("s3cret");
    const { leader } = await w.leaderAndStandby();
    const versions = async () =>
      (
        await kubectl([
          ...["-n", ns, "get", "egresspolicies,credentials,roles,rolebindings"],
          ...["-o", "jsonpath={..resourceVersion}"],
        ])
      )
        .split(/\s+/)
        .filter(Boolean)
        .sort();
    const before = await versions();
    // policy, credential, the sidecars' Role and RoleBinding, the operator's own RoleBinding
    expect(before).to.have.length(5);
    await w.reconcilePasses(leader, 2); // two resyncs
    expect(await versions()).to.deep.equal(before);
  });

  it("the pods' ServiceAccount may get and watch exactly the referenced Secret, and not list Secrets", async function () {
    await w.arrangeApiPolicy("s3cret");
    const can = (verb: string, resource: string) =>
      serviceAccountCan(w.cp, ns, "agent", verb, resource, "-n", ns);
    expect(await can("get", "secrets/api-token")).to.equal("yes");
    expect(await can("watch", "secrets/api-token")).to.equal("yes");
    expect(await can("list", "secrets")).to.equal("no");
    expect(await can("get", "secrets/other")).to.equal("no");
  });

  it("rotating the Secret: every sidecar sends the new value, without a restart", async function () {
    await w.arrangeApiPolicy("s3cret");
    const pids = w.sidecars.map((s) => s.command.child.pid);
    await apply(w.objects.secret("rotated-value"));
    await w.everySidecar("api.example.test", { status: 200, sent: "rotated-value" });
    expect(w.sidecars.map((s) => s.command.child.pid)).to.deep.equal(pids);
    expect(w.sidecars.map((s) => s.command.child.exitCode)).to.deep.equal([null, null]);
  });

  it("a deleted Secret blocks with CredentialUnavailable and shows SecretMissing; recreated, it injects again", async function () {
    await w.arrangeApiPolicy("rotated-value");
    await kubectl(["-n", ns, "delete", "secret", "api-token"]);
    await w.everySidecar("api.example.test", { status: 403, reason: "CredentialUnavailable" });
    await eventuallyEqual(() => w.credentialReason(), "SecretMissing");
    await apply(w.objects.secret("rotated-value"));
    await w.everySidecar("api.example.test", { status: 200, sent: "rotated-value" });
    await eventuallyEqual(() => w.credentialReason(), "SecretFound");
  });

  it("an invalid policy shows InvalidSpec with its field path and changes nothing enforced", async function () {
    await w.arrangeApiPolicy("rotated-value");
    await apply(w.brokenPolicy());
    await eventuallyEqual(
      async () => {
        const r = await w.ready("broken");
        return { status: r.status, reason: r.reason, located: r.message.includes("spec.egress[0].paths[0]") };
      },
      { status: "False", reason: "InvalidSpec", located: true },
    );
    await eventuallyEqual(() => w.readyOf("agent"), {
      status: "False",
      reason: "SyncPending",
      syncedPods: 0,
      current: true,
    });
    expect(await w.request(w.sidecar(0), "api.example.test")).to.deep.equal({
      status: 200,
      sent: "rotated-value",
    });
    expect(await w.request(w.sidecar(0), "other.example.test")).to.deep.equal({
      status: 403,
      reason: "NoRuleMatched",
    });
  });

  it("editing the policy (once the broken one is gone) changes what is enforced: allow, then block", async function () {
    await kubectl(["-n", ns, "delete", "egresspolicy", "broken", "--ignore-not-found"]);
    await w.arrangeApiPolicy("rotated-value");
    await w.everySidecar("other.example.test", { status: 403, reason: "NoRuleMatched" });
    await apply(w.otherPolicy());
    await w.everySidecar("api.example.test", { status: 403, reason: "NoRuleMatched" });
    await w.everySidecar("other.example.test", { status: 200 });
    await w.synced("agent", 2);
  });

  it("the Role is removed once no bundle names a Secret", async function () {
    const roles = async () =>
      (await kubectl(["-n", ns, "get", "roles", "-l", "airlock.dev/rbac", "-o", "name"])).trim();
    await w.arrangeApiPolicy("rotated-value");
    expect(await roles()).to.not.equal(""); // while a bundle names Secret api-token
    await apply(w.otherPolicy());
    await eventuallyEqual(roles, "");
  });

  it("changing a pod's labels takes its sidecar out of the policy, and back", async function () {
    await w.arrangeOtherPolicy();
    await kubectl(["-n", ns, "label", "pod", "agent-1", "app=other", "--overwrite"]);
    await eventuallyEqual(() => w.request(w.sidecar(1), "other.example.test"), {
      status: 403,
      reason: "NoRuleMatched",
    });
    expect(await w.request(w.sidecar(0), "other.example.test")).to.deep.equal({ status: 200 });
    await w.synced("agent", 1);
    await kubectl(["-n", ns, "label", "pod", "agent-1", "app=agent", "--overwrite"]);
    await eventuallyEqual(() => w.request(w.sidecar(1), "other.example.test"), { status: 200 });
    await w.synced("agent", 2);
  });

  it("deleting the policy: every sidecar blocks again", async function () {
    await w.arrangeOtherPolicy();
    await kubectl(["-n", ns, "delete", "egresspolicy", "agent"]);
    await w.everySidecar("other.example.test", { status: 403, reason: "NoRuleMatched" });
  });

  it("a sidecar that refuses the bundle (another key) shows on the policy's status with its reason", async function () {
    await w.arrangeApiPolicy("rotated-value");
    await w.withRoguePod("agent-rogue", "127.0.0.4", async (rogue) => {
      await eventuallyEqual(
        async () => {
          const r = await w.ready("agent");
          return {
            reason: r.reason,
            syncedPods: r.syncedPods,
            badSignature: r.message.includes("BadSignature"),
          };
        },
        { reason: "SyncPending", syncedPods: 2, badSignature: true },
      );
      // It kept blocking: nothing it was sent was applied.
      expect(await w.request(rogue, "api.example.test")).to.deep.equal({
        status: 403,
        reason: "NoPolicyLoaded",
      });
    });
    await w.synced("agent", 2);
  });

  it("the leader's /metrics count reconciles by kind and reason, pushes by result, and convergence", async function () {
    this.timeout(120_000); // four changes, an invalid policy and a rogue pod, each awaited
    await w.arrangeApiPolicy("rotated-value");
    const { leader, standby } = await w.leaderAndStandby();
    const before = await w.metrics(leader);
    // Four bundle changes, each converged: the edit, the re-apply, the delete, the re-apply.
    await w.arrangeOtherPolicy();
    await w.arrangeApiPolicy("rotated-value");
    await kubectl(["-n", ns, "delete", "egresspolicy", "agent"]);
    await w.everySidecar("api.example.test", { status: 403, reason: "NoRuleMatched" });
    await w.arrangeApiPolicy("rotated-value");
    // An invalid policy, then a sidecar that NACKs.
    await apply(w.brokenPolicy());
    await eventuallyEqual(async () => (await w.ready("broken")).reason, "InvalidSpec");
    await kubectl(["-n", ns, "delete", "egresspolicy", "broken"]);
    await w.synced("agent", 2);
    await w.withRoguePod("agent-rogue-metrics", "127.0.0.5", async () => {
      await eventually(async () => expect((await w.ready("agent")).message).to.include("BadSignature"), {
        what: "the rogue sidecar's NACK",
      });
    });
    const text = await w.metrics(leader);
    const counted = (series: string) => (sample(text, series) ?? 0) - (sample(before, series) ?? 0);
    expect(counted('airlock_operator_reconcile_total{kind="EgressPolicy",result="Synced"}')).to.be.above(0);
    expect(counted('airlock_operator_reconcile_total{kind="EgressPolicy",result="InvalidSpec"}')).to.be.above(
      0,
    );
    expect(counted('airlock_operator_reconcile_total{kind="Credential",result="SecretFound"}')).to.be.above(
      0,
    );
    expect(counted('airlock_operator_push_total{result="ack"}')).to.be.above(0);
    expect(counted('airlock_operator_push_total{result="nack"}')).to.be.above(0);
    expect(counted("airlock_operator_convergence_seconds_count")).to.be.at.least(4);
    expect(sample(text, 'airlock_operator_convergence_seconds_bucket{le="+Inf"}')).to.equal(
      sample(text, "airlock_operator_convergence_seconds_count"),
    );
    // The standby reconciled nothing.
    expect(sample(await w.metrics(standby), 'airlock_operator_push_total{result="ack"}')).to.equal(undefined);
  });

  it("killing the leader hands over within the lease period, and a change made meanwhile is enforced", async function () {
    await w.arrangeApiPolicy("rotated-value");
    const { leader, standby } = await w.leaderAndStandby();
    const killedAt = Date.now();
    await stopProcessOf(leader, "SIGKILL"); // no release: the standby must wait for the Lease to expire
    await apply(
      w.objects.policy("agent", [
        { name: "api", hosts: ["api.example.test"], ports: [w.upstream.port], credential: "api" },
        { name: "other", hosts: ["other.example.test"], ports: [w.upstream.port] },
      ]),
    );
    await eventuallyEqual(() => w.leaseHolder(), standby, { timeoutMs: (LEASE_SECONDS + 10) * 1000 });
    // Expiry is judged on the standby's clock from its last look at the Lease (every 2 s), then one try.
    expect(Date.now() - killedAt).to.be.below((LEASE_SECONDS + 2 * 2 + 2) * 1000);
    await w.everySidecar("other.example.test", { status: 200 });
    await w.everySidecar("api.example.test", { status: 200, sent: "rotated-value" });
    await w.synced("agent", 2);
    expect(sample(await w.metrics(standby), "airlock_operator_leading")).to.equal(1);
  });

  it("a replica stopped with SIGTERM releases the Lease: the standby takes over at once", async function () {
    await w.arrangeApiPolicy("rotated-value");
    // A standby started here has been seen to stand by: it looked at the Lease, which stayed the leader's.
    const { leader, standby } = await w.leaderAndStandby();
    expect(await w.leaseHolder()).to.equal(leader);
    await apply(w.apiPolicy(false));
    const stoppedAt = Date.now();
    await stopProcessOf(leader);
    expect(w.operator(leader).command.child.exitCode).to.equal(0);
    await eventuallyEqual(() => w.leaseHolder(), standby, { timeoutMs: (LEASE_SECONDS + 10) * 1000 });
    expect(Date.now() - stoppedAt).to.be.below(LEASE_SECONDS * 1000);
    // The change applied just before the stop is not lost: the rule no longer injects.
    await w.everySidecar("api.example.test", { status: 200 });
    await w.synced("agent", 2);
  });

  /** Stops replica `identity` (SIGTERM unless told) and waits for it to exit. */
  const stopProcessOf = (identity: string, signal?: NodeJS.Signals): Promise<void> =>
    stopProcess(w.operator(identity).command, signal);
});
