// OAuth2 credentials against a real token endpoint (HTTPS, on this machine) that checks the
// client's authentication and grant and issues tokens that expire, and a real upstream that only
// accepts a current token: the agent holds nothing, the upstream sees a fresh token, concurrent
// first requests cause one exchange, expiry causes exactly one more, a failing endpoint blocks
// with CredentialUnavailable and the sidecar recovers when it answers again.
import { expect } from "chai";
import https from "node:https";
import type { IncomingMessage } from "node:http";
import net from "node:net";
import { REDACTED } from "../sidecar/proxy/scrub.ts";
import { CertificateAuthority } from "../sidecar/tls/ca.ts";
import { canary } from "./helpers/canary.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { parseJson, policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

const CLIENT_SECRET = "oauth-client-s3cr3t-0d9f2e";
const REFRESH_TOKEN = "oauth-refresh-7c1a44b2e9";
const AUTH = "auth.example.test";
const API = "api.example.test";

interface Exchange {
  path: string;
  authorization: string;
  form: Record<string, string>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
  });
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("OAuth2 credentials (a real token endpoint and upstream)", function () {
  let sidecar: TestSidecar;
  let authServer: https.Server;
  let apiServer: https.Server;
  let authPort = 0;
  let apiPort = 0;
  let bundle = "";
  const exchanges: Exchange[] = [];
  /** Tokens the endpoint issued and the upstream accepts. */
  const valid = new Set<string>();
  const seenByApi: string[] = [];
  let issued = 0;
  let failing = false;
  /** The one refresh token /rotating accepts now. */
  let currentRefresh = REFRESH_TOKEN;

  before(async function () {
    const ca = new CertificateAuthority();
    const sni = (
      name: string,
      cb: (err: Error | null, ctx: ReturnType<CertificateAuthority["contextFor"]>) => void,
    ) => {
      cb(null, ca.contextFor(name));
    };
    authServer = https.createServer({ SNICallback: sni }, (req, res) => {
      void readBody(req).then((body) => {
        const form = Object.fromEntries(new URLSearchParams(body));
        const path = req.url ?? "";
        exchanges.push({ path, authorization: req.headers.authorization ?? "", form });
        const deny = (status: number, error: string): void => {
          res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ error }));
        };
        if (path === "/flaky" && failing) {
          deny(500, "server_error");
          return;
        }
        // Client authentication: Basic, or client_id/client_secret in the body.
        const basic = `Basic ${Buffer.from(`agent-client:${CLIENT_SECRET}`).toString("base64")}`;
        const byBody = form.client_id === "agent-client" && form.client_secret === CLIENT_SECRET;
        if (req.headers.authorization !== basic && !byBody) {
          deny(401, "invalid_client");
          return;
        }
        let rotated: string | undefined;
        if (path === "/rotating") {
          // Each refresh token works once; the answer carries the next one.
          if (form.grant_type !== "refresh_token" || form.refresh_token !== currentRefresh) {
            deny(400, "invalid_grant");
            return;
          }
          rotated = `rotated-${Math.random().toString(36).slice(2, 14)}`;
          canary.secret(rotated, "a rotated refresh token");
          currentRefresh = rotated;
        } else if (path === "/refresh") {
          if (form.grant_type !== "refresh_token" || form.refresh_token !== REFRESH_TOKEN) {
            deny(400, "invalid_grant");
            return;
          }
        } else if (form.grant_type !== "client_credentials") {
          deny(400, "unsupported_grant_type");
          return;
        }
        const token = `access-${String(++issued)}-${Math.random().toString(36).slice(2, 12)}`;
        canary.secret(token, `OAuth2 access token ${String(issued)}`);
        valid.add(token);
        const expiresIn = path === "/expiring" || path === "/rotating" ? 1 : 3600;
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            access_token: token,
            token_type: "Bearer",
            expires_in: expiresIn,
            ...(rotated ? { refresh_token: rotated } : {}),
          }),
        );
      });
    });
    apiServer = https.createServer({ SNICallback: sni }, (req, res) => {
      const auth = req.headers.authorization ?? "";
      seenByApi.push(auth);
      const token = auth.replace(/^Bearer /, "");
      if (!valid.has(token)) {
        res.writeHead(401).end("no valid token");
        return;
      }
      // Reflects the token: the agent must see it scrubbed.
      res.writeHead(200, { "content-type": "text/plain" }).end(`hello ${auth}`);
    });
    await new Promise<void>((resolve) => authServer.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => apiServer.listen(0, "127.0.0.1", resolve));
    authPort = (authServer.address() as net.AddressInfo).port;
    apiPort = (apiServer.address() as net.AddressInfo).port;
    const oauthCredential = (name: string, oauth2: Record<string, unknown>) => ({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "Credential",
      metadata: { name, namespace: "agents" },
      spec: {
        secretRef: { name: "oauth", key: "client_secret" },
        injection: { header: { name: "Authorization", valuePrefix: "Bearer " } },
        hosts: [`${name}.${API}`],
        oauth2: { clientId: "agent-client", ...oauth2 },
      },
    });
    const url = (path: string): string => `https://${AUTH}:${String(authPort)}${path}`;
    const names = ["cc", "expiring", "refresh", "flaky", "down", "rotating"];
    sidecar = await startTestSidecar({
      policies: [
        policy(
          "agent",
          names.map((name) => ({ name, hosts: [`${name}.${API}`], ports: [apiPort], credential: name })),
        ),
      ],
      credentials: [
        oauthCredential("cc", { tokenUrl: url("/cc"), scopes: ["read", "write"], audience: "https://api" }),
        oauthCredential("expiring", { tokenUrl: url("/expiring") }),
        oauthCredential("refresh", {
          tokenUrl: url("/refresh"),
          clientAuth: "body",
          grant: "refreshToken",
          refreshTokenKey: "refresh_token",
        }),
        oauthCredential("flaky", { tokenUrl: url("/flaky") }),
        oauthCredential("rotating", {
          tokenUrl: url("/rotating"),
          grant: "refreshToken",
          refreshTokenKey: "refresh_token",
        }),
        // Nothing listens on port 1.
        oauthCredential("down", { tokenUrl: `https://${AUTH}:1/token` }),
      ],
      secrets: [secret("agents", "oauth", { client_secret: CLIENT_SECRET, refresh_token: REFRESH_TOKEN })],
      pins: Object.fromEntries(
        [AUTH, ...names.map((n) => `${n}.${API}`)].map((host): [string, string] => [host, "127.0.0.1"]),
      ),
      upstreamCa: [ca.certificatePem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });

  after(async function () {
    await sidecar.close();
    for (const server of [authServer, apiServer]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  const get = (name: string, path = "/") =>
    curl(["-x", sidecar.proxyUrl, "--cacert", bundle, `https://${name}.${API}:${String(apiPort)}${path}`]);
  const exchangesAt = (path: string): Exchange[] => exchanges.filter((e) => e.path === path);

  it("client credentials (Basic): 50 concurrent first requests, one exchange; the upstream gets the token, the agent sees it scrubbed", async function () {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => get("cc", `/r${String(i)}`)));
    for (const answer of answers) {
      expect(answer.status, answer.stderr).to.equal(200);
      expect(answer.body).to.equal(`hello ${REDACTED}`);
    }
    const cc = exchangesAt("/cc");
    expect(cc).to.have.length(1);
    expect(cc[0]?.form).to.deep.equal({
      grant_type: "client_credentials",
      scope: "read write",
      audience: "https://api",
    });
    const token = [...valid][valid.size - 1] ?? "";
    expect(seenByApi.slice(-50)).to.deep.equal(Array.from({ length: 50 }, () => `Bearer ${token}`));
    for (const answer of answers) expect(answer.body + JSON.stringify(answer.headers)).not.to.include(token);
  });

  it("an expired token is replaced by exactly one exchange, however many requests find it expired", async function () {
    const first = await get("expiring");
    expect(first.status).to.equal(200);
    expect(exchangesAt("/expiring")).to.have.length(1);
    // The token lives 1 s; it is replaced a tenth of its life before that.
    await wait(1000);
    const answers = await Promise.all(Array.from({ length: 10 }, () => get("expiring")));
    for (const answer of answers) expect(answer.status).to.equal(200);
    expect(exchangesAt("/expiring")).to.have.length(2);
    const fresh = seenByApi.slice(-10);
    expect(new Set(fresh).size).to.equal(1);
    expect(fresh[0]).to.not.equal(seenByApi.at(-11));
  });

  it("refresh-token grant with the client authenticated in the body", async function () {
    const answer = await get("refresh");
    expect(answer.status, answer.body).to.equal(200);
    const [exchange] = exchangesAt("/refresh");
    expect(exchange?.authorization).to.equal("");
    expect(exchange?.form).to.deep.equal({
      grant_type: "refresh_token",
      refresh_token: REFRESH_TOKEN,
      client_id: "agent-client",
      client_secret: CLIENT_SECRET,
    });
  });

  it("a provider that rotates refresh tokens on use: the next refresh uses the rotated one", async function () {
    expect((await get("rotating")).status).to.equal(200);
    await wait(1000);
    const again = await get("rotating");
    expect(again.status, again.body).to.equal(200);
    const used = exchangesAt("/rotating").map((e) => e.form.refresh_token);
    expect(used).to.have.length(2);
    expect(used[0]).to.equal(REFRESH_TOKEN);
    expect(used[1]).to.match(/^rotated-/);
  });

  it("a failing token endpoint blocks with CredentialUnavailable (status, no secret), and the sidecar recovers", async function () {
    failing = true;
    const blocked = await get("flaky");
    expect(blocked.status).to.equal(403);
    const body = parseJson(blocked.body);
    expect(body).to.include({ reason: "CredentialUnavailable" });
    expect(String(body.message)).to.match(/answered 500 \(server_error\)/);
    failing = false;
    // A failed exchange is not retried for a second; then the next request asks again.
    await wait(1100);
    const recovered = await get("flaky");
    expect(recovered.status, recovered.body).to.equal(200);
    expect(exchangesAt("/flaky")).to.have.length(2);
  });

  it("an unreachable token endpoint blocks with CredentialUnavailable", async function () {
    const blocked = await get("down");
    expect(blocked.status).to.equal(403);
    expect(parseJson(blocked.body)).to.include({ reason: "CredentialUnavailable" });
    expect(String(parseJson(blocked.body).message)).to.match(/could not be reached/);
  });

  it("no client secret, refresh token or access token in the audit log (the canary scan also reads metrics and responses)", function () {
    const text = sidecar.auditText();
    for (const value of [CLIENT_SECRET, REFRESH_TOKEN, ...valid]) expect(text).not.to.include(value);
  });
});
