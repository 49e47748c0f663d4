// The operator end to end (control plane), every part a real process: a real kube-apiserver; pods
// created with kubectl (no kubelet: their status is patched to Running with a loopback pod IP);
// `airlock sidecar` on each pod IP holding the operator's public key and reading Secrets with the
// pods' own ServiceAccount token; two `airlock operator` replicas with the token of a ServiceAccount
// bound to exactly operator/rbac/clusterrole.yaml. Asserts what results: enforcement through each
// sidecar, .status, RBAC, metrics, and the Lease handing over.
import { expect } from "chai";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import {
  startAgentPod,
  startOperatorProcess,
  stopProcess,
  type AgentPodWorld,
  type OperatorProcess,
  type SidecarProcess,
} from "./helpers/agent-pods.ts";
import {
  CONTROL_PLANE_TIMEOUT_MS,
  installAirlockCrds,
  serviceAccountCan,
  sharedControlPlane,
  type ControlPlane,
} from "./helpers/control-plane.ts";
import { curl } from "./helpers/curl.ts";
import {
  agentPodWorld,
  eventuallyEqual,
  kubectlFor,
  operatorFiles,
  operatorObjects,
  prepareOperatorNamespace,
} from "./helpers/operator-kit.ts";
import { connect, parseResponse, readUntil } from "./helpers/raw.ts";

/** The operators' Lease period; the leader election retries every 2 s. */
const LEASE_SECONDS = 5;

