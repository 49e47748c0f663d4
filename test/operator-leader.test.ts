// Leader election on a real Lease (control plane): one of two replicas leads; when it stops it
// releases the Lease and the other takes over; a leader that goes silent is replaced after expiry.
import { expect } from "chai";
import { KubeConfig } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { LeaderElector } from "../operator/kube/leader.ts";
import { CONTROL_PLANE_TIMEOUT_MS, sharedControlPlane, type ControlPlane } from "./helpers/control-plane.ts";

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

  const until = async (check: () => boolean, ms = 10_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(check()).to.equal(true);
  };

  const elector = (identity: string, events: string[], name = "airlock-operator") =>
    new LeaderElector({
      config,
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
    await until(() => a.leading);
    const b = elector("b", events);
    b.start();
    await new Promise((resolve) => setTimeout(resolve, 2500)); // longer than the lease: a renews
    expect(b.leading).to.equal(false);
    await a.stop();
    await until(() => b.leading);
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
    await until(() => b.leading, 8000);
    expect(Date.now() - started).to.be.at.least(1900);
    await b.stop();
    expect(events).to.deep.equal(["b started", "b stopped"]);
  });
});
