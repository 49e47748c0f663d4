// The operator end to end (control plane): a real kube-apiserver, pods created with kubectl (no
// kubelet: their status is patched to Running with a loopback pod IP), real sidecars in-process on
// those IPs with the operator's public key, and the operator (Lease + reconciler) in-process with
// the admin kubeconfig. Asserts what results: enforcement through the sidecar, .status, RBAC.
import { expect } from "chai";
import { KubeConfig } from "@kubernetes/client-node";
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { parseCidr } from "../sidecar/net/address.ts";
import { createAuditLog } from "../sidecar/observe/audit.ts";
import { StaticSecrets } from "../sidecar/proxy/secrets.ts";
import { startSidecar, type RunningSidecar } from "../sidecar/runtime.ts";
import { INJECTED_ANNOTATION } from "../operator/kube/cluster.ts";
import { runOperator, type RunningOperator } from "../operator/run.ts";
import {
  CONTROL_PLANE_TIMEOUT_MS,
  installAirlockCrds,
  sharedControlPlane,
  type ControlPlane,
} from "./helpers/control-plane.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { connect, parseResponse, readUntil } from "./helpers/raw.ts";

const POD_IPS = ["127.0.0.2", "127.0.0.3"];

describe("operator (control plane): policies reach sidecars, status and RBAC follow", function () {
  this.timeout(60_000); // polls for up to 20 s; the repo default is 20 s per test
  let cp: ControlPlane;
  let upstream: EchoUpstream;
  let operator: RunningOperator;
  const sidecars: RunningSidecar[] = [];
  const ns = `airlock-op-${randomBytes(3).toString("hex")}`;
  const keys = generateKeyPairSync("ed25519");

  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const res = await cp.kubectl(args, input === undefined ? {} : { input });
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    return res.stdout;
  };
  const apply = (obj: unknown): Promise<string> => kubectl(["apply", "-f", "-"], JSON.stringify(obj));
  const policy = (name: string, egress: unknown[]) => ({
    apiVersion: "airlock.dev/v1alpha1",
    kind: "EgressPolicy",
    metadata: { name, namespace: ns },
    spec: { podSelector: { matchLabels: { app: "agent" } }, egress },
  });
  const eventually = async <T>(probe: () => Promise<T>, want: unknown, ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms;
    let last: T | undefined;
    while (Date.now() < deadline) {
      last = await probe();
      if (JSON.stringify(last) === JSON.stringify(want)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(last).to.deep.equal(want);
  };
  const request = async (sidecar: RunningSidecar | undefined, host: string) => {
    if (sidecar === undefined) throw new Error("no sidecar");
    const before = upstream.received.length;
    const res = await curl([
      "-x",
      `http://${sidecar.proxyAddress.host}:${sidecar.proxyAddress.port}`,
      "--cacert",
      pemBundle(sidecar.ca.certificatePem),
      `https://${host}:${upstream.port}/x`,
    ]);
    const sent =
      upstream.received.length > before ? upstream.received.at(-1)?.headers["x-api-key"] : undefined;
    // A refused CONNECT carries the reason in the CONNECT response, which curl does not print.
    const body = res.status === 403 && res.body === "" ? await refusedConnect(sidecar, host) : res.body;
    const reason = res.status === 403 ? (JSON.parse(body) as { reason: string }).reason : undefined;
    return {
      status: res.status,
      ...(reason ? { reason } : {}),
      ...(typeof sent === "string" ? { sent } : {}),
    };
  };
  const refusedConnect = async (sidecar: RunningSidecar, host: string): Promise<string> => {
    const socket = await connect(sidecar.proxyAddress.port, sidecar.proxyAddress.host);
    socket.write(`CONNECT ${host}:${upstream.port} HTTP/1.1\r\nhost: ${host}:${upstream.port}\r\n\r\n`);
    const text = await readUntil(socket, () => false);
    socket.destroy();
    return parseResponse(text).body;
  };
  const ready = async (name: string) => {
    const obj = JSON.parse(await kubectl(["-n", ns, "get", "egresspolicy", name, "-o", "json"])) as {
      status?: {
        syncedPods?: number;
        conditions?: { type: string; status: string; reason: string; message: string }[];
      };
    };
    const c = obj.status?.conditions?.find((x) => x.type === "Ready");
    return {
      status: c?.status,
      reason: c?.reason,
      syncedPods: obj.status?.syncedPods,
      message: c?.message ?? "",
    };
  };
  const readyOf = async (name: string) => {
    const { status, reason, syncedPods } = await ready(name);
    return { status, reason, syncedPods };
  };

  // Pod `pod` at `ip` (Running, injected) with a sidecar there trusting `publicKey`; returns its control port.
  const addPod = async (pod: string, ip: string, publicKey: KeyObject, port: number): Promise<number> => {
    const allow = parseCidr("127.0.0.1/32");
    if (!allow.ok) throw new Error(allow.message);
    const sidecar = await startSidecar({
      listen: { host: ip, port: 0 },
      metrics: { host: ip, port: 0 },
      control: { listen: { host: ip, port }, publicKey },
      secrets: new StaticSecrets([
        { namespace: ns, name: "api-token", data: new Map([["token", Buffer.from("s3cret")]]) },
      ]),
      log: createAuditLog({}, { level: "silent" }),
      pins: new Map([
        ["api.example.test", ["127.0.0.1"]],
        ["other.example.test", ["127.0.0.1"]],
      ]),
      allowAddresses: [allow.value],
      upstreamCa: [upstream.caPem],
    });
    sidecars.push(sidecar);
    await apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: pod,
        namespace: ns,
        labels: { app: "agent" },
        annotations: { [INJECTED_ANNOTATION]: "{}" },
      },
      spec: {
        serviceAccountName: "agent",
        containers: [{ name: "agent", image: "example.invalid/agent" }],
      },
    });
    await kubectl([
      "-n",
      ns,
      "patch",
      "pod",
      pod,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { phase: "Running", podIP: ip, podIPs: [{ ip }] } }),
    ]);
    return sidecar.controlAddress?.port ?? 0;
  };

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await sharedControlPlane();
    await installAirlockCrds(cp);
    await kubectl(["create", "namespace", ns]);
    await kubectl(["-n", ns, "create", "serviceaccount", "agent"]);
    upstream = await startEchoUpstream({ tls: true });
    let port = 0;
    for (const [i, ip] of POD_IPS.entries()) port = await addPod(`agent-${i}`, ip, keys.publicKey, port);
    const config = new KubeConfig();
    config.loadFromFile(cp.kubeconfig);
    operator = runOperator({
      config,
      privateKey: keys.privateKey,
      leaseNamespace: ns,
      identity: "operator-0",
      controlPort: port,
      resyncMs: 2000,
    });
  });
  after(async function () {
    await operator.stop();
    await Promise.all(sidecars.map((s) => s.close()));
    await upstream.close();
  });

  it("a pod no policy selects gets the empty bundle: everything blocks with NoRuleMatched", async function () {
    await eventually(() => request(sidecars[0], "api.example.test"), {
      status: 403,
      reason: "NoRuleMatched",
    });
    expect(operator.leading).to.equal(true);
  });

  it("an EgressPolicy with a Credential is enforced on every selected sidecar and reports Synced", async function () {
    await kubectl(["-n", ns, "create", "secret", "generic", "api-token", "--from-literal=token=s3cret"]);
    await apply({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "Credential",
      metadata: { name: "api", namespace: ns },
      spec: { secretRef: { name: "api-token", key: "token" }, injection: { header: { name: "X-Api-Key" } } },
    });
    await apply(
      policy("agent", [
        { name: "api", hosts: ["api.example.test"], ports: [upstream.port], credential: "api" },
      ]),
    );
    for (const sidecar of sidecars)
      await eventually(() => request(sidecar, "api.example.test"), { status: 200, sent: "s3cret" });
    await eventually(() => readyOf("agent"), { status: "True", reason: "Synced", syncedPods: 2 });
  });

  it("an unchanged world writes nothing: resourceVersions stay put across resyncs", async function () {
    const versions = async () =>
      (
        await kubectl([
          "-n",
          ns,
          "get",
          "egresspolicies,credentials,roles,rolebindings",
          "-o",
          "jsonpath={..resourceVersion}",
        ])
      )
        .split(/\s+/)
        .filter(Boolean)
        .sort();
    const before = await versions();
    expect(before).to.have.length(4); // policy, credential, Role, RoleBinding
    await new Promise((resolve) => setTimeout(resolve, 4500)); // two resyncs
    expect(await versions()).to.deep.equal(before);
  });

  it("the pods' ServiceAccount may get exactly the referenced Secret, and not list Secrets", async function () {
    const can = async (verb: string, resource: string): Promise<string> =>
      (
        await cp.kubectl([
          "auth",
          "can-i",
          verb,
          resource,
          "-n",
          ns,
          `--as=system:serviceaccount:${ns}:agent`,
        ])
      ).stdout.trim();
    await eventually(() => can("get", "secrets/api-token"), "yes");
    expect(await can("watch", "secrets/api-token")).to.equal("yes");
    expect(await can("list", "secrets")).to.equal("no");
    expect(await can("get", "secrets/other")).to.equal("no");
  });

  it("an invalid policy shows InvalidSpec with its field path and changes nothing enforced", async function () {
    await apply(
      policy("broken", [
        { name: "x", hosts: ["other.example.test"], ports: [upstream.port], paths: ["/a/***"] },
      ]),
    );
    await eventually(
      async () => {
        const r = await ready("broken");
        return { status: r.status, reason: r.reason, located: r.message.includes("spec.egress[0].paths[0]") };
      },
      { status: "False", reason: "InvalidSpec", located: true },
    );
    await eventually(() => readyOf("agent"), { status: "False", reason: "SyncPending", syncedPods: 0 });
    expect(await request(sidecars[0], "api.example.test")).to.deep.equal({ status: 200, sent: "s3cret" });
    expect(await request(sidecars[0], "other.example.test")).to.deep.equal({
      status: 403,
      reason: "NoRuleMatched",
    });
  });

  it("editing the policy (once the broken one is gone) changes what is enforced: allow, then block", async function () {
    await kubectl(["-n", ns, "delete", "egresspolicy", "broken"]);
    await apply(policy("agent", [{ name: "other", hosts: ["other.example.test"], ports: [upstream.port] }]));
    for (const sidecar of sidecars) {
      await eventually(() => request(sidecar, "api.example.test"), { status: 403, reason: "NoRuleMatched" });
      expect(await request(sidecar, "other.example.test")).to.deep.equal({ status: 200 });
    }
    await eventually(() => readyOf("agent"), { status: "True", reason: "Synced", syncedPods: 2 });
  });

  it("the Role is removed once no bundle names a Secret", async function () {
    const roles = async () =>
      (await kubectl(["-n", ns, "get", "roles", "-l", "airlock.dev/rbac", "-o", "name"])).trim();
    await eventually(roles, "");
  });

  it("a sidecar that refuses the bundle (another key) shows on the policy's status with its reason", async function () {
    await apply(
      policy("agent", [
        { name: "api", hosts: ["api.example.test"], ports: [upstream.port], credential: "api" },
      ]),
    );
    await eventually(() => readyOf("agent"), { status: "True", reason: "Synced", syncedPods: 2 });
    const port = sidecars[0]?.controlAddress?.port ?? 0;
    await addPod("agent-rogue", "127.0.0.4", generateKeyPairSync("ed25519").publicKey, port);
    await eventually(
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
    await kubectl(["-n", ns, "delete", "pod", "agent-rogue", "--wait=false"]);
  });
});
