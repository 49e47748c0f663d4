// Leader election on a real Lease (control plane): one of two replicas leads; when it stops it
// releases the Lease and the other takes over; a leader that goes silent is replaced after expiry.
import { expect } from "chai";
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { LeaderElector } from "../operator/kube/leader.ts";
import { CONTROL_PLANE_TIMEOUT_MS, sharedControlPlane, type ControlPlane } from "./helpers/control-plane.ts";
import { eventually } from "./helpers/eventually.ts";

/** A KubeConfig that records each API request it authenticates: method, URL and when (ms). */
class RecordingKubeConfig extends KubeConfig {
  readonly requests: { method: string; url: string; at: number }[] = [];
  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    this.requests.push({ method: context.getHttpMethod(), url: context.getUrl(), at: performance.now() });
    await super.applySecurityAuthentication(context);
  }
}

describe("operator leader election (control plane): one replica leads at a time", function () {
  this.timeout(60_000); // polls for up to 20 s; the repo default is 20 s per test
  let cp: ControlPlane;
  let config: KubeConfig;
  const ns = `airlock-op-lease-${randomBytes(3).toString("hex")}`;

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await sharedControlPlane();
    const res = await cp.kubectl(["create", "namespace", ns]);
    if (res.code !== 0) throw new Error(res.stderr);
    config = new KubeConfig();
    config.loadFromFile(cp.kubeconfig);
  });

  const until = async (check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> => {
    await eventually(() => expect(check()).to.equal(true), { timeoutMs, intervalMs: 50, what });
  };

  const elector = (identity: string, events: string[], name = "airlock-operator", kubeConfig = config) =>
    new LeaderElector({
      config: kubeConfig,
      namespace: ns,
      name,
      identity,
      leaseSeconds: 2,
      retryMs: 200,
      onStartedLeading: () => events.push(`${identity} started`),
      onStoppedLeading: () => events.push(`${identity} stopped`),
    });

  it("the first replica leads, the second waits, and takes over when the first releases", async function () {
    const events: string[] = [];
    const a = elector("a", events);
    a.start();
    await until(() => a.leading, "a leads");
    // b's requests are recorded: the proof that it looked at the Lease for longer than the lease.
    const bConfig = new RecordingKubeConfig();
    bConfig.loadFromFile(cp.kubeconfig);
    const b = elector("b", events, "airlock-operator", bConfig);
    b.start();
    // Wait until b has read the Lease twice more than 2.5 s (the lease is 2 s) after its first
    // read, so one full attempt there is done: had a not renewed, b would have taken the Lease.
    const reads = () => bConfig.requests.filter((r) => r.method === "GET" && r.url.includes("/leases/"));
    await eventually(
      () => {
        const first = reads()[0]?.at ?? Infinity;
        expect(reads().filter((r) => r.at - first > 2500)).to.have.length.of.at.least(2);
      },
      { timeoutMs: 10_000, intervalMs: 50, what: "b reads the Lease for longer than the lease" },
    );
    expect(b.leading).to.equal(false);
    expect(bConfig.requests.filter((r) => r.method !== "GET")).to.deep.equal([]); // b never wrote it
    await a.stop();
    await until(() => b.leading, "b takes over");
    await b.stop();
    expect(events).to.deep.equal(["a started", "a stopped", "b started", "b stopped"]);
  });

  it("a Lease held by a replica that went silent is taken over once it expires", async function () {
    const events: string[] = [];
    const lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "silent", namespace: ns },
      spec: {
        holderIdentity: "crashed",
        leaseDurationSeconds: 2,
        renewTime: new Date().toISOString().replace("Z", "000Z"),
      },
    };
    const res = await cp.kubectl(["apply", "-f", "-"], { input: JSON.stringify(lease) });
    if (res.code !== 0) throw new Error(res.stderr);
    const b = elector("b", events, "silent");
    const started = Date.now();
    b.start();
    await until(() => b.leading, "b takes the expired Lease", 8000);
    expect(Date.now() - started).to.be.at.least(1900);
    await b.stop();
    expect(events).to.deep.equal(["b started", "b stopped"]);
  });
});
