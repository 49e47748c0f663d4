// The operator's Kubernetes seam (operator/kube/cluster.ts) against a real kube-apiserver: what it
// reads is what kubectl created, what it writes is what kubectl then sees.
import { expect } from "chai";
import { KubeConfig } from "@kubernetes/client-node";
import type { RequestOptions } from "node:https";
import { randomBytes } from "node:crypto";
import { desiredRbac } from "../operator/core/rbac.ts";
import { INJECTED_ANNOTATION, KubeCluster } from "../operator/kube/cluster.ts";
import { watchMetadata, type MetadataObject } from "../operator/kube/metadata-watch.ts";
import {
  CONTROL_PLANE_TIMEOUT_MS,
  installAirlockCrds,
  serviceAccountCan,
  sharedControlPlane,
  tokenKubeConfig,
  type ControlPlane,
} from "./helpers/control-plane.ts";
import { eventually } from "./helpers/eventually.ts";

/** A KubeConfig that counts the watches started with it (each one's request options). */
class CountingKubeConfig extends KubeConfig {
  watchesStarted = 0;
  override async applyToHTTPSOptions(options: RequestOptions): Promise<void> {
    this.watchesStarted++;
    await super.applyToHTTPSOptions(options);
  }
}

describe("operator cluster seam (control plane): reads and writes through client-node", function () {
  this.timeout(60_000); // polls for up to 20 s; the repo default is 20 s per test
  let cp: ControlPlane;
  let cluster: KubeCluster;
  const ns = `airlock-op-cluster-${randomBytes(3).toString("hex")}`;
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const res = await cp.kubectl(args, input === undefined ? {} : { input });
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    return res.stdout;
  };

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await sharedControlPlane();
    await installAirlockCrds(cp);
    await kubectl(["create", "namespace", ns]);
    await kubectl(["-n", ns, "create", "serviceaccount", "agent"]);
    const config = new KubeConfig();
    config.loadFromFile(cp.kubeconfig);
    cluster = new KubeCluster(config);
  });

  it("reads policies, credentials, secret keys (no values) and pods in the core's shapes", async function () {
    await kubectl([
      "-n",
      ns,
      "create",
      "secret",
      "generic",
      "api-token",
      "--from-literal=token=v",
      "--from-literal=b=w",
    ]);
    // No Credential names this one: the operator never reads it.
    await kubectl(["-n", ns, "create", "secret", "generic", "unrelated", "--from-literal=k=v"]);
    await kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          {
            apiVersion: "airlock.dev/v1alpha1",
            kind: "EgressPolicy",
            metadata: { name: "p", namespace: ns },
            spec: { podSelector: {}, egress: [{ name: "api", hosts: ["api.example.test"], ports: [443] }] },
          },
          {
            apiVersion: "airlock.dev/v1alpha1",
            kind: "Credential",
            metadata: { name: "c", namespace: ns },
            spec: {
              secretRef: { name: "api-token", key: "token" },
              injection: { header: { name: "X-Api-Key" } },
            },
          },
          {
            apiVersion: "v1",
            kind: "Pod",
            metadata: {
              name: "agent",
              namespace: ns,
              labels: { app: "a" },
              annotations: { [INJECTED_ANNOTATION]: "{}" },
            },
            spec: { serviceAccountName: "agent", containers: [{ name: "c", image: "example.invalid/x" }] },
          },
        ],
      }),
    );
    await kubectl([
      "-n",
      ns,
      "patch",
      "pod",
      "agent",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { phase: "Running", podIP: "127.0.0.9", podIPs: [{ ip: "127.0.0.9" }] } }),
    ]);
    const read = await cluster.read(ns);
    expect(read.policies.map((p) => (p as { kind: string }).kind)).to.deep.equal(["EgressPolicy"]);
    expect(read.credentials.map((p) => (p as { kind: string }).kind)).to.deep.equal(["Credential"]);
    expect(read.secrets).to.deep.equal([{ name: "api-token", keys: ["b", "token"] }]); // not "unrelated"
    expect(read.pods.map(({ uid: _uid, ...rest }) => rest)).to.deep.equal([
      {
        name: "agent",
        labels: { app: "a" },
        serviceAccount: "agent",
        phase: "Running",
        podIP: "127.0.0.9",
        injected: true,
        deleting: false,
      },
    ]);
    expect(await cluster.namespaces()).to.include(ns);
  });

  it("watches metadata only: Secret events carry no data; a change in the namespace is reported; abort ends it", async function () {
    const config = new KubeConfig();
    config.loadFromFile(cp.kubeconfig);
    const events: { type: string; object: MetadataObject }[] = [];
    let ended = 0;
    let endedWith: Error | undefined;
    const watch = await watchMetadata(
      config,
      `/api/v1/namespaces/${ns}/secrets`,
      (type, object) => events.push({ type, object }),
      (err) => {
        ended++;
        endedWith = err;
      },
    );
    const waitFor = async (check: () => boolean, what: string): Promise<void> => {
      await eventually(() => expect(check()).to.equal(true), { timeoutMs: 10_000, intervalMs: 50, what });
    };
    const named = (name: string) => () => events.some((e) => e.object.metadata?.name === name);
    await waitFor(named("api-token"), "the ADDED event of api-token");
    await kubectl(["-n", ns, "create", "secret", "generic", "watched", "--from-literal=k=secret-value"]);
    await waitFor(named("watched"), "the ADDED event of watched");
    watch.abort();
    await waitFor(() => ended > 0, "the aborted watch ends");
    expect(events.map((e) => `${e.type} ${e.object.metadata?.name ?? ""}`)).to.include.members([
      "ADDED api-token",
      "ADDED watched",
    ]);
    for (const { object } of events) {
      expect(object.kind).to.equal("PartialObjectMetadata");
      expect(object).to.not.have.property("data");
      expect(object.metadata?.namespace).to.equal(ns);
    }
    expect(JSON.stringify(events)).to.not.include(Buffer.from("secret-value").toString("base64"));
    expect(ended).to.equal(1);
    expect(endedWith).to.equal(undefined);
  });

  it("a watch the API server refuses is reported once per kind and error, and retried until allowed", async function () {
    // The pods' ServiceAccount has no business watching anything: every watch gets 403.
    const config = new CountingKubeConfig();
    config.loadFromString(tokenKubeConfig(cp, await cp.serviceAccountToken(ns, "agent")).exportConfig());
    const reported: string[] = [];
    const seen = new Set<string>();
    const stop = new KubeCluster(config).watch(
      (namespace) => seen.add(namespace),
      (path, err) => reported.push(`${path} ${err.message}`),
    );
    try {
      // Six kinds, 24 watches started: every start after a kind's first is a retry, made only once
      // the refusal before it was handled, so refusals of retries have been handled many times.
      await eventually(() => expect(config.watchesStarted).to.be.at.least(6 * 4), {
        timeoutMs: 15_000,
        intervalMs: 50,
        what: "three rounds of refused watches retried",
      });
      expect(reported).to.have.length(6); // six kinds, each told once
      expect(reported).to.include("/api/v1/secrets watch /api/v1/secrets: HTTP 403");
      expect([...seen]).to.deep.equal([]);
      // Allowed to watch pods now: the next retry succeeds and reports this namespace's pod.
      const grant = `${ns}-watch-pods`;
      await kubectl(["create", "clusterrole", grant, "--verb=watch", "--resource=pods"]);
      await kubectl([
        "create",
        "clusterrolebinding",
        grant,
        `--clusterrole=${grant}`,
        `--serviceaccount=${ns}:agent`,
      ]);
      await eventually(() => expect([...seen]).to.include(ns), {
        timeoutMs: 10_000,
        intervalMs: 100,
        what: "the retried pods watch reports this namespace",
      });
      await kubectl(["delete", "clusterrolebinding", grant]);
      await kubectl(["delete", "clusterrole", grant]);
    } finally {
      stop();
    }
  });

  it("merge-patches .status through the status subresource, leaving spec alone", async function () {
    const status = {
      observedGeneration: 1,
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Synced",
          message: "m",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    };
    await cluster.patchStatus("EgressPolicy", ns, "p", status);
    const got = JSON.parse(await kubectl(["-n", ns, "get", "egresspolicy", "p", "-o", "json"])) as {
      status: unknown;
      spec: { egress: unknown[] };
    };
    expect(got.status).to.deep.equal(status);
    expect(got.spec.egress).to.have.length(1);
    await cluster.patchStatus("Credential", ns, "missing", status); // ignored
  });

  it("creates, replaces and deletes the managed Role and RoleBinding", async function () {
    const read = await cluster.read(ns);
    const plan = (secrets: string[]) =>
      desiredRbac({
        namespace: ns,
        pods: read.pods,
        plans: read.pods.map((p) => ({
          name: p.name,
          uid: p.uid,
          serviceAccount: "agent",
          identity: [],
          heldBy: [],
          hash: "h",
          reported: "h",
          sync: "Synced" as const,
          detail: "",
        })),
        bundles: new Map([
          [
            "h",
            { credentials: Object.fromEntries(secrets.map((s) => [s, { secretRef: { name: s } }])) } as never,
          ],
        ]),
        grants: [],
      });
    const can = (verb: string, resource: string) =>
      serviceAccountCan(cp, ns, "agent", verb, resource, "-n", ns);

    const first = plan(["api-token"]);
    for (const r of first.roles) await cluster.putRole(r);
    for (const b of first.roleBindings) await cluster.putRoleBinding(b);
    expect(await can("get", "secrets/api-token")).to.equal("yes");
    expect(await can("get", "secrets/other")).to.equal("no");
    expect(await can("list", "secrets")).to.equal("no");

    const second = plan(["other"]);
    for (const r of second.roles) await cluster.putRole(r);
    for (const b of second.roleBindings) await cluster.putRoleBinding(b);
    expect(await can("get", "secrets/other")).to.equal("yes");
    expect(await can("get", "secrets/api-token")).to.equal("no");
    expect((await cluster.read(ns)).roles).to.have.length(1);

    const name = second.roles[0]?.metadata.name ?? "";
    await cluster.deleteRbac("RoleBinding", ns, name);
    await cluster.deleteRbac("Role", ns, name);
    await cluster.deleteRbac("Role", ns, name); // already gone: ignored
    const after = await cluster.read(ns);
    expect([after.roles, after.roleBindings]).to.deep.equal([[], []]);
    expect(await can("get", "secrets/other")).to.equal("no");
  });
});
