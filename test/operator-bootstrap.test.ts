// Acceptance (issue 8, "fresh cluster"): a dedicated control plane with only the CRDs and the
// operator's RBAC, and a real `airlock operator --kubeconfig K` with no other flags (besides
// --metrics on a free port). It says what is missing (its namespace, then its namespace RBAC) once
// each, on /readyz too, recovers by itself, creates its signing key and webhook certificate, and the
// key in the Secret verifies the bundles it pushes to a real sidecar. A second replica, in-process,
// learns both from the Secrets and serves the webhook with them: injected pods carry the key.
// Rotation of both is driven through the Secrets alone.
import { expect } from "chai";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBundle, readPublicKeys, signBundle } from "../sidecar/control/bundle.ts";
import { webhookNames } from "../operator/kube/bootstrap-pki.ts";
import { webhookHandoff, type WebhookHandoff } from "../operator/kube/bootstrap-webhook-server.ts";
import { runOperator, type RunningOperator } from "../operator/run.ts";
import { admitPod } from "./helpers/admission-review.ts";
import { canary } from "./helpers/canary.ts";
import { ROOT } from "./helpers/cli.ts";
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
  startControlPlane,
  tokenKubeConfig,
  writeTokenKubeconfig,
  type ControlPlane,
} from "./helpers/control-plane.ts";

const NS = "airlock-system";
const HOME = "airlock-home"; // where the operator's ServiceAccount lives (airlock-system does not exist yet)
const AGENTS = "agents";

