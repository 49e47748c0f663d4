// Credentials from the Kubernetes API (control plane): the sidecar reads exactly the Secrets its
// Role names, with its own ServiceAccount token, and follows them: a missing Secret or key blocks
// with CredentialUnavailable, a rotated value is used on the next request without a restart.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { createAuditLog } from "../sidecar/observe/audit.ts";
import { KubeSecrets } from "../sidecar/proxy/kube-secrets.ts";
import {
  CONTROL_PLANE_TIMEOUT_MS,
  sharedControlPlane,
  tokenKubeApiConfig,
  type ControlPlane,
} from "./helpers/control-plane.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { eventuallyEqual } from "./helpers/eventually.ts";
import { startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

describe("credentials from the Kubernetes API (control plane): rotation without restart", function () {
  let cp: ControlPlane;
  let upstream: EchoUpstream;
  let sidecar: TestSidecar;
  let secrets: KubeSecrets;
  let bundle: string;
  const ns = `airlock-secrets-${randomBytes(3).toString("hex")}`;

  const request = async (): Promise<{ status: number; reason?: string; sent?: string }> => {
    const before = upstream.received.length;
    const res = await curl([
      "-x",
      sidecar.proxyUrl,
      "--cacert",
      bundle,
      `https://api.example.test:${upstream.port}/x`,
    ]);
    const sent =
      upstream.received.length > before ? upstream.received.at(-1)?.headers["x-api-key"] : undefined;
    const reason = res.status === 403 ? (JSON.parse(res.body) as { reason: string }).reason : undefined;
    return {
      status: res.status,
      ...(reason ? { reason } : {}),
      ...(typeof sent === "string" ? { sent } : {}),
    };
  };
  const eventually = async (want: Record<string, unknown>): Promise<void> => {
    await eventuallyEqual(request, want, { timeoutMs: 15_000, what: "the request through the sidecar" });
  };
  const kubectl = async (args: string[], input?: string): Promise<void> => {
    const res = await cp.kubectl(args, input === undefined ? {} : { input });
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
  };

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await sharedControlPlane();
    await kubectl(["create", "namespace", ns]);
    await kubectl(["-n", ns, "create", "serviceaccount", "agent"]);
    await kubectl([
      "-n",
      ns,
      "create",
      "role",
      "agent-secrets",
      "--verb=get,watch",
      "--resource=secrets",
      "--resource-name=api-token",
    ]);
    await kubectl([
      "-n",
      ns,
      "create",
      "rolebinding",
      "agent-secrets",
      "--role=agent-secrets",
      `--serviceaccount=${ns}:agent`,
    ]);
    const token = await cp.serviceAccountToken(ns, "agent");
    const config = tokenKubeApiConfig(cp, token);
    upstream = await startEchoUpstream({ tls: true });
    secrets = new KubeSecrets(config, createAuditLog({}, { level: "silent" }));
    sidecar = await startTestSidecar({
      policies: [
        {
          apiVersion: "airlock.dev/v1alpha1",
          kind: "EgressPolicy",
          metadata: { name: "agent", namespace: ns },
          spec: {
            podSelector: {},
            egress: [{ name: "api", hosts: ["api.example.test"], ports: [upstream.port], credential: "api" }],
          },
        },
      ],
      credentials: [
        {
          apiVersion: "airlock.dev/v1alpha1",
          kind: "Credential",
          metadata: { name: "api", namespace: ns },
          spec: {
            secretRef: { name: "api-token", key: "token" },
            injection: { header: { name: "X-Api-Key" } },
          },
        },
      ],
      secretSource: secrets,
      pins: { "api.example.test": "127.0.0.1" },
      upstreamCa: [upstream.caPem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });
  after(async function () {
    secrets.close();
    await sidecar.close();
    await upstream.close();
  });

  it("a Secret that does not exist yet blocks with CredentialUnavailable", async function () {
    await eventually({ status: 403, reason: "CredentialUnavailable" });
  });

  it("the Secret appearing is picked up without a restart", async function () {
    await kubectl(["-n", ns, "create", "secret", "generic", "api-token", "--from-literal=token=first-value"]);
    await eventually({ status: 200, sent: "first-value" });
  });

  it("a rotated value is used on the next requests, without a restart", async function () {
    const res = await cp.kubectl([
      "-n",
      ns,
      "create",
      "secret",
      "generic",
      "api-token",
      "--from-literal=token=second-value",
      "--dry-run=client",
      "-o",
      "yaml",
    ]);
    await kubectl(["apply", "-f", "-"], res.stdout);
    await eventually({ status: 200, sent: "second-value" });
  });

  it("a missing key blocks, and so does deleting the Secret", async function () {
    const res = await cp.kubectl([
      "-n",
      ns,
      "create",
      "secret",
      "generic",
      "api-token",
      "--from-literal=other=x",
      "--dry-run=client",
      "-o",
      "yaml",
    ]);
    await kubectl(["replace", "-f", "-"], res.stdout);
    await eventually({ status: 403, reason: "CredentialUnavailable" });
    await kubectl(["-n", ns, "create", "secret", "generic", "api-token-2", "--from-literal=token=z"]);
    await kubectl(["-n", ns, "delete", "secret", "api-token"]);
    await eventually({ status: 403, reason: "CredentialUnavailable" });
  });

  it("the sidecar's identity can get its own Secret, and cannot list Secrets nor get another", async function () {
    const token = await cp.serviceAccountToken(ns, "agent");
    const can = async (verb: string, resource: string): Promise<string> =>
      (await cp.kubectl(["auth", "can-i", verb, resource, "-n", ns], { token })).stdout.trim();
    expect(await can("get", "secrets/api-token")).to.equal("yes");
    expect(await can("list", "secrets")).to.equal("no");
    expect(await can("get", "secrets/api-token-2")).to.equal("no");
  });
});
