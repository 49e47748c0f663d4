// Day two on the cluster: `kubectl edit` of the policy, rotating the Secret, losing the leader
// operator pod, and `helm upgrade` — each shown by what the agent's requests get afterwards.
import { expect } from "chai";
import { eventually } from "../helpers/eventually.ts";
import { chartValues, helmRelease, podOf, type World } from "./install.ts";
import { marker, type Cluster } from "./kit.ts";
import { AGENT, arrivalsOf, arrivedOnce } from "./observe.ts";
import { AGENTS_NS, HOSTS, POLICY_NAME, RELEASE_NS, secretManifest } from "./world.ts";

type Ctx = { cluster(): Cluster; world(): World };

/** curl from the agent to `https://HOST/MARK`; resolves with the upstream's arrivals of MARK. */
async function probe(ctx: Ctx, host: string, label: string) {
  const mark = marker(label);
  const cmd = ["curl", "-sS", "--max-time", "10", `https://${host}/${mark}`];
  const res = await ctx.cluster().exec(AGENTS_NS, ctx.world().agentPod, AGENT, cmd);
  // An arrival is logged before the upstream answers: once curl returns, it is there or never.
  const seen =
    res.code === 0 ? [await arrivedOnce(ctx.cluster(), mark)] : await arrivalsOf(ctx.cluster(), mark);
  return { res, seen };
}

/** Waits until a request to `host` gets through (`through`) or is blocked (`!through`). */
async function enforced(ctx: Ctx, host: string, through: boolean, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  await eventually(
    async () => {
      const { seen } = await probe(ctx, host, `edit-${host.split(".")[0] ?? ""}`);
      expect(seen.length > 0, `${host} ${through ? "gets through" : "is blocked"}`).to.equal(through);
    },
    { timeoutMs, intervalMs: 500, what: `${host} ${through ? "allowed" : "blocked"}` },
  );
  return (Date.now() - started) / 1000;
}

/** The operator pods, the Lease and each pod's last log lines: what a failed leader test needs. */
async function operatorState(cluster: Cluster): Promise<string> {
  const run = async (args: string[]) => {
    const res = await cluster.kubectlRun(args);
    return `$ kubectl ${args.join(" ")}\n${res.stdout}${res.stderr}`;
  };
  const pods = (await cluster.kubectlRun(["get", "pods", "-n", RELEASE_NS, "-o", "name"])).stdout.split("\n");
  const logs = await Promise.all(
    pods.filter((p) => p !== "").map((p) => run(["logs", "-n", RELEASE_NS, p, "--tail=15"])),
  );
  return [
    await run(["get", "pods", "-n", RELEASE_NS, "-o", "wide"]),
    await run(["get", "lease", "airlock-operator", "-n", RELEASE_NS, "-o", "yaml"]),
    ...logs,
  ].join("\n");
}

const restarts = async (ctx: Ctx): Promise<string> =>
  ctx
    .cluster()
    .jsonpath(
      ["pod", ctx.world().agentPod, "-n", AGENTS_NS],
      "{.status.initContainerStatuses[*].restartCount} {.status.containerStatuses[*].restartCount}",
    );

/** Runs `kubectl edit` of the policy with a sed script as the editor. */
async function editPolicy(ctx: Ctx, from: string, to: string): Promise<void> {
  await ctx.cluster().kubectl(["edit", "-n", AGENTS_NS, `egresspolicy/${POLICY_NAME}`], undefined, {
    KUBE_EDITOR: `sed -i -e s/${from}/${to}/g`,
  });
}

