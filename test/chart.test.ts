// The Helm chart charts/airlock with the real helm binary (test/k8s/build.sh): lint, pinned
// renders, no drift from crds/ and operator/rbac/, a schema that refuses unknown keys, arguments
// the operator accepts, metric names that exist, webhook configurations equal to the operator's
// builder (caBundle aside), a server-side dry run of the render against the real kube-apiserver (the
// shared control plane) with Pod Security "restricted" enforced, and a real install, upgrade and
// uninstall there: the operator's caBundle survives the upgrade, nothing of the release survives
// the uninstall.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { loadAll } from "js-yaml";
import { Histogram } from "prom-client";
import { parseOperatorFlags } from "../operator/flags.ts";
import { sidecarContainer } from "../operator/inject/injected.ts";
import { WEBHOOK_SERVICE, webhookNames } from "../operator/kube/bootstrap-pki.ts";
import { syncWebhookConfigurations } from "../operator/kube/bootstrap-webhooks.ts";
import { createOperatorMetrics } from "../operator/metrics.ts";
import { webhookConfigurations } from "../operator/webhook/configurations.ts";
import { createSidecarMetrics } from "../sidecar/observe/metrics.ts";
import { ROOT, type CommandResult } from "./helpers/cli.ts";
import {
  CONTROL_PLANE_TIMEOUT_MS,
  installAirlockCrds,
  sharedControlPlane,
  type ControlPlane,
} from "./helpers/control-plane.ts";
import { ensureBinaries } from "./helpers/control-plane-processes.ts";
import { assertNoStaleGoldens, expectGolden } from "./helpers/golden.ts";

const CHART = join(ROOT, "charts/airlock");
const GOLDEN_DIR = "test/golden/chart";
const MONITORING = ["--set", "monitoring.enabled=true", "--set", "upstreamCA.configMap=corp-roots"];

// A rendered Kubernetes object, loosely typed: tests read the fields they check.
type Doc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
};
type Json = Record<string, unknown>;

function parseDocs(yaml: string): Doc[] {
  return loadAll(yaml).filter((d): d is Doc => d !== null && typeof d === "object");
}

function find(docs: Doc[], kind: string, name: string): Doc {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (doc === undefined) throw new Error(`the render has no ${kind} ${name}`);
  return doc;
}

function operatorPodSpec(docs: Doc[]): Json {
  const deployment = find(docs, "Deployment", "airlock-operator") as Doc & {
    spec: { template: { spec: Json } };
  };
  return deployment.spec.template.spec;
}

function operatorContainer(docs: Doc[]): Json & { args: string[] } {
  const containers = operatorPodSpec(docs)["containers"] as (Json & { args: string[] })[];
  const [container, ...others] = containers;
  if (container === undefined || others.length > 0)
    throw new Error("the operator pod must run one container");
  expect(container["name"]).to.equal("operator");
  return container;
}

/** Every `airlock_*` series name in a PromQL expression. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bairlock_[a-z_]+/g)].map((m) => m[0]);
}

const WEBHOOK_KINDS = {
  mutating: ["MutatingWebhookConfiguration", "airlock-injector"],
  validating: ["ValidatingWebhookConfiguration", "airlock-validator"],
} as const;

type Webhook = Json & { name: string; clientConfig: Json & { caBundle?: string } };

/**
 * What the operator's builder makes for Service airlock-webhook:443 in `namespace`, as the chart
 * must render it: no caBundle (the operator patches it in), every failurePolicy `failurePolicy`.
 */
function builderConfigurations(
  namespace: string,
  failurePolicy = "Fail",
): Record<"mutating" | "validating", Json> {
  const built = webhookConfigurations({
    caBundle: "unused",
    service: { namespace, name: WEBHOOK_SERVICE, port: 443 },
    operatorNamespace: namespace,
  });
  const strip = (config: Json): Json => {
    const copy = structuredClone(config) as Json & { webhooks: Webhook[] };
    for (const hook of copy.webhooks) {
      delete hook.clientConfig.caBundle;
      hook["failurePolicy"] = failurePolicy;
    }
    return copy;
  };
  return { mutating: strip(built.mutating), validating: strip(built.validating) };
}