describe("operator bootstrap (control plane): a fresh cluster, no flags, no hand steps", function () {
  let cp: ControlPlane;
  let operator: OperatorProcess;
  let replica: RunningOperator | undefined;
  let handoff: WebhookHandoff | undefined;
  const sidecars: SidecarProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "airlock-bootstrap-"));
  let world: AgentPodWorld;
  let operatorToken = "";

  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const res = await cp.kubectl(args, input === undefined ? {} : { input });
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    return res.stdout;
  };
  const eventually = async <T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> => {
    const deadline = Date.now() + ms;
    let last = await read();
    while (!ok(last) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      last = await read();
    }
    expect(ok(last), `last seen: ${JSON.stringify(last)}`).to.equal(true);
    return last;
  };
  const output = (): string => operator.command.stdout() + operator.command.stderr();
  const readyz = async (): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${operator.metrics}/readyz`);
    return { status: res.status, body: await res.text() };
  };
  const secretData = async (name: string): Promise<Record<string, string>> => {
    const json = JSON.parse(await kubectl(["-n", NS, "get", "secret", name, "-o", "json"])) as {
      data: Record<string, string>;
      type: string;
    };
    const data = Object.fromEntries(
      Object.entries(json.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
    );
    for (const [k, v] of Object.entries(data))
      if (k.includes("private") || k === "tls.key") canary.secret(v, k);
    return { ...data, type: json.type };
  };
  const secretMissing = async (name: string): Promise<boolean> =>
    (await cp.kubectl(["-n", NS, "get", "secret", name])).code !== 0;
  const policy = (name: string, app: string, host: string) => ({
    apiVersion: "airlock.dev/v1alpha1",
    kind: "EgressPolicy",
    metadata: { name, namespace: AGENTS },
    spec: { podSelector: { matchLabels: { app } }, egress: [{ name: "docs", hosts: [host] }] },
  });
  const readyReason = (name: string): Promise<string> =>
    kubectl([
      ...["-n", AGENTS, "get", "egresspolicy", name, "-o"],
      'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
    ]);
  const foreignConfig = (kind: string, name: string) => ({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind,
    metadata: { name, labels: { "app.kubernetes.io/managed-by": "Helm" } },
    webhooks: ["ours", "theirs"].map((hook) => ({
      name: `${hook}.example.test`,
      clientConfig:
        hook === "ours"
          ? { service: { namespace: NS, name: "airlock-webhook", path: "/x" } }
          : { url: "https://theirs.example.test/x", caBundle: Buffer.from("theirs").toString("base64") },
      rules: [{ apiGroups: [""], apiVersions: ["v1"], resources: ["configmaps"], operations: ["CREATE"] }],
      namespaceSelector: { matchLabels: { "never-matches": "true" } },
      admissionReviewVersions: ["v1"],
      sideEffects: "None",
      failurePolicy: "Ignore",
      timeoutSeconds: 7,
    })),
  });
  const webhooksOf = async (kind: string, name: string) =>
    (
      JSON.parse(await kubectl(["get", kind, name, "-o", "json"])) as {
        webhooks: { name: string; timeoutSeconds: number; clientConfig: { caBundle?: string } }[];
      }
    ).webhooks;

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    const started = Date.now();
    cp = await startControlPlane(); // dedicated: airlock-system and the webhook configurations are ours
    await installAirlockCrds(cp);
    await kubectl(["apply", "-f", join(ROOT, "operator/rbac/clusterrole.yaml")]);
    for (const ns of [HOME, AGENTS]) await kubectl(["create", "namespace", ns]);
    await kubectl(["-n", HOME, "create", "serviceaccount", "airlock-operator"]);
    await kubectl(["-n", AGENTS, "create", "serviceaccount", "agent"]);
    await kubectl([
      ...["create", "clusterrolebinding", "airlock-operator", "--clusterrole=airlock-operator"],
      `--serviceaccount=${HOME}:airlock-operator`,
    ]);
    for (const [kind, name] of [
      ["MutatingWebhookConfiguration", "airlock-injector"],
      ["ValidatingWebhookConfiguration", "airlock-validator"],
    ] as const)
      await kubectl(["apply", "-f", "-"], JSON.stringify(foreignConfig(kind, name)));
    operatorToken = await cp.serviceAccountToken(HOME, "airlock-operator");
    const kubeconfig = writeTokenKubeconfig(cp, join(dir, "operator.kubeconfig"), operatorToken);
    world = {
      cp,
      namespace: AGENTS,
      dir,
      serviceAccount: "agent",
      kubeconfig: writeTokenKubeconfig(
        cp,
        join(dir, "agent.kubeconfig"),
        await cp.serviceAccountToken(AGENTS, "agent"),
      ),
      upstreamCa: join(dir, "upstream-ca.pem"),
      resolve: [],
      controlPort: 15443, // the operator's default: no --control-port flag
    };
    writeFileSync(world.upstreamCa, cp.caPem);
    process.stderr.write(`      (dedicated control plane ready in ${String(Date.now() - started)} ms)\n`);
    // No other flags; --webhook on a free loopback port only to avoid clashes (--metrics likewise).
    operator = await startOperatorProcess(["--kubeconfig", kubeconfig, "--webhook", "127.0.0.1:0"]);
  });
  let failed = false;
  afterEach(function () {
    if (this.currentTest?.state === "failed") failed = true;
  });
  after(async function () {
    this.timeout(60_000);
    const running = operator as OperatorProcess | undefined; // undefined when before() failed early
    if (failed && running) process.stderr.write(`--- operator output ---\n${output().slice(-6000)}\n`);
    await handoff?.close();
    await replica?.stop();
    for (const s of sidecars) await stopProcess(s.command);
    if (running) await stopProcess(running.command);
    await (cp as ControlPlane | undefined)?.stop();
  });

  it("says its namespace is missing, once, with the fix, and /readyz answers 503 saying so", async function () {
    const line = /namespace airlock-system does not exist[^"]*kubectl create namespace airlock-system/;
    await eventually(
      async () => Promise.resolve(output()),
      (o) => line.test(o),
    );
    const first = await readyz();
    expect(first.status).to.equal(503);
    expect(first.body).to.match(line);
    // Several re-checks later (one every 2 s) it still says so on /readyz, but logged it only once.
    const since = Date.now();
    await eventually(readyz, (r) => r.status === 503 && Date.now() - since > 5000, 15_000);
    expect(output().split("does not exist").length - 1).to.equal(1);
    expect(await secretMissing("airlock-signing-key")).to.equal(true);
  });

  it("the namespace created: says its namespace RBAC is missing, with the exact command", async function () {
    await kubectl(["create", "namespace", NS]);
    const rbac = new RegExp(
      `missing RBAC: cannot create secrets in ${NS}.*kubectl -n ${NS} create rolebinding airlock-operator ` +
        `--clusterrole=airlock-operator-namespace --serviceaccount=${HOME}:airlock-operator`,
    );
    const r = await eventually(readyz, (x) => rbac.test(x.body));
    expect(r.status).to.equal(503);
    expect(output()).to.match(/resolved: namespace/);
  });

  it("the RBAC bound: recovers by itself, creates its signing key and webhook certificate, ready", async function () {
    await kubectl([
      ...["-n", NS, "create", "rolebinding", "airlock-operator", "--clusterrole=airlock-operator-namespace"],
      `--serviceaccount=${HOME}:airlock-operator`,
    ]);
    await eventually(readyz, (r) => r.status === 200);
    expect(output()).to.match(/start-up checks passed/);
    expect(output()).to.match(/created a new Ed25519 bundle-signing key/);
    expect(output()).to.match(/created the webhook CA and serving certificate/);
    const key = await secretData("airlock-signing-key");
    expect(createPrivateKey(key["private.pem"] ?? "").asymmetricKeyType).to.equal("ed25519");
    expect(readPublicKeys(key["public.pem"] ?? "")).to.have.length(1);
    const tls = await secretData("airlock-webhook-tls");
    expect(tls.type).to.equal("kubernetes.io/tls");
    const cert = new X509Certificate(tls["tls.crt"] ?? "");
    expect(cert.verify(new X509Certificate(tls["ca.crt"] ?? "").publicKey)).to.equal(true);
    expect(cert.checkHost(`airlock-webhook.${NS}.svc`)).to.equal(`airlock-webhook.${NS}.svc`);
    expect(cert.checkHost(`airlock-webhook.${NS}.svc.cluster.local`)).to.not.equal(undefined);
  });

  it("patches only the caBundle of the webhook configurations someone else owns, only where they route to it", async function () {
    const tls = await secretData("airlock-webhook-tls");
    const caBundle = Buffer.from(tls["ca.crt"] ?? "").toString("base64");
    for (const [kind, name] of [
      ["mutatingwebhookconfiguration", "airlock-injector"],
      ["validatingwebhookconfiguration", "airlock-validator"],
    ] as const) {
      const hooks = await eventually(
        () => webhooksOf(kind, name),
        (h) => h[0]?.clientConfig.caBundle === caBundle,
      );
      expect(hooks[1]?.clientConfig.caBundle).to.equal(Buffer.from("theirs").toString("base64"));
      expect(hooks.map((h) => h.timeoutSeconds)).to.deep.equal([7, 7]);
      const labels = await kubectl(["get", kind, name, "-o", "jsonpath={.metadata.labels}"]);
      expect(JSON.parse(labels)).to.deep.equal({ "app.kubernetes.io/managed-by": "Helm" });
    }
  });

  it("the public key in the Secret verifies the bundles it pushes (a real sidecar ACKs them)", async function () {
    const key = await secretData("airlock-signing-key");
    writeFileSync(join(dir, "public.pem"), key["public.pem"] ?? "");
    sidecars.push(await startAgentPod(world, "agent-a", "127.0.0.51", join(dir, "public.pem"), { app: "a" }));
    await kubectl(["apply", "-f", "-"], JSON.stringify(policy("a", "a", "docs.example.test")));
    await eventually(
      () => readyReason("a"),
      (r) => r === "Synced",
    );
  });

  it("a second replica reads both Secrets and serves the webhook: injected pods carry the Secret's key", async function () {
    this.timeout(60_000);
    handoff = webhookHandoff({
      listen: { host: "127.0.0.1", port: 0 },
      injection: { image: "airlock:test" },
    });
    replica = runOperator({
      config: tokenKubeConfig(cp, operatorToken),
      leaseNamespace: NS,
      identity: "replica-b",
      webhook: { names: webhookNames(NS) },
      onBundleKeys: handoff.onBundleKeys,
      onWebhookTls: handoff.onWebhookTls,
    });
    const server = await handoff.listening;
    expect(replica.leading).to.equal(false);
    const key = await secretData("airlock-signing-key");
    const tls = await secretData("airlock-webhook-tls");
    const injected = await admitPod(server.port, NS, AGENTS, tls["ca.crt"] ?? "");
    expect(injected).to.equal(key["public.pem"]);
    // What the injected sidecar holds verifies what the operator's key signs.
    const signed = signBundle(
      {
        apiVersion: "airlock.dev/v1alpha1",
        kind: "PolicyBundle",
        generation: 1,
        bootId: "b",
        issuedAt: new Date().toISOString(),
        policy: { rules: [] } as never,
      },
      createPrivateKey(key["private.pem"] ?? ""),
    );
    expect(openBundle(signed, readPublicKeys(injected)).ok).to.equal(true);
  });

  it("webhook certificate rotation: deleting its Secret makes a new CA, caBundle and served certificate follow", async function () {
    if (handoff === undefined) throw new Error("no webhook server");
    const server = await handoff.listening;
    const before = (await secretData("airlock-webhook-tls"))["ca.crt"] ?? "";
    await kubectl(["-n", NS, "delete", "secret", "airlock-webhook-tls"]);
    const after = await eventually(
      async () =>
        (await secretMissing("airlock-webhook-tls"))
          ? ""
          : ((await secretData("airlock-webhook-tls"))["ca.crt"] ?? ""),
      (ca) => ca !== "" && ca !== before,
    );
    const caBundle = Buffer.from(after).toString("base64");
    await eventually(
      () => webhooksOf("mutatingwebhookconfiguration", "airlock-injector"),
      (h) => h[0]?.clientConfig.caBundle === caBundle,
    );
    // The non-leader's server now presents a certificate of the new CA (setTls, no restart).
    await eventually(
      () =>
        admitPod(server.port, NS, AGENTS, after).then(
          () => "ok",
          (err: unknown) => (err as Error).message,
        ),
      (r) => r === "ok",
    );
    expect(
      await admitPod(server.port, NS, AGENTS, before).then(
        () => "ok",
        () => "refused",
      ),
    ).to.equal("refused");
  });

  it("signing-key rotation: stage (sidecars get both keys, old ones keep working), then promote", async function () {
    this.timeout(60_000);
    const old = await secretData("airlock-signing-key");
    await kubectl(["-n", NS, "annotate", "secret", "airlock-signing-key", "airlock.dev/rotate=stage"]);
    const staged = await eventually(
      () => secretData("airlock-signing-key"),
      (d) => d["next-public.pem"] !== undefined,
    );
    expect(staged["private.pem"]).to.equal(old["private.pem"]);
    expect(
      await kubectl([
        "-n",
        NS,
        "get",
        "secret",
        "airlock-signing-key",
        "-o",
        "jsonpath={.metadata.annotations}",
      ]),
    ).to.not.include("rotate");
    // New pods get both keys; the old sidecar still takes bundles (signed with the current key).
    await eventually(
      async () => Promise.resolve(handoff?.injection.bundlePublicKeys ?? ""),
      (k) => readPublicKeys(k).length === 2,
    );
    await kubectl(["apply", "-f", "-"], JSON.stringify(policy("a", "a", "docs2.example.test")));
    await eventually(
      () => readyReason("a"),
      (r) => r === "Synced",
    );
    // A pod injected now (both keys) keeps working across the promotion.
    writeFileSync(join(dir, "both.pem"), handoff?.injection.bundlePublicKeys ?? "");
    sidecars.push(await startAgentPod(world, "agent-b", "127.0.0.52", join(dir, "both.pem"), { app: "b" }));
    await kubectl(["-n", NS, "annotate", "secret", "airlock-signing-key", "airlock.dev/rotate=promote"]);
    const promoted = await eventually(
      () => secretData("airlock-signing-key"),
      (d) => d["next-public.pem"] === undefined && d["private.pem"] !== old["private.pem"],
    );
    expect(promoted["public.pem"]).to.equal(staged["next-public.pem"]);
    await eventually(
      async () => Promise.resolve(handoff?.injection.bundlePublicKeys ?? ""),
      (k) => k === promoted["public.pem"],
    );
    await kubectl(["apply", "-f", "-"], JSON.stringify(policy("b", "b", "docs3.example.test")));
    await eventually(
      () => readyReason("b"),
      (r) => r === "Synced",
    );
  });
});
