// Setting the e2e world up as a platform team would: the upstream, `helm install --wait`, an
// enabled namespace, `kubectl apply` of a Secret, a Credential and an EgressPolicy, and the agent
// Deployment. Each step prints how long it took.
import { randomBytes } from "node:crypto";
import { eventually } from "../helpers/eventually.ts";
import type { Cluster } from "./kit.ts";
import {
  AGENT_APP,
  AGENTS_NS,
  agentDeployment,
  agentsNamespace,
  makeUpstreamTls,
  policyManifests,
  RELEASE,
  RELEASE_NS,
  secretManifest,
  upstreamCaConfigMap,
  WORLD_NS,
  worldManifests,
  type UpstreamTls,
} from "./world.ts";

/** What the tests need to know about the world once it is up. */
export interface World {
  tls: UpstreamTls;
  upstreamIp: string;
  /** The token in the Secret: what the agent must never see. */
  token: string;
  agentPod: string;
}

const step = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
  const started = Date.now();
  const value = await work();
  console.log(`      [e2e] ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return value;
};

/** The chart values the e2e installs with (`--set`), for an upstream at `upstreamIp`. */
export function chartValues(cluster: Cluster, upstreamIp: string): string[] {
  const image = cluster.settings.image;
  const colon = image.lastIndexOf(":");
  return [
    `image.repository=${image.slice(0, colon)}`,
    `image.tag=${image.slice(colon + 1)}`,
    `image.pullPolicy=${cluster.settings.pullPolicy}`,
    "upstreamCA.configMap=upstream-ca",
    `sidecar.allowAddresses={${upstreamIp}/32}`,
    "operator.resyncSeconds=10",
    "operator.leaseSeconds=6",
  ];
}

/** `helm install` or `helm upgrade` of the release from charts/airlock with `values` (`--set`), `--wait`. */
export async function helmRelease(
  cluster: Cluster,
  verb: "install" | "upgrade",
  values: string[],
): Promise<void> {
  const sets = values.flatMap((value) => ["--set", value]);
  await cluster.helm([
    verb,
    RELEASE,
    "charts/airlock",
    "-n",
    RELEASE_NS,
    "--wait",
    "--timeout",
    "5m",
    ...sets,
  ]);
}

/** The running pod of a Deployment-selected app (the newest when several). */
export async function podOf(cluster: Cluster, namespace: string, selector: string): Promise<string> {
  return eventually(
    async () => {
      const names = (
        await cluster.kubectl([
          "get",
          "pods",
          "-n",
          namespace,
          "-l",
          selector,
          "--field-selector=status.phase=Running",
          "--sort-by=.metadata.creationTimestamp",
          "-o",
          "jsonpath={.items[*].metadata.name}",
        ])
      )
        .split(" ")
        .filter((name) => name !== "");
      const newest = names.at(-1);
      if (newest === undefined) throw new Error(`no running pod -l ${selector} in ${namespace}`);
      return newest;
    },
    { timeoutMs: 120_000, what: `a running pod -l ${selector}` },
  );
}

async function startUpstream(cluster: Cluster, tls: UpstreamTls): Promise<string> {
  const { agentImage, pullPolicy } = cluster.settings;
  await cluster.apply(worldManifests(agentImage, pullPolicy, tls));
  await cluster.kubectl([
    "wait",
    "-n",
    WORLD_NS,
    "--for=condition=Ready",
    "pod/upstream",
    "pod/bystander",
    "--timeout=180s",
  ]);
  return cluster.jsonpath(["pod", "upstream", "-n", WORLD_NS], "{.status.podIP}");
}

/** Sets the whole world up; returns what the tests read. */
export async function setUpWorld(cluster: Cluster): Promise<World> {
  const tls = makeUpstreamTls();
  const token = `e2e-${randomBytes(16).toString("hex")}`;
  const upstreamIp = await step("upstream and bystander pods Ready", () => startUpstream(cluster, tls));
  await step("helm install --wait", async () => {
    await cluster.apply(
      JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: RELEASE_NS } }),
    );
    await cluster.apply(upstreamCaConfigMap(tls));
    await helmRelease(cluster, "install", chartValues(cluster, upstreamIp));
  });
  await step("webhook caBundle set by the operator", () =>
    eventually(
      async () => {
        const ca = await cluster.jsonpath(
          ["mutatingwebhookconfiguration", "airlock-injector"],
          "{.webhooks[0].clientConfig.caBundle}",
        );
        if (ca === "") throw new Error("airlock-injector has no caBundle yet");
      },
      { timeoutMs: 120_000, what: "the operator patching caBundle" },
    ),
  );
  await step("kubectl apply: enabled namespace, Secret, Credential, EgressPolicy", async () => {
    await cluster.apply(agentsNamespace());
    await cluster.apply(secretManifest(token));
    await cluster.apply(policyManifests());
  });
  const agentPod = await step("agent Deployment rolled out (injected)", async () => {
    const { agentImage, pullPolicy } = cluster.settings;
    await cluster.apply(agentDeployment(agentImage, pullPolicy, upstreamIp));
    await cluster.kubectl([
      "rollout",
      "status",
      "-n",
      AGENTS_NS,
      `deployment/${AGENT_APP}`,
      "--timeout=240s",
    ]);
    return podOf(cluster, AGENTS_NS, `app=${AGENT_APP}`);
  });
  return { tls, upstreamIp, token, agentPod };
}
