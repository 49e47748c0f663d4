// OAuth2 refresh-token write-back against a real API server (control plane): with
// writeBackRefreshToken, a refresh token the endpoint rotates lands in the Credential's Secret
// through the sidecar's own ServiceAccount (which the user granted update on that Secret), the
// change arriving through the watch does not cost another exchange, and without the grant the
// failure is counted while the rotated token keeps working from memory.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { createAuditLog } from "../sidecar/observe/audit.ts";
import { KubeSecrets } from "../sidecar/proxy/kube-secrets.ts";
import { canary } from "./helpers/canary.ts";
import {
  CONTROL_PLANE_TIMEOUT_MS,
  sharedControlPlane,
  tokenKubeApiConfig,
  type ControlPlane,
} from "./helpers/control-plane.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { eventually } from "./helpers/eventually.ts";
import { startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";
import { startTlsServer, type TlsTestServer } from "./helpers/tls-server.ts";

const CLIENT_SECRET = "wb-client-s3cr3t-55e1";
const FIRST_REFRESH = "wb-refresh-first-2c9a71";

describe("OAuth2 refresh-token write-back (control plane)", function () {
  this.timeout(60_000);
  let cp: ControlPlane;
  let auth: TlsTestServer;
  let api: TlsTestServer;
  let sidecar: TestSidecar;
  let secrets: KubeSecrets;
  let bundle = "";
  const ns = `airlock-writeback-${randomBytes(3).toString("hex")}`;
  let current = FIRST_REFRESH;
  const used: string[] = [];

  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const res = await cp.kubectl(args, input === undefined ? {} : { input });
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    return res.stdout;
  };
  const secretValue = async (name: string, key: string): Promise<string> =>
    Buffer.from(
      await kubectl(["-n", ns, "get", "secret", name, "-o", `jsonpath={.data.${key}}`]),
      "base64",
    ).toString();

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await sharedControlPlane();
    canary.secret(CLIENT_SECRET, "write-back client secret");
    canary.secret(FIRST_REFRESH, "write-back first refresh token");
    await kubectl(["create", "namespace", ns]);
    await kubectl(["-n", ns, "create", "serviceaccount", "agent"]);
    for (const name of ["granted", "refused"])
      await kubectl([
        ...["-n", ns, "create", "secret", "generic", name],
        `--from-literal=client_secret=${CLIENT_SECRET}`,
        `--from-literal=refresh_token=${FIRST_REFRESH}`,
      ]);
    // What the operator grants (read both), and what the user adds for write-back (update one).
    await kubectl([
      ...["-n", ns, "create", "role", "read", "--verb=get,watch", "--resource=secrets"],
      ...["--resource-name=granted", "--resource-name=refused"],
    ]);
    await kubectl([
      "-n",
      ns,
      "create",
      "role",
      "write",
      "--verb=update",
      "--resource=secrets",
      "--resource-name=granted",
    ]);
    for (const role of ["read", "write"])
      await kubectl([
        "-n",
        ns,
        "create",
        "rolebinding",
        role,
        `--role=${role}`,
        `--serviceaccount=${ns}:agent`,
      ]);
    secrets = new KubeSecrets(
      tokenKubeApiConfig(cp, await cp.serviceAccountToken(ns, "agent")),
      createAuditLog({}, { level: "silent" }),
    );

    // Each refresh token works once; the answer carries the next one. One chain per Secret.
    const chains = new Map<string, string>([
      ["/granted", FIRST_REFRESH],
      ["/refused", FIRST_REFRESH],
    ]);
    auth = await startTlsServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
        const path = req.url ?? "";
        used.push(`${path} ${form.refresh_token ?? ""}`);
        if (form.refresh_token !== chains.get(path) || form.client_secret !== CLIENT_SECRET) {
          res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid_grant"}');
          return;
        }
        const next = `wb-rotated-${randomBytes(6).toString("hex")}`;
        const token = `wb-access-${randomBytes(6).toString("hex")}`;
        for (const value of [next, token]) canary.secret(value, "write-back token");
        chains.set(path, next);
        current = next;
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ access_token: token, expires_in: 3600, refresh_token: next }));
      });
    });
    api = await startTlsServer((_req, res) => {
      res.writeHead(200).end("ok");
    });
    const credential = (name: string) => ({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "Credential",
      metadata: { name, namespace: ns },
      spec: {
        secretRef: { name, key: "client_secret" },
        injection: { header: { name: "Authorization", valuePrefix: "Bearer " } },
        oauth2: {
          tokenUrl: `https://auth.example.test:${String(auth.port)}/${name}`,
          clientId: "agent",
          clientAuth: "body",
          grant: "refreshToken",
          refreshTokenKey: "refresh_token",
          writeBackRefreshToken: true,
        },
      },
    });
    sidecar = await startTestSidecar({
      policies: [
        {
          apiVersion: "airlock.dev/v1alpha1",
          kind: "EgressPolicy",
          metadata: { name: "agent", namespace: ns },
          spec: {
            podSelector: {},
            egress: ["granted", "refused"].map((name) => ({
              name,
              hosts: [`${name}.example.test`],
              ports: [api.port],
              credential: name,
            })),
          },
        },
      ],
      credentials: [credential("granted"), credential("refused")],
      secretSource: secrets,
      pins: {
        "auth.example.test": "127.0.0.1",
        "granted.example.test": "127.0.0.1",
        "refused.example.test": "127.0.0.1",
      },
      upstreamCa: [auth.ca.certificatePem, api.ca.certificatePem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });

  after(async function () {
    secrets.close();
    await sidecar.close();
    await auth.close();
    await api.close();
  });

  const get = (name: string) =>
    curl(["-x", sidecar.proxyUrl, "--cacert", bundle, `https://${name}.example.test:${String(api.port)}/x`]);

  it("the rotated refresh token is written to the Secret; its arrival costs no further exchange", async function () {
    await eventually(
      async () => {
        const res = await get("granted");
        expect(res.status, res.body).to.equal(200);
      },
      { what: "the Secret seen by the sidecar" },
    );
    const rotated = current;
    await eventually(
      async () => {
        expect(await secretValue("granted", "refresh_token")).to.equal(rotated);
      },
      { what: "the rotated refresh token in the Secret" },
    );
    // The watch delivers the written value: the token in hand is kept (same exchange count).
    const exchanges = used.filter((u) => u.startsWith("/granted")).length;
    await eventually(
      () => {
        const seen = secrets.get(ns, "granted", "refresh_token");
        expect(seen.ok && seen.value.toString()).to.equal(rotated);
      },
      { what: "the sidecar's watch delivering the written value" },
    );
    for (let i = 0; i < 3; i++) expect((await get("granted")).status).to.equal(200);
    expect(used.filter((u) => u.startsWith("/granted")).length).to.equal(exchanges);
  });

  it("without update on the Secret, the write-back failure is counted and the rotated token still serves", async function () {
    await eventually(
      async () => {
        expect((await get("refused")).status).to.equal(200);
      },
      { what: "the refused credential's first exchange" },
    );
    await eventually(
      async () => {
        const metrics = await fetch(`http://127.0.0.1:${String(sidecar.metricsAddress.port)}/metrics`).then(
          (r) => r.text(),
        );
        expect(metrics).to.match(
          /airlock_credential_errors_total\{[^}]*reason="WriteBackFailed"[^}]*\} [1-9]/,
        );
      },
      { what: "the counted write-back failure" },
    );
    expect(await secretValue("refused", "refresh_token")).to.equal(FIRST_REFRESH);
  });
});
