// The admission webhook registered on the real kube-apiserver (control plane), driven with kubectl
// as a user would: pods in enabled namespaces are stored injected, unsafe pods and invalid policies
// are refused at apply time with their field paths, the sidecar cannot be swapped on a stored pod,
// and pod creation in an enabled namespace fails closed while the webhook is down. There is no
// kubelet: pods stay Pending. The configurations are removed at the end, and the test waits until
// the API server stops calling them, so later test files on the same control plane never meet them.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { load } from "js-yaml";
import type { InjectionConfig } from "../operator/inject/types.ts";
import { webhookConfigurations } from "../operator/webhook/configurations.ts";
import { startWebhookServer, type WebhookServer } from "../operator/webhook/server.ts";
import {
  CONTROL_PLANE_TIMEOUT_MS,
  installAirlockCrds,
  sharedControlPlane,
  type ControlPlane,
} from "./helpers/control-plane.ts";
import type { CommandResult } from "./helpers/cli.ts";
import { eventually as poll } from "./helpers/eventually.ts";
import { makeWebhookPki, testInjectionConfig } from "./helpers/webhook.ts";

type Json = Record<string, unknown>;

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: coder}
spec:
  replicas: 1
  selector: {matchLabels: {app: coding-agent}}
  template:
    metadata: {labels: {app: coding-agent}}
    spec:
      serviceAccountName: coder
      containers:
        - name: agent
          image: python:3.13-slim
          command: [sleep, infinity]
          volumeMounts: [{name: work, mountPath: /work}]
      volumes: [{name: work, emptyDir: {}}]