/** Object nodes of a JSON schema that accept unknown keys (no `additionalProperties` at all). */
function openObjects(node: unknown, path: string): string[] {
  if (Array.isArray(node)) return node.flatMap((item, i) => openObjects(item, `${path}[${i}]`));
  if (node === null || typeof node !== "object") return [];
  const schema = node as Json;
  const types = ([] as unknown[]).concat(schema["type"] ?? []);
  const own = types.includes("object") && schema["additionalProperties"] === undefined ? [path || "/"] : [];
  return [...own, ...Object.entries(schema).flatMap(([key, value]) => openObjects(value, `${path}/${key}`))];
}

describe("Helm chart charts/airlock: lint, goldens, drift, schema (helm from test/k8s/build.sh)", function () {
  let helmPath = "";
  let home = "";
  const renders = new Map<string, Doc[]>();

  function helm(args: string[]): Promise<CommandResult> {
    return new Promise((resolve) => {
      execFile(
        helmPath,
        args,
        // No cluster: `helm template` and `helm lint` must not need one.
        { env: { ...process.env, HOME: home, KUBECONFIG: join(home, "no-kubeconfig") }, encoding: "utf8" },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  async function template(args: string[]): Promise<string> {
    const result = await helm(["template", "airlock", CHART, "-n", "airlock-system", ...args]);
    expect(result.code, `helm template ${args.join(" ")} failed: ${result.stderr}`).to.equal(0);
    return result.stdout;
  }

  async function rendered(name: "default" | "monitoring"): Promise<Doc[]> {
    let docs = renders.get(name);
    if (docs === undefined) {
      docs = parseDocs(await template(name === "default" ? [] : MONITORING));
      renders.set(name, docs);
    }
    return docs;
  }

  before(async function () {
    // A cold build of the control plane's binaries takes many minutes; helm comes with them.
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    helmPath = (await ensureBinaries()).helm;
    home = mkdtempSync(join(tmpdir(), "airlock-helm-"));
  });

  after(() => {
    if (home !== "") rmSync(home, { recursive: true, force: true });
  });

  for (const [what, args] of [
    ["default values", []],
    ["monitoring and upstreamCA on", MONITORING],
  ] as const) {
    it(`helm lint --strict is clean with ${what}`, async () => {
      const result = await helm(["lint", "--strict", CHART, ...args]);
      expect(result.code, `${result.stdout}\n${result.stderr}`).to.equal(0);
      expect(result.stdout).to.match(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      expect(result.stdout).not.to.match(/\[(WARNING|ERROR)\]/);
    });
  }

  const goldens: { name: string; file: string; args: readonly string[] }[] = [
    { name: "default values", file: `${GOLDEN_DIR}/default.yaml`, args: [] },
    {
      name: "monitoring and upstreamCA on",
      file: `${GOLDEN_DIR}/monitoring-upstream-ca.yaml`,
      args: MONITORING,
    },
  ];
  for (const golden of goldens) {
    it(`helm template -n airlock-system with ${golden.name} renders ${golden.file}`, async () => {
      expectGolden(golden.file, await template([...golden.args]));
    });
  }

  it("every file in test/golden/chart is used by a case", () => {
    assertNoStaleGoldens(
      GOLDEN_DIR,
      goldens.map((g) => g.file),
    );
  });

  it("Chart.yaml: apiVersion v2, version 0.1.0, appVersion is package.json's version", () => {
    const chart = parseDocs(readFileSync(join(CHART, "Chart.yaml"), "utf8"))[0] as unknown as Json;
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(chart).to.include({
      apiVersion: "v2",
      name: "airlock",
      version: "0.1.0",
      appVersion: pkg.version,
    });
  });

  it("charts/airlock/crds/ holds byte-equal copies of every CRD in crds/, and nothing else", () => {
    const yamlIn = (dir: string): string[] =>
      readdirSync(dir)
        .filter((f) => f.endsWith(".yaml"))
        .sort();
    const source = yamlIn(join(ROOT, "crds"));
    expect(source.length, "crds/ has no CRDs").to.be.greaterThan(0);
    expect(readdirSync(join(CHART, "crds")).sort(), "charts/airlock/crds/ vs crds/*.yaml").to.deep.equal(
      source,
    );
    for (const file of source)
      expect(
        readFileSync(join(CHART, "crds", file), "utf8"),
        `charts/airlock/crds/${file} drifted from crds/${file}: cp crds/${file} charts/airlock/crds/`,
      ).to.equal(readFileSync(join(ROOT, "crds", file), "utf8"));
  });

  it("the ClusterRoles' rules equal operator/rbac/clusterrole.yaml's, role by role", async () => {
    const source = parseDocs(readFileSync(join(ROOT, "operator/rbac/clusterrole.yaml"), "utf8"));
    const chart = (await rendered("default")).filter((d) => d.kind === "ClusterRole");
    const rules = (docs: Doc[]): Record<string, unknown> =>
      Object.fromEntries(docs.map((d) => [d.metadata.name, d["rules"]]));
    expect(
      rules(chart),
      "charts/airlock/templates/rbac.yaml vs operator/rbac/clusterrole.yaml",
    ).to.deep.equal(rules(source));
    expect(Object.keys(rules(source))).to.have.members(["airlock-operator", "airlock-operator-namespace"]);
  });

  it("binds airlock-operator cluster-wide and airlock-operator-namespace only in the release namespace", async () => {
    const docs = await rendered("default");
    const subject = [{ kind: "ServiceAccount", name: "airlock-operator", namespace: "airlock-system" }];
    const bindings = docs.filter((d) => d.kind === "ClusterRoleBinding" || d.kind === "RoleBinding");
    expect(
      bindings.map((b) => ({
        kind: b.kind,
        namespace: b.metadata.namespace,
        role: b["roleRef"],
        subjects: b["subjects"],
      })),
    ).to.have.deep.members([
      {
        kind: "ClusterRoleBinding",
        namespace: undefined,
        role: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "airlock-operator" },
        subjects: subject,
      },
      {
        kind: "RoleBinding",
        namespace: "airlock-system",
        role: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: "airlock-operator-namespace",
        },
        subjects: subject,
      },
    ]);
    expect(operatorPodSpec(docs)["serviceAccountName"]).to.equal("airlock-operator");
  });

  it("renders airlock-injector and airlock-validator exactly as the operator's builder does, less caBundle", async () => {
    for (const [namespace, args] of [
      ["airlock-system", []],
      ["airlock-system", MONITORING],
      ["other-ns", []],
    ] as const) {
      const result = await helm(["template", "airlock", CHART, "-n", namespace, ...args]);
      expect(result.code, result.stderr).to.equal(0);
      const docs = parseDocs(result.stdout);
      const want = builderConfigurations(namespace);
      for (const kind of ["mutating", "validating"] as const) {
        const [k, name] = WEBHOOK_KINDS[kind];
        const got = find(docs, k, name);
        const expected = want[kind] as Doc;
        // The chart adds its own labels (managed-by Helm, instance, …) to the builder's.
        expect(got.metadata.labels).to.include(expected.metadata.labels);
        expect(
          { ...got, metadata: { name: got.metadata.name } },
          `charts/airlock/templates/webhooks.yaml vs operator/webhook/configurations.ts (${k}, -n ${namespace})`,
        ).to.deep.equal({ ...expected, metadata: { name: expected.metadata.name } });
        expect(got.metadata.namespace).to.equal(undefined);
      }
    }
    const service = find(await rendered("default"), "Service", WEBHOOK_SERVICE) as Doc & { spec: Json };
    // The configurations name Service airlock-webhook, port 443 (as operator/cli.ts does).
    expect(service.spec["ports"]).to.deep.equal([
      { name: "https", port: 443, targetPort: "webhook", protocol: "TCP" },
    ]);
  });

  it("webhook.failurePolicy=Ignore changes every webhook's failurePolicy and nothing else", async () => {
    const docs = parseDocs(await template(["--set", "webhook.failurePolicy=Ignore"]));
    const want = builderConfigurations("airlock-system", "Ignore");
    for (const kind of ["mutating", "validating"] as const) {
      const [k, name] = WEBHOOK_KINDS[kind];
      const got = find(docs, k, name);
      expect(got["webhooks"]).to.deep.equal(want[kind]["webhooks"]);
    }
    const result = await helm(["template", "airlock", CHART, "--set", "webhook.failurePolicy=Never"]);
    expect(result.code).not.to.equal(0);
    expect(result.stderr).to.match(/at '\/webhook\/failurePolicy': value must be one of 'Fail', 'Ignore'/);
  });

  it("the operator's arguments are accepted by airlock operator's own flag parser", async () => {
    for (const [name, expectedCa] of [
      ["default", undefined],
      ["monitoring", "/etc/airlock/upstream-ca/ca.crt"],
    ] as const) {
      const docs = await rendered(name);
      const container = operatorContainer(docs);
      expect(container.args[0]).to.equal("operator");
      // The kubelet expands $(VAR) from the container's env; these come from the downward API.
      const env = container["env"] as { name: string; valueFrom?: { fieldRef: { fieldPath: string } } }[];
      expect(env.map((e) => [e.name, e.valueFrom?.fieldRef.fieldPath])).to.deep.equal([
        ["POD_NAMESPACE", "metadata.namespace"],
        ["POD_NAME", "metadata.name"],
      ]);
      const argv = container.args
        .slice(1)
        .map((a) =>
          a.replace("$(POD_NAMESPACE)", "airlock-system").replace("$(POD_NAME)", "airlock-operator-x"),
        );
      const flags = parseOperatorFlags(argv, {}, "host", "0.0.0");
      expect(flags).to.deep.include({
        leaseNamespace: "airlock-system",
        identity: "airlock-operator-x",
        image: "airlock:0.1.0",
        imagePullPolicy: "IfNotPresent",
        upstreamCaPath: expectedCa,
        webhook: { host: "0.0.0.0", port: 9443 },
        metrics: { host: "0.0.0.0", port: 15090 },
      });
      expect(container["image"]).to.equal("airlock:0.1.0");
      const mounts = container["volumeMounts"] as { mountPath: string }[];
      expect(mounts.some((m) => expectedCa?.startsWith(`${m.mountPath}/`) ?? false)).to.equal(
        expectedCa !== undefined,
      );
    }
  });

  it("image.tag overrides the operator's and the injected image together", async () => {
    const docs = parseDocs(
      await template(["--set", "image.repository=registry.example/airlock", "--set", "image.tag=1.2.3"]),
    );
    const container = operatorContainer(docs);
    expect(container["image"]).to.equal("registry.example/airlock:1.2.3");
    expect(container.args).to.include("--image=registry.example/airlock:1.2.3");
  });

  it("values.schema.json refuses an unknown key, at the top and nested, naming it", async () => {
    for (const [set, where] of [
      ["bogus=1", /at '': additional properties 'bogus' not allowed/],
      ["operator.bogus=1", /at '\/operator': additional properties 'bogus' not allowed/],
      [
        "monitoring.podMonitor.bogus=1",
        /at '\/monitoring\/podMonitor': additional properties 'bogus' not allowed/,
      ],
      ["operator.replicas=two", /at '\/operator\/replicas': got string, want integer/],
    ] as const) {
      const result = await helm(["template", "airlock", CHART, "--set", set]);
      expect(result.code, `--set ${set} was accepted`).not.to.equal(0);
      expect(result.stderr).to.match(where);
    }
  });

  it("values.schema.json: every object refuses unknown keys or types its values", () => {
    const schema = JSON.parse(readFileSync(join(CHART, "values.schema.json"), "utf8")) as unknown;
    expect(openObjects(schema, "")).to.deep.equal([]);
  });

  it("a restricted security context, probes, resources, 2 replicas, a PodDisruptionBudget", async () => {
    const docs = await rendered("default");
    const deployment = find(docs, "Deployment", "airlock-operator") as Doc & { spec: Json };
    expect(deployment.spec["replicas"]).to.equal(2);
    expect(operatorPodSpec(docs)["securityContext"]).to.deep.include({
      runAsNonRoot: true,
      runAsUser: 15000,
    });
    const container = operatorContainer(docs);
    expect(container["securityContext"]).to.deep.equal({
      runAsNonRoot: true,
      runAsUser: 15000,
      runAsGroup: 15000,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container["livenessProbe"]).to.deep.include({ httpGet: { path: "/healthz", port: "metrics" } });
    expect(container["readinessProbe"]).to.deep.include({ httpGet: { path: "/readyz", port: "metrics" } });
    expect(container["resources"]).to.have.keys("requests", "limits");
    const pdb = find(docs, "PodDisruptionBudget", "airlock-operator") as Doc & { spec: Json };
    expect(pdb.spec["minAvailable"]).to.equal(1);
  });

  it("the PodMonitor scrapes the port the injector names on the sidecar", async () => {
    const podMonitor = find(await rendered("monitoring"), "PodMonitor", "airlock-sidecars") as Doc & {
      spec: { podMetricsEndpoints: { port: string }[] };
    };
    const sidecar = sidecarContainer({ image: "airlock:test", bundlePublicKeys: "k" });
    const ports = sidecar["ports"] as { name: string; containerPort: number }[];
    const metricsPort = ports.find((p) => p.containerPort === 15090);
    expect(podMonitor.spec.podMetricsEndpoints.map((e) => e.port)).to.deep.equal([metricsPort?.name]);
  });

  it("every metric the PrometheusRule and the dashboard query is one the sidecar or operator exports", async () => {
    const exported = new Set<string>();
    for (const registry of [createSidecarMetrics().registry, createOperatorMetrics().registry])
      for (const metric of await registry.getMetricsAsJSON()) {
        exported.add(metric.name);
        if (registry.getSingleMetric(metric.name) instanceof Histogram)
          for (const suffix of ["_bucket", "_sum", "_count"]) exported.add(metric.name + suffix);
      }
    const docs = await rendered("monitoring");
    const rule = find(docs, "PrometheusRule", "airlock") as Doc & {
      spec: { groups: { rules: { alert: string; expr: string }[] }[] };
    };
    const alerts = rule.spec.groups.flatMap((g) => g.rules);
    expect(alerts.map((a) => a.alert)).to.have.members([
      "AirlockBlockedRequestsSpike",
      "AirlockSidecarsNotSynced",
      "AirlockCredentialsUnavailable",
      "AirlockOperatorNoLeader",
    ]);
    const dashboard = find(docs, "ConfigMap", "airlock-dashboard") as Doc & { data: Record<string, string> };
    expect(dashboard.metadata.labels).to.include({ grafana_dashboard: "1" });
    const panels = (
      JSON.parse(dashboard.data["airlock.json"] ?? "{}") as { panels: { targets?: { expr: string }[] }[] }
    ).panels;
    const exprs = [
      ...alerts.map((a) => a.expr),
      ...panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ];
    expect(exprs.length).to.be.greaterThan(10);
    for (const expr of exprs) {
      expect(metricNames(expr).length, expr).to.be.greaterThan(0);
      for (const name of metricNames(expr)) expect([...exported], `${name} in ${expr}`).to.include(name);
    }
  });

  describe("kubectl apply --dry-run=server of the render (control plane)", function () {
    let cp: ControlPlane;
    const namespace = `chart-${randomBytes(4).toString("hex")}`;

    before(async function () {
      this.timeout(CONTROL_PLANE_TIMEOUT_MS);
      cp = await sharedControlPlane();
      // As Helm does: crds/ before the templates.
      await installAirlockCrds(cp);
      for (const args of [
        ["create", "namespace", namespace],
        // The operator's pods must pass Pod Security "restricted"; warn makes kubectl say so for a Deployment.
        [
          "label",
          "namespace",
          namespace,
          "pod-security.kubernetes.io/enforce=restricted",
          "pod-security.kubernetes.io/warn=restricted",
        ],
      ]) {
        const res = await cp.kubectl(args);
        if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
      }
    });

    after(async () => {
      await cp.kubectl(["delete", "namespace", namespace, "--wait=false"]);
    });

    async function dryRun(args: string[], keep: (d: Doc) => boolean): Promise<CommandResult> {
      const render = await helm(["template", "airlock", CHART, "-n", namespace, "--include-crds", ...args]);
      expect(render.code, render.stderr).to.equal(0);
      const docs = parseDocs(render.stdout).filter(keep);
      const input = docs.map((d) => JSON.stringify(d)).join("\n---\n");
      const result = await cp.kubectl(["apply", "--dry-run=server", "-f", "-"], { input });
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stderr, "warnings (Pod Security?)").to.equal("");
      const lines = result.stdout.trim().split("\n");
      expect(lines, result.stdout).to.have.length(docs.length);
      for (const line of lines) expect(line).to.match(/ (created|configured|unchanged) \(server dry run\)$/);
      return result;
    }

    it("the default render (CRDs included) is accepted, with Pod Security restricted and no warning", async () => {
      const result = await dryRun([], () => true);
      expect(result.stdout).to.match(/^deployment\.apps\/airlock-operator created \(server dry run\)$/m);
      expect(result.stdout).to.match(
        /^customresourcedefinition\.apiextensions\.k8s\.io\/egresspolicies\.airlock\.dev /m,
      );
    });

    it("the monitoring + upstreamCA render without its monitoring.coreos.com objects (no such CRDs here)", async () => {
      const result = await dryRun(MONITORING, (d) => !d.apiVersion.startsWith("monitoring.coreos.com/"));
      expect(result.stdout).to.match(/^configmap\/airlock-dashboard created \(server dry run\)$/m);
    });
  });

  // Helm 4 (the bundled helm) installs with server-side apply, and `helm upgrade` follows the
  // release's method; --server-side=false is the client-side three-way merge that Helm 3 uses.
  for (const serverSide of [true, false] as const)
    describe(`helm install --server-side=${String(serverSide)}, upgrade, uninstall on the control plane: caBundle kept, nothing left`, function () {
      let cp: ControlPlane | undefined;
      const namespace = `chart-life-${randomBytes(4).toString("hex")}`;
      const release = "airlock";
      // The configurations route to a Service with no endpoints (no kubelet here): failing closed,
      // they would refuse pods in enabled namespaces and EgressPolicy writes in every other test file
      // while installed. No image is ever pulled: no controller-manager makes the Deployment's pods.
      const values = [
        ...["--set", "webhook.failurePolicy=Ignore"],
        ...["--set", "image.pullPolicy=Never", "--set", "operator.replicas=1"],
      ];
      const who = { namespace, names: webhookNames(namespace) };
      let objects: Doc[] = [];

      /** `kubectl get` reference of a rendered object: `kind.group/name`. */
      const ref = (d: Doc): string => {
        const group = d.apiVersion.includes("/") ? `.${d.apiVersion.split("/")[0] ?? ""}` : "";
        return `${d.kind.toLowerCase()}${group}/${d.metadata.name}`;
      };

      /** Which of `docs` exist in the cluster (namespaced ones in `namespace`), as `kind/name`. */
      async function existing(docs: Doc[]): Promise<string[]> {
        const res = await cp?.kubectl([
          "get",
          "-n",
          namespace,
          "--ignore-not-found",
          "-o",
          "name",
          ...docs.map(ref),
        ]);
        expect(res?.code, res?.stderr).to.equal(0);
        return (res?.stdout ?? "").split("\n").filter((l) => l !== "");
      }

      async function webhooks(kind: "mutating" | "validating"): Promise<Webhook[]> {
        const res = await cp?.kubectl(["get", WEBHOOK_KINDS[kind][0], WEBHOOK_KINDS[kind][1], "-o", "json"]);
        expect(res?.code, res?.stderr).to.equal(0);
        return (JSON.parse(res?.stdout ?? "{}") as { webhooks: Webhook[] }).webhooks;
      }

      /** The operator's own caBundle sync (bootstrap-webhooks.ts), as its leader runs it, with no builder. */
      async function operatorSync(): Promise<Record<string, string>> {
        const config = new KubeConfig();
        config.loadFromFile(cp?.kubeconfig ?? "");
        return syncWebhookConfigurations(config, cp?.caPem ?? "", undefined, who);
      }

      async function expectCaBundles(expected: string | undefined): Promise<void> {
        for (const kind of ["mutating", "validating"] as const)
          for (const hook of await webhooks(kind))
            expect(hook.clientConfig.caBundle, `${WEBHOOK_KINDS[kind][1]} ${hook.name}`).to.equal(expected);
      }

      before(async function () {
        this.timeout(CONTROL_PLANE_TIMEOUT_MS);
        cp = await sharedControlPlane();
        const render = await helm(["template", release, CHART, "-n", namespace, ...values]);
        expect(render.code, render.stderr).to.equal(0);
        objects = parseDocs(render.stdout);
      });

      after(async function () {
        // Runs whatever the tests did: a configuration left behind would reach every later test file.
        this.timeout(120_000);
        if (cp === undefined) return;
        const uninstall = await cp.helm(["uninstall", release, "-n", namespace, "--ignore-not-found"]);
        const names = Object.values(WEBHOOK_KINDS).map(([kind, name]) => `${kind.toLowerCase()}/${name}`);
        const deadline = Date.now() + 60_000;
        let left = names;
        while (left.length > 0 && Date.now() < deadline) {
          const res = await cp.kubectl(["get", "--ignore-not-found", "-o", "name", ...names]);
          left = res.code === 0 ? res.stdout.split("\n").filter((l) => l !== "") : names;
          if (left.length > 0) await new Promise((resolve) => setTimeout(resolve, 500));
        }
        await cp.kubectl(["delete", "namespace", namespace, "--wait=false"]);
        if (left.length > 0) {
          await cp.kubectl(["delete", "--ignore-not-found", ...names]);
          throw new Error(
            `after helm uninstall (${uninstall.stderr}) still present, deleted by hand: ${left.join(", ")}`,
          );
        }
      });

      it("renders five cluster-scoped objects and the rest in the release namespace", () => {
        const cluster = objects.filter((d) => d.metadata.namespace === undefined);
        expect(cluster.map((d) => `${d.kind}/${d.metadata.name}`)).to.have.members([
          "ClusterRole/airlock-operator",
          "ClusterRole/airlock-operator-namespace",
          "ClusterRoleBinding/airlock-operator",
          "MutatingWebhookConfiguration/airlock-injector",
          "ValidatingWebhookConfiguration/airlock-validator",
        ]);
        for (const d of objects.filter((o) => o.metadata.namespace !== undefined))
          expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).to.equal(namespace);
        expect(new Set(objects.map((d) => d.kind))).to.include.keys(
          "Deployment",
          "Service",
          "ServiceAccount",
          "RoleBinding",
          "NetworkPolicy",
          "PodDisruptionBudget",
        );
      });

      it("helm install creates every object, the configurations without caBundle; the operator patches it in", async function () {
        this.timeout(120_000);
        // --take-ownership: other test files on the shared control plane apply operator/rbac/clusterrole.yaml
        // (the same ClusterRoles) with kubectl; without a leftover it changes nothing.
        const install = await cp?.helm([
          ...["install", release, CHART, "-n", namespace, "--create-namespace", "--take-ownership"],
          `--server-side=${String(serverSide)}`,
          ...values,
        ]);
        expect(install?.code, install?.stderr).to.equal(0);
        expect(await existing(objects)).to.have.length(objects.length);
        await expectCaBundles(undefined);
        for (const kind of ["mutating", "validating"] as const)
          expect((await webhooks(kind)).map((h) => h["failurePolicy"])).to.satisfy((p: string[]) =>
            p.every((x) => x === "Ignore"),
          );
        // Helm's configurations are not the operator's (no managed-by airlock-operator) and route to
        // its Service: it patches their caBundle, and only that.
        expect(await operatorSync()).to.deep.equal({
          "airlock-injector": "caBundle patched",
          "airlock-validator": "caBundle patched",
        });
        await expectCaBundles(Buffer.from(cp?.caPem ?? "").toString("base64"));
      });

      it("helm upgrade with a changed value keeps the caBundle the operator set", async function () {
        this.timeout(120_000);
        const upgrade = await cp?.helm([
          ...["upgrade", release, CHART, "-n", namespace, ...values],
          ...["--set", "operator.resyncSeconds=45"],
        ]);
        expect(upgrade?.code, upgrade?.stderr).to.equal(0);
        const deployment = await cp?.kubectl([
          ...["get", "-n", namespace, "deployment", "airlock-operator"],
          ...["-o", "jsonpath={.spec.template.spec.containers[0].args}"],
        ]);
        expect(deployment?.stdout, "the upgrade was applied").to.include("--resync=45");
        await expectCaBundles(Buffer.from(cp?.caPem ?? "").toString("base64"));
        expect(await operatorSync()).to.deep.equal({
          "airlock-injector": "unchanged",
          "airlock-validator": "unchanged",
        });
        // Which path the upgrade took: helm's field manager applies (server-side) or updates.
        const managers = await cp?.kubectl([
          ...["get", "mutatingwebhookconfiguration", "airlock-injector", "--show-managed-fields"],
          ...["-o", "jsonpath={range .metadata.managedFields[*]}{.manager}:{.operation}{'\\n'}{end}"],
        ]);
        expect(managers?.stdout.split("\n")).to.include(serverSide ? "helm:Apply" : "helm:Update");
      });

      it("helm uninstall leaves no object of the release, cluster-scoped or namespaced", async function () {
        this.timeout(120_000);
        const uninstall = await cp?.helm(["uninstall", release, "-n", namespace]);
        expect(uninstall?.code, uninstall?.stderr).to.equal(0);
        expect(await existing(objects)).to.deep.equal([]);
        // Nor anything else labelled with the release, nor Helm's release records.
        const kinds = [...new Set(objects.map((d) => ref(d).split("/")[0] ?? ""))].join(",");
        for (const selector of [`app.kubernetes.io/instance=${release}`, `owner=helm,name=${release}`]) {
          const left = await cp?.kubectl([
            ...["get", `${kinds},secrets,configmaps`, "-n", namespace],
            ...["-l", selector, "-o", "name"],
          ]);
          expect(left?.code, left?.stderr).to.equal(0);
          expect(left?.stdout.trim(), selector).to.equal("");
        }
      });
    });
});
