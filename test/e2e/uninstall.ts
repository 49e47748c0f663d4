// `helm uninstall` last: the running agent keeps enforcing its last policy with no operator, and
// nothing of the release is left, neither what Helm made nor what the operator made at run time
// (its Secrets and Lease, the sidecars' Roles) — the CRDs stay, as Helm intends for crds/.
import { expect } from "chai";
import { eventually } from "../helpers/eventually.ts";
import type { World } from "./install.ts";
import { marker, type Cluster } from "./kit.ts";
import { AGENT, arrivedOnce } from "./observe.ts";
import { AGENTS_NS, HOSTS, RELEASE, RELEASE_NS } from "./world.ts";

type Ctx = { cluster(): Cluster; world(): World };

const NAMESPACED =
  "all,secrets,configmaps,serviceaccounts,roles,rolebindings,leases,networkpolicies,poddisruptionbudgets,services";
const CLUSTER_SCOPED =
  "clusterroles,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations";

/** Objects named airlock* (or labelled as Airlock's) of `kinds`, in `namespace` or cluster-wide. */
async function airlockObjects(cluster: Cluster, kinds: string, namespace?: string): Promise<string[]> {
  const where = namespace === undefined ? [] : ["-n", namespace];
  const out = await cluster.kubectl([
    "get",
    kinds,
    ...where,
    "-o",
    'jsonpath={range .items[*]}{.kind}/{.metadata.name} {.metadata.labels.app\\.kubernetes\\.io/name}{"\\n"}{end}',
  ]);
  return out
    .split("\n")
    .filter((line) => line.trim() !== "")
    .filter((line) => /\/airlock/.test(line) || / airlock$/.test(line))
    .map((line) => line.split(" ")[0] ?? line);
}

export function uninstallTests(ctx: Ctx): void {
  describe("helm uninstall", function () {
    it("leaves no namespaced or cluster-scoped object of the release; the CRDs stay", async function () {
      const cluster = ctx.cluster();
      expect(
        await airlockObjects(cluster, "secrets,leases", RELEASE_NS),
        "the operator made its Secrets and Lease",
      ).to.have.length.greaterThan(2);
      expect(
        await airlockObjects(cluster, "roles,rolebindings", AGENTS_NS),
        "and the sidecar's Role",
      ).to.have.length(2);
      await cluster.helm(["uninstall", RELEASE, "-n", RELEASE_NS, "--wait", "--timeout", "3m"]);
      await eventually(
        async () => {
          expect(
            await airlockObjects(cluster, NAMESPACED, RELEASE_NS),
            `left in ${RELEASE_NS}`,
          ).to.deep.equal([]);
          expect(
            await airlockObjects(cluster, "roles,rolebindings", AGENTS_NS),
            `left in ${AGENTS_NS}`,
          ).to.deep.equal([]);
          expect(await airlockObjects(cluster, CLUSTER_SCOPED), "cluster-scoped").to.deep.equal([]);
        },
        {
          timeoutMs: 90_000,
          intervalMs: 1000,
          what: "the garbage collector removing what the operator made",
        },
      );
      const crds = await cluster.kubectl(["get", "crd", "-o", "name"]);
      expect(crds).to.include("egresspolicies.airlock.dev").and.to.include("credentials.airlock.dev");
    });

    it("the running agent keeps enforcing its last policy without the operator", async function () {
      const mark = marker("no-operator");
      const cmd = ["curl", "-sS", "--max-time", "10", `https://${HOSTS.inject}/${mark}`];
      const res = await ctx.cluster().exec(AGENTS_NS, ctx.world().agentPod, AGENT, cmd);
      expect(res.code, res.stderr).to.equal(0);
      const arrival = await arrivedOnce(ctx.cluster(), mark);
      expect(arrival.headers?.["authorization"]).to.equal(`Bearer ${ctx.world().token}`);
    });
  });
}