`;

/** The Pod the Deployment's ReplicaSet would create (ownerReferences left out: nothing owns it here). */
function replicaSetPod(name: string, patch: { spec?: Json; container?: Json } = {}): Json {
  const template = (load(DEPLOYMENT) as { spec: { template: { metadata: Json; spec: Json } } }).spec.template;
  const [container] = template.spec.containers as Json[];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { ...(template.metadata.labels as Json), "pod-template-hash": "6d4cf56db6" } },
    spec: { ...template.spec, containers: [{ ...container, ...patch.container }], ...patch.spec },
  };
}

describe("admission webhook on the control plane: kubectl against the real API server", function () {
  let cp: ControlPlane;
  let config: InjectionConfig;
  let server: WebhookServer | undefined;
  let haveControlPlane = false;
  const suffix = randomBytes(3).toString("hex");
  const enabled = `wh-on-${suffix}`;
  const plain = `wh-off-${suffix}`;
  const operatorNs = `wh-op-${suffix}`;

  const kubectl = async (args: string[], input?: string): Promise<CommandResult> =>
    cp.kubectl(args, input === undefined ? {} : { input });
  const must = async (args: string[], input?: string): Promise<string> => {
    const res = await kubectl(args, input);
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    return res.stdout;
  };
  const applyPod = (ns: string, pod: Json, extra: string[] = []): Promise<CommandResult> =>
    kubectl(["apply", "-n", ns, ...extra, "-o", "json", "-f", "-"], JSON.stringify(pod));
  const getPod = async (ns: string, name: string): Promise<Json> =>
    JSON.parse(await must(["get", "pod", name, "-n", ns, "-o", "json"])) as Json;
  const initNames = (pod: Json): string[] =>
    (((pod.spec as Json).initContainers as Json[] | undefined) ?? []).map((c) => String(c.name));
  /** Polls `check` until it holds; fails with the last value after 30 s. */
  const eventually = async (what: string, check: () => Promise<string | true>): Promise<void> => {
    await poll(
      async () => {
        const last = await check();
        if (last !== true) expect.fail(last);
      },
      { timeoutMs: 30_000, intervalMs: 250, what },
    );
  };
  const deleteConfigurations = (): Promise<CommandResult> =>
    kubectl([
      "delete",
      "--ignore-not-found",
      "mutatingwebhookconfiguration/airlock-injector",
      "validatingwebhookconfiguration/airlock-validator",
    ]);

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await sharedControlPlane();
    haveControlPlane = true;
    await installAirlockCrds(cp);
    const pki = makeWebhookPki();
    config = testInjectionConfig();
    server = await startWebhookServer({
      listen: { host: "127.0.0.1", port: 0 },
      tls: { cert: pki.cert, key: pki.key },
      injection: config,
    });
    for (const ns of [enabled, plain, operatorNs]) await must(["create", "namespace", ns]);
    // The operator's namespace carries the label too: only the NotIn keeps it out.
    for (const ns of [enabled, operatorNs])
      await must(["label", "namespace", ns, "airlock.dev/inject=enabled"]);
    const { mutating, validating } = webhookConfigurations({
      caBundle: pki.caPem,
      url: `https://127.0.0.1:${String(server.port)}`,
      operatorNamespace: operatorNs,
    });
    await must(
      ["apply", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "List", items: [mutating, validating] }),
    );
    // The API server picks configurations up through an informer: wait until a server-side dry run is injected.
    await eventually("the injector never took effect", async () => {
      const res = await applyPod(enabled, replicaSetPod("probe"), ["--dry-run=server"]);
      if (res.code !== 0) return res.stderr;
      return initNames(JSON.parse(res.stdout) as Json).includes("airlock-sidecar") || res.stdout;
    });
  });

  after(async function () {
    this.timeout(120_000);
    if (!haveControlPlane) return;
    await server?.close();
    await deleteConfigurations();
    // With the server gone, any configuration the API server still holds would fail a request:
    // wait until both a policy and a pod in an enabled namespace are admitted without it.
    const policy = { apiVersion: "airlock.dev/v1alpha1", kind: "EgressPolicy", metadata: { name: "after" } };
    const spec = { podSelector: {}, egress: [{ name: "a", hosts: ["a.example.test"] }] };
    await eventually("the webhook configurations are still called", async () => {
      const a = await kubectl(
        ["apply", "--dry-run=server", "-n", enabled, "-f", "-"],
        JSON.stringify({ ...policy, spec }),
      );
      const b = await applyPod(enabled, replicaSetPod("after"), ["--dry-run=server"]);
      return (a.code === 0 && b.code === 0) || `${a.stderr}${b.stderr}`;
    });
    for (const ns of [enabled, plain, operatorNs]) {
      await kubectl(["delete", "pods,egresspolicies", "--all", "-n", ns, "--wait=false"]);
      await kubectl(["delete", "namespace", ns, "--wait=false"]);
    }
  });

  it("stores a Deployment's pod injected in an enabled namespace", async function () {
    const res = await applyPod(enabled, replicaSetPod("coder-6d4cf56db6-a"));
    expect(res.code, res.stderr).to.equal(0);
    const pod = await getPod(enabled, "coder-6d4cf56db6-a");
    const spec = pod.spec as {
      initContainers: Json[];
      containers: Json[];
      automountServiceAccountToken: boolean;
    };
    expect(initNames(pod)).to.deep.equal(["airlock-init", "airlock-sidecar"]);
    expect(spec.initContainers.map((c) => c.image)).to.deep.equal([config.image, config.image]);
    expect(spec.initContainers[1]).to.have.property("restartPolicy", "Always");
    expect(spec.automountServiceAccountToken).to.equal(false);
    expect(spec.containers.map((c) => c.name)).to.deep.equal(["agent"]);
    expect(JSON.stringify(spec.containers[0]?.env)).to.include("SSL_CERT_FILE");
    expect((pod.metadata as { annotations: Json }).annotations).to.have.property("airlock.dev/status");
    expect(pod.status).to.deep.include({ phase: "Pending" });
  });

  it("leaves the same pod untouched in another namespace and in the operator's namespace", async function () {
    for (const ns of [plain, operatorNs]) {
      const res = await applyPod(ns, replicaSetPod("coder-6d4cf56db6-b"));
      expect(res.code, res.stderr).to.equal(0);
      const pod = await getPod(ns, "coder-6d4cf56db6-b");
      expect(initNames(pod), ns).to.deep.equal([]);
      expect(JSON.stringify(pod), ns).not.to.include("airlock");
    }
  });

  it("refuses each unsafe pod at kubectl apply with its field path", async function () {
    const cases: { name: string; pod: Json; path: string }[] = [
      {
        name: "hostnet",
        pod: replicaSetPod("hostnet", { spec: { hostNetwork: true } }),
        path: "spec.hostNetwork",
      },
      {
        name: "netadmin",
        pod: replicaSetPod("netadmin", {
          container: { securityContext: { capabilities: { add: ["NET_ADMIN"] } } },
        }),
        path: "spec.containers[0].securityContext.capabilities.add[0]",
      },
      {
        name: "uid15000",
        pod: replicaSetPod("uid15000", { spec: { securityContext: { runAsUser: 15000 } } }),
        path: "spec.securityContext.runAsUser",
      },
      {
        name: "privileged",
        pod: replicaSetPod("privileged", { container: { securityContext: { privileged: true } } }),
        path: "spec.containers[0].securityContext.privileged",
      },
    ];
    for (const c of cases) {
      const res = await applyPod(enabled, c.pod);
      expect(res.code, c.name).not.to.equal(0);
      expect(res.stderr, c.name).to.include('admission webhook "inject.airlock.dev" denied the request');
      expect(res.stderr, c.name).to.include(`${c.path}: `);
      expect(
        (await kubectl(["get", "pod", c.name, "-n", enabled])).code,
        `${c.name} was stored`,
      ).not.to.equal(0);
    }
  });

  it("refuses an invalid EgressPolicy at apply time with its field path, in any namespace", async function () {
    const egress = [
      { name: "github-api", hosts: ["api.github.com"] },
      { name: "npm", hosts: ["registry.npmjs.org", "*.npmjs.org"] },
      // The CRD schema lets this through; the policy core does not.
      { name: "docs", hosts: ["docs.example.test"], paths: ["/guides/**x"] },
    ];
    const policy = (rules: Json[]): string =>
      JSON.stringify({
        apiVersion: "airlock.dev/v1alpha1",
        kind: "EgressPolicy",
        metadata: { name: "coding-agent" },
        spec: { podSelector: { matchLabels: { app: "coding-agent" } }, egress: rules },
      });
    const refused = await kubectl(["apply", "-n", plain, "-f", "-"], policy(egress));
    expect(refused.code).not.to.equal(0);
    expect(refused.stderr).to.include('admission webhook "policies.airlock.dev" denied the request');
    expect(refused.stderr).to.include("spec.egress[2].paths[0]: ");
    const accepted = await kubectl(["apply", "-n", plain, "-f", "-"], policy(egress.slice(0, 2)));
    expect(accepted.code, accepted.stderr).to.equal(0);
  });

  it("refuses swapping the sidecar's image on a stored pod, allows a label change", async function () {
    expect((await applyPod(enabled, replicaSetPod("swap"))).code).to.equal(0);
    const index = initNames(await getPod(enabled, "swap")).indexOf("airlock-sidecar");
    const setImage = await kubectl(["set", "image", "-n", enabled, "pod/swap", "airlock-sidecar=other:1"]);
    expect(setImage.code).not.to.equal(0);
    expect(setImage.stderr).to.include('admission webhook "pods.airlock.dev" denied the request');
    expect(setImage.stderr).to.include(`spec.initContainers[${String(index)}].image: `);
    const patch = [{ op: "replace", path: `/spec/initContainers/${String(index)}/image`, value: "other:1" }];
    const patched = await kubectl([
      "patch",
      "pod",
      "swap",
      "-n",
      enabled,
      "--type=json",
      "-p",
      JSON.stringify(patch),
    ]);
    expect(patched.code).not.to.equal(0);
    expect(patched.stderr).to.include(`spec.initContainers[${String(index)}].image: `);
    const pod = await getPod(enabled, "swap");
    expect(((pod.spec as { initContainers: Json[] }).initContainers[index] as Json).image).to.equal(
      config.image,
    );
    await must(["label", "pod", "swap", "-n", enabled, "reviewed=yes"]);
  });

  it("refuses an ephemeral container that targets the sidecar", async function () {
    expect((await applyPod(enabled, replicaSetPod("debugged"))).code).to.equal(0);
    const res = await kubectl([
      "debug",
      "-n",
      enabled,
      "pod/debugged",
      "--image=busybox",
      "--target=airlock-sidecar",
    ]);
    expect(res.code).not.to.equal(0);
    expect(res.stderr).to.include("spec.ephemeralContainers[0].targetContainerName: ");
    const pod = await getPod(enabled, "debugged");
    expect((pod.spec as Json).ephemeralContainers).to.equal(undefined);
  });

  it("fails closed while the webhook is down: no pod in an enabled namespace, others unaffected", async function () {
    await server?.close();
    server = undefined;
    const refused = await applyPod(enabled, replicaSetPod("while-down"));
    expect(refused.code).not.to.equal(0);
    expect(refused.stderr).to.match(/failed calling webhook "inject\.airlock\.dev"/);
    expect((await kubectl(["get", "pod", "while-down", "-n", enabled])).code).not.to.equal(0);
    const elsewhere = await applyPod(plain, replicaSetPod("while-down"));
    expect(elsewhere.code, elsewhere.stderr).to.equal(0);
  });
});