export function lifecycleTests(ctx: Ctx): void {
  describe("changes while the agent runs", function () {
    it("kubectl edit of the policy is enforced within seconds, without restarting the pod", async function () {
      const before = await restarts(ctx);
      await editPolicy(ctx, HOSTS.allow, HOSTS.block);
      const seconds = await enforced(ctx, HOSTS.block, true);
      await enforced(ctx, HOSTS.allow, false, 5_000);
      console.log(`      [e2e] the edit was enforced after ${seconds.toFixed(1)} s`);
      expect(seconds).to.be.below(30);
      await editPolicy(ctx, HOSTS.block, HOSTS.allow);
      await enforced(ctx, HOSTS.allow, true);
      await enforced(ctx, HOSTS.block, false, 5_000);
      expect(await restarts(ctx)).to.equal(before);
    });

    it("a rotated Secret is what arrives next, without restarting the pod", async function () {
      const world = ctx.world();
      const before = await restarts(ctx);
      const rotated = `${world.token}-rotated`;
      await ctx.cluster().apply(secretManifest(rotated));
      await eventually(
        async () => {
          const { seen } = await probe(ctx, HOSTS.inject, "rotation");
          expect(seen[0]?.headers?.["authorization"]).to.equal(`Bearer ${rotated}`);
        },
        { timeoutMs: 60_000, intervalMs: 1000, what: "the rotated token arriving" },
      );
      expect(await podOf(ctx.cluster(), AGENTS_NS, "app=e2e-agent")).to.equal(world.agentPod);
      expect(await restarts(ctx)).to.equal(before);
      world.token = rotated;
    });

    it("deleting the leader operator pod changes nothing enforced; another replica takes over at once", async function () {
      const cluster = ctx.cluster();
      const holder = () =>
        cluster.jsonpath(["lease", "airlock-operator", "-n", RELEASE_NS], "{.spec.holderIdentity}");
      const leader = await holder();
      const pods = (
        await cluster.jsonpath(
          ["pods", "-n", RELEASE_NS, "-l", "app.kubernetes.io/component=operator"],
          "{.items[*].metadata.name}",
        )
      ).split(" ");
      expect(pods, "two operator replicas").to.have.length(2);
      expect(pods).to.include(leader);
      const standby = pods.find((p) => p !== leader);
      await cluster.kubectl(["delete", "pod", "-n", RELEASE_NS, leader, "--wait=false"]);
      const { seen } = await probe(ctx, HOSTS.inject, "leaderless");
      expect(seen[0]?.headers?.["authorization"], "enforced while the leader is gone").to.equal(
        `Bearer ${ctx.world().token}`,
      );
      // The deleted leader releases the Lease as it stops; whichever live replica campaigns next
      // takes it: the standby (it retries every 2 s) or, when it starts fast enough, the
      // replacement the Deployment made. Never the deleted pod, and within one lease period.
      const started = Date.now();
      const next = await eventually(
        async () => {
          const now = await holder();
          const running = await cluster.jsonpath(
            [
              "pods",
              "-n",
              RELEASE_NS,
              "-l",
              "app.kubernetes.io/component=operator",
              "--field-selector=status.phase=Running",
            ],
            "{.items[*].metadata.name}",
          );
          expect(now, "a new holder").to.not.be.oneOf([leader, ""]);
          expect(running.split(" "), "the holder is a running replica").to.include(now);
          return now;
        },
        {
          timeoutMs: 15_000,
          intervalMs: 500,
          what: `another replica holding the Lease (the leader was ${leader})`,
        },
      ).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}\n${await operatorState(cluster)}`, { cause: err });
      });
      const who = next === standby ? "the standby" : "the replacement replica";
      console.log(
        `      [e2e] ${who} took the Lease ${((Date.now() - started) / 1000).toFixed(1)} s after the leader was deleted`,
      );
      // The new leader reconciles: a policy change still reaches the sidecar.
      await editPolicy(ctx, HOSTS.allow, HOSTS.block);
      await enforced(ctx, HOSTS.block, true);
      await editPolicy(ctx, HOSTS.block, HOSTS.allow);
      await enforced(ctx, HOSTS.allow, true);
    });

    it("helm upgrade to a changed value rolls the operator and keeps enforcing", async function () {
      const cluster = ctx.cluster();
      const values = [...chartValues(cluster, ctx.world().upstreamIp), "operator.resyncSeconds=20"];
      await helmRelease(cluster, "upgrade", values);
      const args = await cluster.jsonpath(
        ["deployment", "airlock-operator", "-n", RELEASE_NS],
        "{.spec.template.spec.containers[0].args}",
      );
      expect(args).to.include("--resync=20");
      await cluster.kubectl([
        "rollout",
        "status",
        "-n",
        RELEASE_NS,
        "deployment/airlock-operator",
        "--timeout=180s",
      ]);
      const { seen } = await probe(ctx, HOSTS.inject, "after-upgrade");
      expect(seen[0]?.headers?.["authorization"]).to.equal(`Bearer ${ctx.world().token}`);
      await editPolicy(ctx, HOSTS.allow, HOSTS.block);
      await enforced(ctx, HOSTS.block, true);
      await editPolicy(ctx, HOSTS.block, HOSTS.allow);
      await enforced(ctx, HOSTS.allow, true);
    });
  });
}
