// The admission webhook server over real HTTPS: AdmissionReviews as kube-apiserver sends them, the
// JSON Patch applied by the test itself, refusals with their field paths, malformed bodies, and a
// certificate rotated without a restart.
import { expect } from "chai";
import { injectPod } from "../operator/inject/inject.ts";
import { admissionReview, applyJsonPatch, webhookUnderTest, type ReviewInput } from "./helpers/webhook.ts";

type Json = Record<string, unknown>;

/** The Pod a ReplicaSet makes from a Deployment's template (ownerReferences left out). */
function agentPod(extraSpec: Json = {}, container: Json = {}): Json {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "coder-6d4cf56db6-x7k2p",
      namespace: "agents",
      labels: { app: "coding-agent", "pod-template-hash": "6d4cf56db6" },
    },
    spec: {
      serviceAccountName: "coder",
      containers: [
        { name: "agent", image: "python:3.13-slim", command: ["sleep", "infinity"], ...container },
      ],
      restartPolicy: "Always",
      ...extraSpec,
    },
  };
}

interface ReviewAnswer {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string };
  patchType?: string;
  patch?: string;
}

describe("admission webhook server: real HTTPS requests with AdmissionReviews", function () {
  const webhook = webhookUnderTest();
  const { call } = webhook;
  const review = async (path: string, input: ReviewInput): Promise<ReviewAnswer> => {
    const answer = await call(path, JSON.stringify(admissionReview(input)));
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    const body = answer.body as { apiVersion: string; kind: string; response: ReviewAnswer };
    expect(body.apiVersion).to.equal("admission.k8s.io/v1");
    expect(body.kind).to.equal("AdmissionReview");
    return body.response;
  };
  const createPod = (object: Json, extra: Partial<ReviewInput> = {}): Promise<ReviewAnswer> =>
    review("/inject", { operation: "CREATE", resource: "pods", namespace: "agents", object, ...extra });
  const decodePatch = (response: ReviewAnswer): unknown =>
    JSON.parse(Buffer.from(response.patch ?? "", "base64").toString("utf8"));

  it("answers a Pod CREATE with a JSON Patch that yields exactly the injected pod", async function () {
    const pod = agentPod();
    const response = await createPod(pod, { uid: "uid-inject-1" });
    expect(response).to.include({ uid: "uid-inject-1", allowed: true, patchType: "JSONPatch" });
    const operations = decodePatch(response) as { op: string; path: string }[];
    // Whole fields, no deeper than one level under metadata/spec.
    for (const { path } of operations) expect(path.split("/").length).to.be.at.most(3);
    const patched = applyJsonPatch(pod, operations);
    const want = injectPod(pod, webhook.config);
    expect(want.ok).to.equal(true);
    if (want.ok) expect(patched).to.deep.equal(want.pod);
    const spec = patched.spec as {
      initContainers: { name: string }[];
      automountServiceAccountToken: boolean;
    };
    expect(spec.initContainers.map((c) => c.name)).to.deep.equal(["airlock-init", "airlock-sidecar"]);
    expect(spec.automountServiceAccountToken).to.equal(false);
    expect((patched.metadata as { annotations: Json }).annotations).to.have.property("airlock.dev/status");
  });

  it("answers the injected pod again with no patch (reinvocation changes nothing)", async function () {
    const pod = agentPod({ volumes: [{ name: "work", emptyDir: {} }] });
    const first = await createPod(pod);
    const injected = applyJsonPatch(pod, decodePatch(first));
    const again = await createPod(injected);
    expect(again).to.deep.equal({ uid: again.uid, allowed: true });
  });

  it("refuses each unsafe pod with 403 and every field path the injector reports", async function () {
    const cases: { name: string; pod: Json; paths: string[] }[] = [
      { name: "hostNetwork", pod: agentPod({ hostNetwork: true }), paths: ["spec.hostNetwork"] },
      {
        name: "NET_ADMIN",
        pod: agentPod({}, { securityContext: { capabilities: { add: ["NET_ADMIN"] } } }),
        paths: ["spec.containers[0].securityContext.capabilities.add[0]"],
      },
      {
        name: "runAsUser 15000",
        pod: agentPod({ securityContext: { runAsUser: 15000 } }),
        paths: ["spec.securityContext.runAsUser"],
      },
      {
        name: "privileged",
        pod: agentPod({}, { securityContext: { privileged: true } }),
        paths: ["spec.containers[0].securityContext.privileged"],
      },
      {
        name: "all at once",
        pod: agentPod({ hostNetwork: true }, { securityContext: { privileged: true } }),
        paths: ["spec.hostNetwork", "spec.containers[0].securityContext.privileged"],
      },
    ];
    for (const c of cases) {
      const response = await createPod(c.pod);
      expect(response.allowed, c.name).to.equal(false);
      expect(response.patch, c.name).to.equal(undefined);
      expect(response.status?.code, c.name).to.equal(403);
      const result = injectPod(c.pod, webhook.config);
      if (result.ok) expect.fail(`${c.name}: the injector accepted the pod`);
      for (const error of result.errors)
        expect(response.status?.message, c.name).to.include(`${error.path}: ${error.message}`);
      for (const path of c.paths) expect(response.status?.message, c.name).to.include(`${path}: `);
    }
  });

  it("allows what /inject is not for (not a Pod, not a CREATE) unchanged", async function () {
    const update = await review("/inject", {
      operation: "UPDATE",
      resource: "pods",
      namespace: "agents",
      object: agentPod(),
      oldObject: agentPod(),
    });
    expect(update).to.deep.equal({ uid: update.uid, allowed: true });
    const configMap = await review("/inject", {
      operation: "CREATE",
      resource: "configmaps",
      kind: "ConfigMap",
      namespace: "agents",
      object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } },
    });
    expect(configMap).to.deep.equal({ uid: configMap.uid, allowed: true });
    const noObject = await createPod(null as unknown as Json);
    expect(noObject).to.include({ allowed: false });
    expect(noObject.status?.code).to.equal(400);
  });

  it("answers a dryRun review exactly like the same review without it", async function () {
    const pod = agentPod();
    const wet = await createPod(pod, { uid: "same" });
    const dry = await createPod(pod, { uid: "same", dryRun: true });
    expect(dry).to.deep.equal(wet);
    const refused = agentPod({ hostPID: true });
    expect(await createPod(refused, { uid: "r", dryRun: true })).to.deep.equal(
      await createPod(refused, { uid: "r" }),
    );
  });
});
