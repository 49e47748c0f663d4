// The webhook server's /validate route, its answers to what is not an AdmissionReview, a serving
// certificate replaced while running, and the webhook configurations it is registered with.
import { expect } from "chai";
import { injectPod } from "../operator/inject/inject.ts";
import { webhookConfigurations } from "../operator/webhook/configurations.ts";
import { MAX_REVIEW_BYTES } from "../operator/webhook/server.ts";
import {
  admissionReview,
  httpsCall,
  makeWebhookPki,
  webhookUnderTest,
  type ReviewInput,
} from "./helpers/webhook.ts";

type Json = Record<string, unknown>;

interface ReviewAnswer {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string };
}

const policy = (egress: Json[]): Json => ({
  apiVersion: "airlock.dev/v1alpha1",
  kind: "EgressPolicy",
  metadata: { name: "coding-agent", namespace: "agents", uid: "0b6c…", generation: 1, managedFields: [] },
  spec: { podSelector: { matchLabels: { app: "coding-agent" } }, egress },
});

const credential = (spec: Json): Json => ({
  apiVersion: "airlock.dev/v1alpha1",
  kind: "Credential",
  metadata: { name: "github", namespace: "agents" },
  spec,
});

describe("admission webhook server: /validate, malformed reviews and certificate rotation", function () {
  const webhook = webhookUnderTest();
  const { call } = webhook;
  const validate = async (input: ReviewInput): Promise<ReviewAnswer> => {
    const answer = await call("/validate", JSON.stringify(admissionReview(input)));
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    return (answer.body as { response: ReviewAnswer }).response;
  };
  const crReview = (
    resource: string,
    kind: string,
    object: Json,
    operation: "CREATE" | "UPDATE" = "CREATE",
  ) =>
    validate({
      operation,
      group: "airlock.dev",
      version: "v1alpha1",
      resource,
      kind,
      namespace: "agents",
      object,
    });

  it("refuses an invalid EgressPolicy on CREATE and UPDATE with its field paths, allows a valid one", async function () {
    const rules = [
      { name: "github-api", hosts: ["api.github.com"] },
      { name: "npm", hosts: ["registry.npmjs.org", "*.npmjs.org"] },
      { name: "docs", hosts: ["*.com"], paths: ["/a/**b"] },
    ];
    for (const operation of ["CREATE", "UPDATE"] as const) {
      const refused = await crReview("egresspolicies", "EgressPolicy", policy(rules), operation);
      expect(refused.allowed, operation).to.equal(false);
      expect(refused.status?.code).to.equal(403);
      expect(refused.status?.message).to.match(/^invalid EgressPolicy: /);
      expect(refused.status?.message).to.include("spec.egress[2].hosts[0]: ");
      expect(refused.status?.message).to.include("spec.egress[2].paths[0]: ");
    }
    const valid = await crReview("egresspolicies", "EgressPolicy", policy(rules.slice(0, 2)));
    expect(valid).to.deep.include({ allowed: true });
    expect(valid.status).to.equal(undefined);
  });

  it("allows an UPDATE that leaves a stored invalid spec as it was (labels, finalizers)", async function () {
    const stored = policy([{ name: "x", hosts: ["*"] }]);
    const relabelled = { ...stored, metadata: { ...(stored.metadata as Json), labels: { team: "a" } } };
    const input = {
      group: "airlock.dev",
      version: "v1alpha1",
      resource: "egresspolicies",
      kind: "EgressPolicy",
    };
    const review = (object: Json) =>
      validate({ ...input, operation: "UPDATE", namespace: "agents", object, oldObject: stored });
    expect((await review(relabelled)).allowed).to.equal(true);
    const stillInvalid = await review(
      policy([
        { name: "x", hosts: ["*"] },
        { name: "y", hosts: ["a.*.com"] },
      ]),
    );
    expect(stillInvalid.allowed).to.equal(false);
    expect(stillInvalid.status?.message).to.include("spec.egress[1].hosts[0]: ");
  });

  it("refuses an invalid Credential with its field path, allows a valid one", async function () {
    const refused = await crReview(
      "credentials",
      "Credential",
      credential({
        secretRef: { name: "github-token", key: "token" },
        injection: { header: { name: "Host" } },
      }),
    );
    expect(refused.allowed).to.equal(false);
    expect(refused.status?.message).to.include("spec.injection.header.name: ");
    const valid = await crReview(
      "credentials",
      "Credential",
      credential({
        secretRef: { name: "github-token", key: "token" },
        injection: { basicAuth: { username: "x" } },
      }),
    );
    expect(valid.allowed).to.equal(true);
  });

  it("refuses a Pod UPDATE that changes the sidecar, allows one that leaves Airlock's part alone", async function () {
    const plain: Json = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "agents" },
      spec: { containers: [{ name: "agent", image: "python:3.13-slim" }] },
    };
    const injected = injectPod(plain, webhook.config);
    if (!injected.ok) return expect.fail(JSON.stringify(injected.errors));
    const stored = injected.pod;
    const swapped = structuredClone(stored) as { spec: { initContainers: Json[] } };
    const sidecarIndex = swapped.spec.initContainers.findIndex((c) => c.name === "airlock-sidecar");
    swapped.spec.initContainers[sidecarIndex] = {
      ...swapped.spec.initContainers[sidecarIndex],
      image: "other",
    };
    const update = (object: Json) =>
      validate({
        operation: "UPDATE",
        resource: "pods",
        namespace: "agents",
        name: "p",
        object,
        oldObject: stored,
      });
    const refused = await update(swapped);
    expect(refused.allowed).to.equal(false);
    expect(refused.status?.code).to.equal(403);
    expect(refused.status?.message).to.include(`spec.initContainers[${String(sidecarIndex)}].image: `);
    const relabelled = structuredClone(stored) as { metadata: Json };
    relabelled.metadata.labels = { reviewed: "yes" };
    expect((await update(relabelled)).allowed).to.equal(true);
  });

  it("refuses ephemeral containers that add NET_ADMIN or target the sidecar, allows a plain one", async function () {
    const withEphemeral = (ephemeral: Json): Json => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "agents" },
      spec: { containers: [{ name: "agent", image: "busybox" }], ephemeralContainers: [ephemeral] },
    });
    const review = (ephemeral: Json) =>
      validate({
        operation: "UPDATE",
        resource: "pods",
        subResource: "ephemeralcontainers",
        namespace: "agents",
        name: "p",
        object: withEphemeral(ephemeral),
        oldObject: withEphemeral({ name: "old", image: "busybox" }),
      });
    const netAdmin = await review({
      name: "debug",
      image: "busybox",
      securityContext: { capabilities: { add: ["NET_ADMIN"] } },
    });
    expect(netAdmin.allowed).to.equal(false);
    expect(netAdmin.status?.message).to.include(
      "spec.ephemeralContainers[0].securityContext.capabilities.add[0]: ",
    );
    const target = await review({ name: "debug", image: "busybox", targetContainerName: "airlock-sidecar" });
    expect(target.allowed).to.equal(false);
    expect(target.status?.message).to.include("spec.ephemeralContainers[0].targetContainerName: ");
    expect(
      (await review({ name: "debug", image: "busybox", targetContainerName: "agent" })).allowed,
    ).to.equal(true);
  });

  it("answers a dryRun validation exactly like the same review without it", async function () {
    const input = {
      group: "airlock.dev",
      version: "v1alpha1",
      resource: "egresspolicies",
      kind: "EgressPolicy",
    };
    const object = policy([{ name: "x", hosts: ["*"] }]);
    const wet = await validate({ ...input, operation: "CREATE", namespace: "agents", object });
    const dry = await validate({ ...input, operation: "CREATE", namespace: "agents", object, dryRun: true });
    expect(dry).to.deep.equal(wet);
    expect(wet.allowed).to.equal(false);
  });

  it("answers what is not an AdmissionReview v1 with HTTP 400 and a JSON error, and keeps serving", async function () {
    const good = admissionReview({ operation: "CREATE", resource: "pods", namespace: "agents", object: {} });
    const request = good.request as Json;
    const bodies: { name: string; body: string | Buffer }[] = [
      { name: "not JSON", body: "{not json" },
      { name: "empty", body: "" },
      { name: "an array", body: "[]" },
      { name: "v1beta1", body: JSON.stringify({ ...good, apiVersion: "admission.k8s.io/v1beta1" }) },
      { name: "wrong kind", body: JSON.stringify({ ...good, kind: "Pod" }) },
      { name: "no request", body: JSON.stringify({ apiVersion: good.apiVersion, kind: good.kind }) },
      { name: "no uid", body: JSON.stringify({ ...good, request: { ...request, uid: undefined } }) },
      { name: "numeric uid", body: JSON.stringify({ ...good, request: { ...request, uid: 7 } }) },
      { name: "no resource", body: JSON.stringify({ ...good, request: { ...request, resource: "pods" } }) },
      { name: "binary", body: Buffer.from([0xff, 0xfe, 0x00, 0x01]) },
    ];
    for (const path of ["/inject", "/validate"])
      for (const { name, body } of bodies) {
        const answer = await call(path, body);
        expect(answer.status, `${path} ${name}`).to.equal(400);
        expect(answer.contentType, `${path} ${name}`).to.match(/^application\/json/);
        expect(answer.body, `${path} ${name}`).to.have.property("error", "malformed_review");
      }
    const huge = await call("/validate", Buffer.alloc(MAX_REVIEW_BYTES + 1, 0x20));
    expect(huge.status).to.equal(413);
    expect(huge.body).to.have.property("error", "review_too_large");
    const unknown = await call("/mutate", "{}");
    expect(unknown.status).to.equal(404);
    expect(unknown.body).to.have.property("error", "not_found");
    const health = await call("/healthz");
    expect(health).to.deep.include({ status: 200 });
  });

  it("serves a replaced certificate to new connections without a restart", async function () {
    const next = makeWebhookPki("airlock-webhook-rotated");
    expect((await call("/healthz")).status).to.equal(200);
    expect(() => {
      webhook.server.setTls({ cert: next.cert, key: webhook.pki.key });
    }).to.throw();
    expect((await call("/healthz")).status, "a refused certificate keeps the old one").to.equal(200);
    webhook.server.setTls({ cert: next.cert, key: next.key });
    expect((await httpsCall(webhook.server.port, "/healthz", next.caPem)).status).to.equal(200);
    let error: unknown;
    await call("/healthz").catch((err: unknown) => (error = err));
    expect(String(error)).to.match(/self-signed|unable to verify|certificate/i);
    webhook.server.setTls({ cert: webhook.pki.cert, key: webhook.pki.key });
  });
});

