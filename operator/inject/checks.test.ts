import { expect } from "chai";
import { STATUS_ANNOTATION } from "../../sidecar/constants.ts";
import { checkEphemeralContainers, checkPodUpdate, injectPod } from "./inject.ts";
import { isObject, listOf, objectOr, type JsonObject } from "./json.ts";
import { injectManifest, podPathOf } from "./manifests.ts";
import { FIXTURE_CONFIG } from "./test-fixtures.ts";

function injected(): JsonObject {
  const result = injectPod(
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p" },
      spec: { containers: [{ name: "agent", image: "a" }] },
    },
    FIXTURE_CONFIG,
  );
  if (!result.ok) throw new Error("refused");
  return result.pod;
}

function edit(change: (pod: JsonObject, spec: JsonObject) => void): JsonObject {
  const pod = injected();
  const spec = objectOr(pod["spec"]) ?? {};
  change(pod, spec);
  return pod;
}

const item = (list: unknown, i: number): JsonObject => {
  const found = listOf(list)[i];
  if (!isObject(found)) throw new Error(`no item ${i}`);
  return found;
};

describe("checkPodUpdate", () => {
  const cases: { name: string; change: (pod: JsonObject, spec: JsonObject) => void; paths: string[] }[] = [
    { name: "no change", change: () => undefined, paths: [] },
    {
      name: "a new agent image is the pod's own business",
      change: (_, spec) => (item(spec["containers"], 0)["image"] = "a:2"),
      paths: [],
    },
    {
      name: "kubectl set image on the sidecar",
      change: (_, spec) => (item(spec["initContainers"], 1)["image"] = "evil/proxy"),
      paths: ["spec.initContainers[1].image"],
    },
    {
      name: "a changed init container",
      change: (_, spec) => (item(spec["initContainers"], 0)["args"] = ["init", "--no-ipv6"]),
      paths: ["spec.initContainers[0].args"],
    },
    {
      name: "the sidecar removed",
      change: (_, spec) => (spec["initContainers"] = listOf(spec["initContainers"]).slice(0, 1)),
      paths: ["spec.initContainers[1]"],
    },
    {
      name: "the token volume changed",
      change: (_, spec) => (item(spec["volumes"], 1)["emptyDir"] = {}),
      paths: ["spec.volumes[1].emptyDir"],
    },
    {
      name: "the status annotation removed",
      change: (pod) =>
        ((objectOr(objectOr(pod["metadata"])?.["annotations"]) ?? {})[STATUS_ANNOTATION] = undefined),
      paths: [`metadata.annotations["${STATUS_ANNOTATION}"]`],
    },
  ];
  for (const c of cases)
    it(`${c.name}: ${c.paths.length === 0 ? "allowed" : c.paths.join(", ")}`, () => {
      const errors = checkPodUpdate(injected(), edit(c.change));
      expect(errors.map((e) => e.path)).to.deep.equal(c.paths);
      for (const e of errors) expect(e.message).to.match(/; delete the pod and create it again$/);
    });
});

describe("checkEphemeralContainers", () => {
  const cases: { name: string; ephemeral: JsonObject; paths: string[] }[] = [
    {
      name: "a plain debug container",
      ephemeral: { name: "debug", image: "busybox", targetContainerName: "agent" },
      paths: [],
    },
    {
      name: "mounts the token",
      ephemeral: {
        name: "debug",
        image: "busybox",
        volumeMounts: [{ name: "airlock-token", mountPath: "/t" }],
      },
      paths: ["spec.ephemeralContainers[0].volumeMounts[0].name"],
    },
    {
      name: "adds NET_ADMIN",
      ephemeral: {
        name: "debug",
        image: "busybox",
        securityContext: { capabilities: { add: ["NET_ADMIN"] } },
      },
      paths: ["spec.ephemeralContainers[0].securityContext.capabilities.add[0]"],
    },
    {
      name: "runs as the sidecar's UID",
      ephemeral: { name: "debug", image: "busybox", securityContext: { runAsUser: 15000 } },
      paths: ["spec.ephemeralContainers[0].securityContext.runAsUser"],
    },
    {
      name: "targets the sidecar's processes",
      ephemeral: { name: "debug", image: "busybox", targetContainerName: "airlock-sidecar" },
      paths: ["spec.ephemeralContainers[0].targetContainerName"],
    },
  ];
  for (const c of cases)
    it(`${c.name}: ${c.paths.length === 0 ? "allowed" : c.paths.join(", ")}`, () => {
      const pod = edit((_, spec) => (spec["ephemeralContainers"] = [c.ephemeral]));
      expect(checkEphemeralContainers(pod).map((e) => e.path)).to.deep.equal(c.paths);
    });
});

describe("injectManifest", () => {
  const cases: { apiVersion: string; kind: string; path: string[] | undefined }[] = [
    { apiVersion: "v1", kind: "Pod", path: [] },
    { apiVersion: "apps/v1", kind: "Deployment", path: ["spec", "template"] },
    { apiVersion: "apps/v1", kind: "StatefulSet", path: ["spec", "template"] },
    { apiVersion: "apps/v1", kind: "DaemonSet", path: ["spec", "template"] },
    { apiVersion: "apps/v1", kind: "ReplicaSet", path: ["spec", "template"] },
    { apiVersion: "v1", kind: "ReplicationController", path: ["spec", "template"] },
    { apiVersion: "batch/v1", kind: "Job", path: ["spec", "template"] },
    { apiVersion: "batch/v1", kind: "CronJob", path: ["spec", "jobTemplate", "spec", "template"] },
    { apiVersion: "v1", kind: "Service", path: undefined },
    { apiVersion: "example.com/v1", kind: "Deployment", path: undefined },
  ];
  for (const c of cases)
    it(`${c.apiVersion} ${c.kind}: ${c.path === undefined ? "passes through" : `pod at "${c.path.join(".")}"`}`, () => {
      expect(podPathOf({ apiVersion: c.apiVersion, kind: c.kind })).to.deep.equal(c.path);
    });

  it("a workload without a template is refused at the template's path", () => {
    expect(
      injectManifest({ apiVersion: "apps/v1", kind: "Deployment", spec: {} }, FIXTURE_CONFIG),
    ).to.deep.equal({
      ok: false,
      errors: [{ path: "spec.template", message: "expected an object; give the manifest a pod template" }],
    });
  });

  it("a List collects the refusals of every item at items[N]", () => {
    const bad = { apiVersion: "v1", kind: "Pod", spec: { hostPID: true, containers: [] } };
    const result = injectManifest({ apiVersion: "v1", kind: "List", items: [bad, bad] }, FIXTURE_CONFIG);
    expect(result.ok ? [] : result.errors.map((e) => e.path)).to.deep.equal([
      "items[0].spec.hostPID",
      "items[1].spec.hostPID",
    ]);
  });
});