describe("operator (control plane): operator and sidecar processes, least privilege", function () {
  this.timeout(60_000); // polls for up to 20 s; the repo default is 20 s per test
  let cp: ControlPlane;
  let upstream: EchoUpstream;
  const ns = `airlock-op-${randomBytes(3).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "airlock-op-"));
  const keys = generateKeyPairSync("ed25519");
  const files = { ...operatorFiles(dir), otherKey: join(dir, "other-bundle-key.pem") };
  const sidecars: SidecarProcess[] = [];
  const operators = new Map<string, OperatorProcess>();
  let world: AgentPodWorld;

  const { kubectl, apply } = kubectlFor(() => cp);
  const { policy, secret, credential } = operatorObjects(ns);
  const apiPolicy = () =>
    policy("agent", [
      { name: "api", hosts: ["api.example.test"], ports: [upstream.port], credential: "api" },
    ]);
  const sidecar = (i: number): SidecarProcess => {
    const s = sidecars[i];
    if (s === undefined) throw new Error(`no sidecar ${String(i)}`);
    return s;
  };
  const operator = (identity: string): OperatorProcess => {
    const o = operators.get(identity);
    if (o === undefined) throw new Error(`no operator ${identity}`);
    return o;
  };

  // One request through a sidecar's explicit proxy: status, the refusal's reason, and the API key
  // the upstream received (only when this request reached it).
  const reasonOf = (body: string): string => {
    try {
      return (JSON.parse(body) as { reason: string }).reason;
    } catch {
      // The policy may change between curl's request and refusedConnect's: reported, and retried.
      return `not a refusal body: ${JSON.stringify(body)}`;
    }
  };
  const refusedConnect = async (s: SidecarProcess, host: string): Promise<string> => {
    const url = new URL(s.proxy);
    const socket = await connect(Number(url.port), url.hostname);
    socket.write(`CONNECT ${host}:${upstream.port} HTTP/1.1\r\nhost: ${host}:${upstream.port}\r\n\r\n`);
    const text = await readUntil(socket, () => false);
    socket.destroy();
    return parseResponse(text).body;
  };
  const request = async (s: SidecarProcess, host: string) => {
    const before = upstream.received.length;
    const res = await curl(["-x", s.proxy, "--cacert", s.caPath, `https://${host}:${upstream.port}/x`]);
    const sent =
      upstream.received.length > before ? upstream.received.at(-1)?.headers["x-api-key"] : undefined;
    // A refused CONNECT carries the reason in the CONNECT response, which curl does not print.
    const body = res.status === 403 && res.body === "" ? await refusedConnect(s, host) : res.body;
    return {
      status: res.status,
      ...(res.status === 403 ? { reason: reasonOf(body) } : {}),
      ...(typeof sent === "string" ? { sent } : {}),
    };
  };
  const everySidecar = async (host: string, want: unknown): Promise<void> => {
    for (const s of sidecars) await eventuallyEqual(() => request(s, host), want);
  };

  const ready = async (name: string) => {
    const obj = JSON.parse(await kubectl(["-n", ns, "get", "egresspolicy", name, "-o", "json"])) as {
      metadata: { generation: number };
      status?: {
        syncedPods?: number;
        conditions?: {
          type: string;
          status: string;
          reason: string;
          message: string;
          observedGeneration?: number;
        }[];
      };
    };
    const c = obj.status?.conditions?.find((x) => x.type === "Ready");
    return {
      status: c?.status,
      reason: c?.reason,
      syncedPods: obj.status?.syncedPods,
      current: c?.observedGeneration === obj.metadata.generation,
      message: c?.message ?? "",
    };
  };
  const readyOf = async (name: string) => {
    const { status, reason, syncedPods, current } = await ready(name);
    return { status, reason, syncedPods, current };
  };
  const leaseHolder = async (): Promise<string> =>
    (
      await kubectl([
        "-n",
        ns,
        "get",
        "lease",
        "airlock-operator",
        "--ignore-not-found",
        "-o",
        "jsonpath={.spec.holderIdentity}",
      ])
    ).trim();
  const metrics = async (identity: string): Promise<string> =>
    (await fetch(`${operator(identity).metrics}/metrics`)).text();
  const sample = (text: string, series: string): number | undefined => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  const addPod = (pod: string, ip: string, bundleKey: string): Promise<SidecarProcess> =>
    startAgentPod(world, pod, ip, bundleKey);
  const startOperator = async (identity: string): Promise<void> => {
    operators.set(
      identity,
      await startOperatorProcess([
        ...["--kubeconfig", files.operatorKubeconfig, "--signing-key", files.signingKey],
        ...["--lease-namespace", ns, "--identity", identity, "--control-port", String(world.controlPort)],
        ...["--resync", "2", "--lease-seconds", String(LEASE_SECONDS)],
      ]),
    );
  };

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await sharedControlPlane();
    await installAirlockCrds(cp);
    await prepareOperatorNamespace(cp, ns, files, keys);
    world = agentPodWorld(cp, ns, dir, files, ["api.example.test:127.0.0.1", "other.example.test:127.0.0.1"]);
    writeFileSync(
      files.otherKey,
      generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }),
    );
    upstream = await startEchoUpstream({ tls: true });
    writeFileSync(files.upstreamCa, upstream.caPem);
    for (const [i, ip] of ["127.0.0.2", "127.0.0.3"].entries())
      sidecars.push(await addPod(`agent-${String(i)}`, ip, files.bundleKey));
    await startOperator("op-a");
    await eventuallyEqual(leaseHolder, "op-a");
    await startOperator("op-b");
  });
  after(async function () {
    await Promise.all([...operators.values()].map((o) => stopProcess(o.command, "SIGKILL")));
    await Promise.all(sidecars.map((s) => stopProcess(s.command)));
    await upstream.close();
  });

  it("one operator replica leads and the other stands by (airlock_operator_leading)", async function () {
    expect(await leaseHolder()).to.equal("op-a");
    expect(sample(await metrics("op-a"), "airlock_operator_leading")).to.equal(1);
    expect(sample(await metrics("op-b"), "airlock_operator_leading")).to.equal(0);
    // Both pass their start-up checks (namespace, CRDs, RBAC including airlock-operator-namespace).
    for (const identity of ["op-a", "op-b"])
      await eventuallyEqual(async () => (await fetch(`${operator(identity).metrics}/readyz`)).status, 200);
  });

  it("a pod no policy selects gets the empty bundle: everything blocks with NoRuleMatched", async function () {
    await everySidecar("api.example.test", { status: 403, reason: "NoRuleMatched" });
  });

  it("a Secret, Credential and EgressPolicy applied with kubectl are enforced by every sidecar: Synced", async function () {
    await apply(secret("s3cret"));
    await apply(credential());
    await apply(apiPolicy());
    // Each sidecar reads the Secret with the pods' own token, through the Role the operator wrote.
    await everySidecar("api.example.test", { status: 200, sent: "s3cret" });
    await eventuallyEqual(() => readyOf("agent"), {
      status: "True",
      reason: "Synced",
      syncedPods: 2,
      current: true,
    });
  });

  it("an unchanged world writes nothing: resourceVersions stay put across resyncs", async function () {
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
    await new Promise((resolve) => setTimeout(resolve, 4500)); // two resyncs
    expect(await versions()).to.deep.equal(before);
  });

  it("the pods' ServiceAccount may get and watch exactly the referenced Secret, and not list Secrets", async function () {
    const can = (verb: string, resource: string) =>
      serviceAccountCan(cp, ns, "agent", verb, resource, "-n", ns);
    expect(await can("get", "secrets/api-token")).to.equal("yes");
    expect(await can("watch", "secrets/api-token")).to.equal("yes");
    expect(await can("list", "secrets")).to.equal("no");
    expect(await can("get", "secrets/other")).to.equal("no");
  });

  it("rotating the Secret: every sidecar sends the new value, without a restart", async function () {
    const pids = sidecars.map((s) => s.command.child.pid);
    await apply(secret("rotated-value"));
    await everySidecar("api.example.test", { status: 200, sent: "rotated-value" });
    expect(sidecars.map((s) => s.command.child.pid)).to.deep.equal(pids);
    expect(sidecars.map((s) => s.command.child.exitCode)).to.deep.equal([null, null]);
  });

  it("a deleted Secret blocks with CredentialUnavailable and shows SecretMissing; recreated, it injects again", async function () {
    const credentialReason = async () =>
      (
        await kubectl([
          ...["-n", ns, "get", "credential", "api", "-o"],
          'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
        ])
      ).trim();
    await kubectl(["-n", ns, "delete", "secret", "api-token"]);
    await everySidecar("api.example.test", { status: 403, reason: "CredentialUnavailable" });
    await eventuallyEqual(credentialReason, "SecretMissing");
    await apply(secret("rotated-value"));
    await everySidecar("api.example.test", { status: 200, sent: "rotated-value" });
    await eventuallyEqual(credentialReason, "SecretFound");
  });

  it("an invalid policy shows InvalidSpec with its field path and changes nothing enforced", async function () {
    await apply(
      policy("broken", [
        { name: "x", hosts: ["other.example.test"], ports: [upstream.port], paths: ["/a/***"] },
      ]),
    );
    await eventuallyEqual(
      async () => {
        const r = await ready("broken");
        return { status: r.status, reason: r.reason, located: r.message.includes("spec.egress[0].paths[0]") };
      },
      { status: "False", reason: "InvalidSpec", located: true },
    );
    await eventuallyEqual(() => readyOf("agent"), {
      status: "False",
      reason: "SyncPending",
      syncedPods: 0,
      current: true,
    });
    expect(await request(sidecar(0), "api.example.test")).to.deep.equal({
      status: 200,
      sent: "rotated-value",
    });
    expect(await request(sidecar(0), "other.example.test")).to.deep.equal({
      status: 403,
      reason: "NoRuleMatched",
    });
  });

  it("editing the policy (once the broken one is gone) changes what is enforced: allow, then block", async function () {
    await kubectl(["-n", ns, "delete", "egresspolicy", "broken"]);
    await apply(policy("agent", [{ name: "other", hosts: ["other.example.test"], ports: [upstream.port] }]));
    await everySidecar("api.example.test", { status: 403, reason: "NoRuleMatched" });
    await everySidecar("other.example.test", { status: 200 });
    await eventuallyEqual(() => readyOf("agent"), {
      status: "True",
      reason: "Synced",
      syncedPods: 2,
      current: true,
    });
  });

  it("the Role is removed once no bundle names a Secret", async function () {
    const roles = async () =>
      (await kubectl(["-n", ns, "get", "roles", "-l", "airlock.dev/rbac", "-o", "name"])).trim();
    await eventuallyEqual(roles, "");
  });

  it("changing a pod's labels takes its sidecar out of the policy, and back", async function () {
    await kubectl(["-n", ns, "label", "pod", "agent-1", "app=other", "--overwrite"]);
    await eventuallyEqual(() => request(sidecar(1), "other.example.test"), {
      status: 403,
      reason: "NoRuleMatched",
    });
    expect(await request(sidecar(0), "other.example.test")).to.deep.equal({ status: 200 });
    await eventuallyEqual(() => readyOf("agent"), {
      status: "True",
      reason: "Synced",
      syncedPods: 1,
      current: true,
    });
    await kubectl(["-n", ns, "label", "pod", "agent-1", "app=agent", "--overwrite"]);
    await eventuallyEqual(() => request(sidecar(1), "other.example.test"), { status: 200 });
    await eventuallyEqual(() => readyOf("agent"), {
      status: "True",
      reason: "Synced",
      syncedPods: 2,
      current: true,
    });
  });

  it("deleting the policy: every sidecar blocks again", async function () {
    await kubectl(["-n", ns, "delete", "egresspolicy", "agent"]);
    await everySidecar("other.example.test", { status: 403, reason: "NoRuleMatched" });
  });

  it("a sidecar that refuses the bundle (another key) shows on the policy's status with its reason", async function () {
    await apply(apiPolicy());
    await eventuallyEqual(() => readyOf("agent"), {
      status: "True",
      reason: "Synced",
      syncedPods: 2,
      current: true,
    });
    const rogue = await addPod("agent-rogue", "127.0.0.4", files.otherKey);
    try {
      await eventuallyEqual(
        async () => {
          const r = await ready("agent");
          return {
            reason: r.reason,
            syncedPods: r.syncedPods,
            badSignature: r.message.includes("BadSignature"),
          };
        },
        { reason: "SyncPending", syncedPods: 2, badSignature: true },
      );
      // It kept blocking: nothing it was sent was applied.
      expect(await request(rogue, "api.example.test")).to.deep.equal({
        status: 403,
        reason: "NoPolicyLoaded",
      });
    } finally {
      await kubectl(["-n", ns, "delete", "pod", "agent-rogue", "--wait=false"]);
      await stopProcess(rogue.command);
    }
    await eventuallyEqual(() => readyOf("agent"), {
      status: "True",
      reason: "Synced",
      syncedPods: 2,
      current: true,
    });
  });

  it("the leader's /metrics count reconciles by kind and reason, pushes by result, and convergence", async function () {
    const text = await metrics("op-a");
    expect(sample(text, 'airlock_operator_reconcile_total{kind="EgressPolicy",result="Synced"}')).to.be.above(
      0,
    );
    expect(
      sample(text, 'airlock_operator_reconcile_total{kind="EgressPolicy",result="InvalidSpec"}'),
    ).to.be.above(0);
    expect(
      sample(text, 'airlock_operator_reconcile_total{kind="Credential",result="SecretFound"}'),
    ).to.be.above(0);
    expect(sample(text, 'airlock_operator_push_total{result="ack"}')).to.be.above(0);
    expect(sample(text, 'airlock_operator_push_total{result="nack"}')).to.be.above(0);
    // Every bundle change above converged: the apply, the edit, two relabels, the delete, the re-apply.
    expect(sample(text, "airlock_operator_convergence_seconds_count")).to.be.at.least(6);
    expect(sample(text, 'airlock_operator_convergence_seconds_bucket{le="+Inf"}')).to.equal(
      sample(text, "airlock_operator_convergence_seconds_count"),
    );
    // The standby reconciled nothing.
    expect(sample(await metrics("op-b"), 'airlock_operator_push_total{result="ack"}')).to.equal(undefined);
  });

  it("killing the leader hands over within the lease period, and a change made meanwhile is enforced", async function () {
    const killedAt = Date.now();
    await stopProcess(operator("op-a").command, "SIGKILL"); // no release: op-b must wait for the Lease to expire
    await apply(
      policy("agent", [
        { name: "api", hosts: ["api.example.test"], ports: [upstream.port], credential: "api" },
        { name: "other", hosts: ["other.example.test"], ports: [upstream.port] },
      ]),
    );
    await eventuallyEqual(leaseHolder, "op-b", (LEASE_SECONDS + 10) * 1000);
    // Expiry is judged on op-b's clock from its last look at the Lease (every 2 s), then one try.
    expect(Date.now() - killedAt).to.be.below((LEASE_SECONDS + 2 * 2 + 2) * 1000);
    await everySidecar("other.example.test", { status: 200 });
    await everySidecar("api.example.test", { status: 200, sent: "rotated-value" });
    await eventuallyEqual(() => readyOf("agent"), {
      status: "True",
      reason: "Synced",
      syncedPods: 2,
      current: true,
    });
    expect(sample(await metrics("op-b"), "airlock_operator_leading")).to.equal(1);
  });

  it("a replica stopped with SIGTERM releases the Lease: the standby takes over at once", async function () {
    await startOperator("op-a");
    await new Promise((resolve) => setTimeout(resolve, 500)); // op-a sees op-b's Lease and stands by
    expect(await leaseHolder()).to.equal("op-b");
    await apply(policy("agent", [{ name: "api", hosts: ["api.example.test"], ports: [upstream.port] }]));
    const stoppedAt = Date.now();
    await stopProcess(operator("op-b").command);
    expect(operator("op-b").command.child.exitCode).to.equal(0);
    await eventuallyEqual(leaseHolder, "op-a", (LEASE_SECONDS + 10) * 1000);
    expect(Date.now() - stoppedAt).to.be.below(LEASE_SECONDS * 1000);
    // The change applied just before the stop is not lost: the rule no longer injects.
    await everySidecar("api.example.test", { status: 200 });
    await eventuallyEqual(() => readyOf("agent"), {
      status: "True",
      reason: "Synced",
      syncedPods: 2,
      current: true,
    });
  });
});
