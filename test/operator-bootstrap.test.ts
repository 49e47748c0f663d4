// Acceptance (issue 8, "fresh cluster"): a dedicated control plane with only the CRDs and the
// operator's RBAC, and a real `airlock operator --kubeconfig K` with no other flags (besides
// --metrics on a free port). It says what is missing (its namespace, then its namespace RBAC) once
// each, on /readyz too, recovers by itself, creates its signing key and webhook certificate, and the
// key in the Secret verifies the bundles it pushes to a real sidecar. A second replica, in-process,
// learns both from the Secrets and serves the webhook with them: injected pods carry the key.
// Rotation of both is driven through the Secrets alone. Last, restarted with --webhook-url, it is
// called by the API server: kubectl-created pods carry a sidecar whose env key verifies its bundles.
import { expect } from "chai";
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBundle, readPublicKeys, signBundle } from "../sidecar/control/bundle.ts";
import { webhookNames } from "../operator/kube/bootstrap-pki.ts";
import { webhookHandoff, type WebhookHandoff } from "../operator/kube/bootstrap-webhook-server.ts";
import { runOperator, type RunningOperator } from "../operator/run.ts";
import { admitPod } from "./helpers/admission-review.ts";
import { bootstrapKit, foreignWebhookConfig } from "./helpers/bootstrap-kit.ts";
import { ROOT } from "./helpers/cli.ts";
import {
  agentPodManifest,
  markPodRunning,
  startAgentPod,
  startOperatorProcess,
  startSidecarProcess,
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
import { freeLoopbackPort } from "./helpers/control-plane-processes.ts";

const NS = "airlock-system";
const HOME = "airlock-home"; // where the operator's ServiceAccount lives (airlock-system does not exist yet)
const AGENTS = "agents";
const INJECTED = "agents-injected"; // labelled airlock.dev/inject=enabled in the webhook tests
const PLAIN = "agents-plain";

describe("operator bootstrap (control plane): a fresh cluster, no flags, no hand steps", function () {
  let cp: ControlPlane;
  let operator: OperatorProcess;
  let replica: RunningOperator | undefined;
  let handoff: WebhookHandoff | undefined;
  const sidecars: SidecarProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "airlock-bootstrap-"));
  let world: AgentPodWorld;
  let operatorToken = "";

  const kit = bootstrapKit(() => cp, NS, AGENTS);
  const { kubectl, eventually, secretData, secretMissing, storedPod, policy, readyReason } = kit;
  const { webhooksOf, injectorAt } = kit;
  const output = (): string => operator.command.stdout() + operator.command.stderr();
  const readyz = async (): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${operator.metrics}/readyz`);
    return { status: res.status, body: await res.text() };
  };

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
      await kubectl(["apply", "-f", "-"], JSON.stringify(foreignWebhookConfig(kind, name, NS)));
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
    // The log line travels through a pipe: it may land just after /readyz changed.
    await eventually(
      () => Promise.resolve(output()),
      (o) => /resolved: namespace/.test(o),
      10_000,
    );
  });

  it("the RBAC bound: recovers by itself, creates its signing key and webhook certificate, ready", async function () {
    await kubectl([
      ...["-n", NS, "create", "rolebinding", "airlock-operator", "--clusterrole=airlock-operator-namespace"],
      `--serviceaccount=${HOME}:airlock-operator`,
    ]);
    await eventually(readyz, (r) => r.status === 200);
    const lines = [
      /start-up checks passed/,
      /created a new Ed25519 bundle-signing key/,
      /created the webhook CA and serving certificate/,
    ];
    // The log travels through a pipe: it may land just after /readyz changed.
    await eventually(
      () => Promise.resolve(output()),
      (o) => lines.every((line) => line.test(o)),
      10_000,
    );
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

  // The last clause of the acceptance line, through the API server: outside a cluster only
  // --webhook-url tells the operator how it is reached, so it is restarted with it. The Helm-owned
  // configurations of before() would not block pods (ConfigMaps in no namespace, Ignore) but hold
  // the names airlock-injector/airlock-validator, so only their caBundle would be kept in step and
  // no Pod would ever reach the operator: deleted, the leader creates its own (URL, fail closed).
  // From then on policies and pods in enabled namespaces go through it: these tests come last.
  let injectedKeys = "";
  it("restarted with --webhook-url it registers its webhooks: kubectl-created pods are injected with its key", async function () {
    this.timeout(60_000);
    await handoff?.close();
    await replica?.stop(); // else it would take the Lease and lead without a URL
    [handoff, replica] = [undefined, undefined];
    await stopProcess(operator.command); // SIGTERM releases the Lease
    for (const kind of ["mutatingwebhookconfiguration", "validatingwebhookconfiguration"])
      await kubectl(["delete", kind, kind.startsWith("m") ? "airlock-injector" : "airlock-validator"]);
    const url = `https://127.0.0.1:${String(await freeLoopbackPort())}`;
    operator = await startOperatorProcess([
      ...["--kubeconfig", join(dir, "operator.kubeconfig")],
      ...["--webhook", url.slice("https://".length), "--webhook-url", url],
    ]);
    await eventually(readyz, (r) => r.status === 200);
    await eventually(() => injectorAt(url), Boolean);
    await kubectl(["create", "namespace", INJECTED]);
    await kubectl(["label", "namespace", INJECTED, "airlock.dev/inject=enabled"]);
    await kubectl(["create", "namespace", PLAIN]);
    for (const ns of [INJECTED, PLAIN]) await kubectl(["-n", ns, "create", "serviceaccount", "agent"]);
    const pods = [...["good", "bad"].map((name) => [INJECTED, name]), [PLAIN, "plain"]] as const;
    for (const [ns, name] of pods) {
      const manifest = JSON.stringify(agentPodManifest(name, ns, "agent", { app: name }));
      // The first may meet the webhook server before it serves the reissued certificate: retried.
      await eventually(
        async () => (await cp.kubectl(["apply", "-f", "-"], { input: manifest })).stderr,
        (err) => err === "",
      );
    }
    const key = (await secretData("airlock-signing-key"))["public.pem"] ?? "";
    for (const name of ["good", "bad"]) {
      const pod = await storedPod(INJECTED, name);
      expect(pod.metadata.annotations?.["airlock.dev/status"]).to.be.a("string");
      const init = pod.spec.initContainers ?? [];
      expect(init.map((c) => c.name)).to.deep.equal(["airlock-init", "airlock-sidecar"]);
      injectedKeys = init[1]?.env?.find((e) => e.name === "AIRLOCK_BUNDLE_KEYS")?.value ?? "";
      expect(injectedKeys).to.equal(key);
    }
    const plain = await storedPod(PLAIN, "plain");
    expect(plain.spec.initContainers).to.equal(undefined);
    expect(plain.metadata.annotations?.["airlock.dev/status"]).to.equal(undefined);
    expect(plain.spec.containers.map((c) => c.name)).to.deep.equal(["agent"]);
  });

  it("the injected sidecar's key verifies the bundles the operator pushes (Synced); another key: BadSignature", async function () {
    this.timeout(60_000);
    expect(injectedKeys, "the previous test must have read the injected key").to.not.equal("");
    const agentToken = await cp.serviceAccountToken(INJECTED, "agent");
    const pods: AgentPodWorld = {
      ...world,
      namespace: INJECTED,
      kubeconfig: writeTokenKubeconfig(cp, join(dir, "injected.kubeconfig"), agentToken),
    };
    const stranger = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" });
    // Real sidecars, as the kubelet would run them: the good one with exactly the injected env value.
    for (const [name, ip, env] of [
      ["good", "127.0.0.53", injectedKeys],
      ["bad", "127.0.0.54", stranger.toString()],
    ] as const) {
      sidecars.push(await startSidecarProcess(pods, name, ip, { env }));
      await markPodRunning(pods, name, ip);
    }
    for (const name of ["good", "bad"])
      await kubectl(["apply", "-f", "-"], JSON.stringify(policy(name, name, "docs.example.test", INJECTED)));
    await eventually(
      () => readyReason("good", INJECTED),
      (r) => r === "Synced",
    );
    const refused = await eventually(
      () => readyReason("bad", INJECTED, "message"),
      (m) => m.includes("BadSignature"),
    );
    expect(refused).to.match(/pod bad: bundle \S+ rejected: BadSignature/);
    expect(await readyReason("bad", INJECTED)).to.equal("SyncPending");
  });
});