describe("webhook configurations: what the API server is told", function () {
  const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

  it("routes Pod CREATE in enabled namespaces to /inject and never matches the operator's namespace", function () {
    const { mutating, validating } = webhookConfigurations({
      caBundle: ca,
      url: "https://127.0.0.1:9443/",
      operatorNamespace: "airlock-system",
    });
    expect(mutating).to.deep.include({ kind: "MutatingWebhookConfiguration" });
    expect((mutating.metadata as Json).name).to.equal("airlock-injector");
    const [inject] = mutating.webhooks as Json[];
    expect(inject).to.deep.include({
      clientConfig: { url: "https://127.0.0.1:9443/inject", caBundle: Buffer.from(ca).toString("base64") },
      failurePolicy: "Fail",
      sideEffects: "None",
      admissionReviewVersions: ["v1"],
      timeoutSeconds: 10,
      reinvocationPolicy: "IfNeeded",
      namespaceSelector: {
        matchExpressions: [
          { key: "airlock.dev/inject", operator: "In", values: ["enabled"] },
          { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["airlock-system"] },
        ],
      },
    });
    expect((validating.metadata as Json).name).to.equal("airlock-validator");
    const webhooks = validating.webhooks as {
      clientConfig: Json;
      failurePolicy: string;
      namespaceSelector: Json;
      rules: Json[];
    }[];
    expect(webhooks.map((w) => w.rules.flatMap((r) => r.resources))).to.deep.equal([
      ["egresspolicies", "credentials"],
      ["pods", "pods/ephemeralcontainers"],
    ]);
    for (const webhook of webhooks) {
      expect(webhook.failurePolicy).to.equal("Fail");
      expect(webhook.clientConfig.url).to.equal("https://127.0.0.1:9443/validate");
      expect(JSON.stringify(webhook.namespaceSelector)).to.include('"NotIn","values":["airlock-system"]');
    }
  });

  it("points at a Service and excludes its namespace when no URL is given", function () {
    const { mutating } = webhookConfigurations({
      caBundle: ca,
      service: { namespace: "airlock", name: "airlock-webhook", port: 443 },
    });
    const [inject] = mutating.webhooks as { clientConfig: Json; namespaceSelector: Json }[];
    expect(inject?.clientConfig.service).to.deep.equal({
      namespace: "airlock",
      name: "airlock-webhook",
      path: "/inject",
      port: 443,
    });
    expect(JSON.stringify(inject?.namespaceSelector)).to.include('"NotIn","values":["airlock"]');
  });
});
