import { expect } from "chai";
import { injectPod } from "./inject.ts";
import { listOf, nameOf, objectOr, type JsonObject } from "./json.ts";
import { FIXTURE_CONFIG } from "./test-fixtures.ts";
import { isApiServerTokenVolume, withoutApiServerToken } from "./token-volume.ts";
import type { PodObject } from "./types.ts";

/** The volume and mount the API server's ServiceAccount admission plugin adds to a pod. */
const API_SERVER_VOLUME = {
  name: "kube-api-access-x7k2p",
  projected: {
    defaultMode: 420,
    sources: [
      { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
      { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
      {
        downwardAPI: {
          items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
        },
      },
    ],
  },
};
const API_SERVER_MOUNT = {
  name: "kube-api-access-x7k2p",
  mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
  readOnly: true,
};

function admitted(): PodObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "agent" },
    spec: {
      serviceAccountName: "default",
      containers: [
        {
          name: "agent",
          image: "agent",
          volumeMounts: [API_SERVER_MOUNT, { name: "data", mountPath: "/d" }],
        },
      ],
      initContainers: [{ name: "setup", image: "setup", volumeMounts: [API_SERVER_MOUNT] }],
      volumes: [{ name: "data", emptyDir: {} }, API_SERVER_VOLUME],
    },
  };
}

const spec = (pod: PodObject): JsonObject => objectOr(pod["spec"]) ?? {};
const mountsOf = (pod: PodObject, list: string): string[][] =>
  listOf(spec(pod)[list]).map((c) => listOf(objectOr(c)?.["volumeMounts"]).map(nameOf));

describe("the API server's token volume (ServiceAccount admission) in an agent pod", () => {
  it("is recognised by its name and its three sources", () => {
    expect(isApiServerTokenVolume(API_SERVER_VOLUME)).to.equal(true);
    expect(isApiServerTokenVolume({ ...API_SERVER_VOLUME, name: "my-token" })).to.equal(false);
    const twoSources = {
      ...API_SERVER_VOLUME,
      projected: { sources: API_SERVER_VOLUME.projected.sources.slice(0, 2) },
    };
    expect(isApiServerTokenVolume(twoSources)).to.equal(false);
  });

  it("is taken out with every mount of it; other volumes and mounts stay", () => {
    const out = withoutApiServerToken(admitted());
    expect(listOf(spec(out)["volumes"]).map(nameOf)).to.deep.equal(["data"]);
    expect(mountsOf(out, "containers")).to.deep.equal([["data"]]);
    expect(mountsOf(out, "initContainers")).to.deep.equal([[]]);
    const plain = { apiVersion: "v1", kind: "Pod", spec: { containers: [{ name: "a" }] } };
    expect(withoutApiServerToken(plain)).to.equal(plain);
  });

  it("does not stop injection: the injected pod holds no token but the sidecar's", () => {
    const result = injectPod(admitted(), FIXTURE_CONFIG);
    if (!result.ok) throw new Error(`refused: ${JSON.stringify(result.errors)}`);
    const injected = spec(result.pod);
    expect(listOf(injected["volumes"]).map(nameOf)).to.deep.equal([
      "data",
      "airlock-trust",
      "airlock-token",
      "airlock-tmp",
    ]);
    expect(injected["automountServiceAccountToken"]).to.equal(false);
    expect(JSON.stringify(injected)).not.to.include("kube-api-access-");
    expect(result.changed).to.equal(true);
  });

  it("a token volume the pod declares itself is still refused", () => {
    const own = admitted();
    const volumes = listOf(spec(own)["volumes"]);
    volumes[1] = { ...API_SERVER_VOLUME, name: "my-token" };
    const result = injectPod(own, FIXTURE_CONFIG);
    expect(result.ok).to.equal(false);
    if (!result.ok)
      expect(result.errors.map((e) => e.path)).to.include(
        "spec.volumes[1].projected.sources[0].serviceAccountToken",
      );
  });
});

describe("allowAddresses in the injection config", () => {
  it("become the sidecar's --allow-address flags, in order", () => {
    const result = injectPod(admitted(), {
      ...FIXTURE_CONFIG,
      allowAddresses: ["10.244.0.7/32", "fd00::/8"],
    });
    if (!result.ok) throw new Error("refused");
    const sidecar = listOf(spec(result.pod)["initContainers"]).find((c) => nameOf(c) === "airlock-sidecar");
    const args = listOf(objectOr(sidecar)?.["args"]);
    expect(args.slice(-4)).to.deep.equal(["--allow-address", "10.244.0.7/32", "--allow-address", "fd00::/8"]);
    const none = injectPod(admitted(), FIXTURE_CONFIG);
    if (!none.ok) throw new Error("refused");
    expect(JSON.stringify(none.pod)).not.to.include("--allow-address");
  });
});
