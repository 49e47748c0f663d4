// GitHub App credentials against a test GitHub Enterprise server on this machine: its token
// endpoint checks the App's RS256 JWT with the App's public key (signature, iat, exp, iss) and
// issues installation tokens that expire; its REST API and its git (real `git http-backend` behind a
// token check) accept only a current token. The agent holds nothing: curl calls the API and real git
// clones a repository through the sidecar.
import { expect } from "chai";
import { execFile, spawn } from "node:child_process";
import { generateKeyPairSync, verify, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { REDACTED } from "../sidecar/proxy/scrub.ts";
import { StaticSecrets } from "../sidecar/proxy/secrets.ts";
import { CertificateAuthority } from "../sidecar/tls/ca.ts";
import { canary } from "./helpers/canary.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { parseJson, policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

const run = promisify(execFile);
const GHE = "ghe.example.test";
const APP_ID = 12345;

interface Issued {
  installation: string;
  body: Record<string, unknown>;
}

/** Checks a GitHub App JWT as GitHub does; returns why it is refused, or undefined. */
function jwtProblem(jwt: string, publicKey: KeyObject): string | undefined {
  const [head = "", payload = "", signature = ""] = jwt.split(".");
  const decode = (part: string): Record<string, unknown> =>
    JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
  if (decode(head).alg !== "RS256") return "alg";
  if (
    !verify("RSA-SHA256", Buffer.from(`${head}.${payload}`), publicKey, Buffer.from(signature, "base64url"))
  )
    return "signature";
  const claims = decode(payload);
  const now = Math.floor(Date.now() / 1000);
  const iat = Number(claims.iat);
  const exp = Number(claims.exp);
  if (String(claims.iss) !== String(APP_ID)) return "iss";
  if (!(iat <= now && exp > now && exp - iat <= 600)) return "iat/exp";
  return undefined;
}

describe("GitHub App credentials (a test GitHub Enterprise: token endpoint, REST API, git http-backend)", function () {
  this.timeout(30_000);
  let sidecar: TestSidecar;
  let server: https.Server;
  let port = 0;
  let bundle = "";
  let root = "";
  const issued: Issued[] = [];
  /** Token → when it expires (ms). */
  const tokens = new Map<string, number>();
  const apiSaw: string[] = [];

  /** The token a request carries (REST: "token X"; git: Basic x-access-token:X), if current. */
  function currentToken(req: IncomingMessage): string | undefined {
    const auth = req.headers.authorization ?? "";
    let token = "";
    if (auth.startsWith("token ")) token = auth.slice(6);
    else if (auth.startsWith("Basic ")) {
      const [user, pass = ""] = Buffer.from(auth.slice(6), "base64").toString("utf8").split(":");
      if (user === "x-access-token") token = pass;
    }
    const expires = tokens.get(token);
    return expires !== undefined && expires > Date.now() ? token : undefined;
  }

  /** git's smart HTTP through `git http-backend` (CGI) for a request with a current token. */
  function gitBackend(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "https://x");
    const cgi = spawn("git", ["http-backend"], {
      env: {
        ...process.env,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? "GET",
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_USER: "x-access-token",
        REMOTE_ADDR: "127.0.0.1",
        GIT_PROTOCOL: String(req.headers["git-protocol"] ?? ""),
      },
    });
    req.pipe(cgi.stdin);
    const chunks: Buffer[] = [];
    cgi.stdout.on("data", (c: Buffer) => chunks.push(c));
    cgi.on("close", () => {
      const out = Buffer.concat(chunks);
      const split = out.indexOf("\r\n\r\n");
      const headText = out.subarray(0, split).toString("latin1");
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of headText.split("\r\n")) {
        const [name = "", ...rest] = line.split(":");
        const value = rest.join(":").trim();
        if (name.toLowerCase() === "status") status = Number(value.split(" ")[0]);
        else headers[name] = value;
      }
      res.writeHead(status, headers).end(out.subarray(split + 4));
    });
  }

  before(async function () {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    // A repository to clone: one commit on main.
    root = mkdtempSync(join(tmpdir(), "airlock-ghe-"));
    const work = join(root, "work");
    const git = (args: string[], cwd = root) => run("git", args, { cwd });
    await git(["init", "-q", "--bare", "-b", "main", join(root, "acme/app.git")]);
    await git(["init", "-q", "-b", "main", work]);
    await run("sh", ["-c", "echo 'hello from the app repository' > README"], { cwd: work });
    await git(["add", "README"], work);
    await git(["-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "-m", "first"], work);
    await git(["push", "-q", join(root, "acme/app.git"), "main"], work);

    const ca = new CertificateAuthority();
    server = https.createServer(
      {
        SNICallback: (name, cb) => {
          cb(null, ca.contextFor(name));
        },
      },
      (req, res) => {
        const path = req.url ?? "";
        const install = /^\/api\/v3\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
        if (install && req.method === "POST") {
          const chunks: Buffer[] = [];
          req.on("data", (c: Buffer) => chunks.push(c));
          req.on("end", () => {
            const jwt = (req.headers.authorization ?? "").replace(/^Bearer /, "");
            const problem = jwtProblem(jwt, publicKey);
            if (problem !== undefined) {
              res
                .writeHead(401, { "content-type": "application/json" })
                .end(JSON.stringify({ message: problem }));
              return;
            }
            const installation = install[1] ?? "";
            issued.push({
              installation,
              body: JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>,
            });
            const token = `ghs_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
            canary.secret(token, "GitHub installation token");
            // Installation 43's tokens live two seconds; the others an hour.
            const expires = Date.now() + (installation === "43" ? 2_000 : 3_600_000);
            tokens.set(token, expires);
            res
              .writeHead(201, { "content-type": "application/json" })
              .end(JSON.stringify({ token, expires_at: new Date(expires).toISOString() }));
          });
          return;
        }
        const token = currentToken(req);
        if (path.startsWith("/api/v3/")) {
          apiSaw.push(req.headers.authorization ?? "");
          if (token === undefined) {
            res.writeHead(401).end('{"message":"Bad credentials"}');
            return;
          }
          res
            .writeHead(200, { "content-type": "application/json" })
            .end(JSON.stringify({ full_name: "acme/app", seen: req.headers.authorization }));
          return;
        }
        if (token === undefined) {
          res.writeHead(401, { "www-authenticate": 'Basic realm="git"' }).end();
          return;
        }
        gitBackend(req, res);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
    const app = (installationId: number) => ({
      appId: APP_ID,
      installationId,
      apiUrl: `https://${GHE}:${String(port)}/api/v3`,
    });
    const credential = (name: string, injection: unknown, githubApp: unknown) => ({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "Credential",
      metadata: { name, namespace: "agents" },
      spec: { secretRef: { name: "app-key", key: "private-key.pem" }, injection, hosts: [GHE], githubApp },
    });
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "api", hosts: [GHE], ports: [port], paths: ["/api/v3/repos/**"], credential: "gh-api" },
          { name: "short", hosts: [GHE], ports: [port], paths: ["/api/v3/short/**"], credential: "gh-short" },
          { name: "git", hosts: [GHE], ports: [port], paths: ["/acme/**"], credential: "gh-git" },
        ]),
      ],
      credentials: [
        credential(
          "gh-api",
          { header: { name: "Authorization", valuePrefix: "token " } },
          {
            ...app(42),
            repositories: ["app"],
            permissions: { contents: "read" },
          },
        ),
        credential("gh-short", { header: { name: "Authorization", valuePrefix: "token " } }, app(43)),
        credential("gh-git", { basicAuth: { username: "x-access-token" } }, app(44)),
      ],
      secrets: [secret("agents", "app-key", { "private-key.pem": privatePem })],
      pins: { [GHE]: "127.0.0.1" },
      upstreamCa: [ca.certificatePem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });

  after(async function () {
    await sidecar.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(root, { recursive: true, force: true });
  });

  const get = (path: string) =>
    curl(["-x", sidecar.proxyUrl, "--cacert", bundle, `https://${GHE}:${String(port)}${path}`]);

  it("REST API: 50 concurrent first requests, one JWT exchange (narrowed as asked); the API sees the token, the agent a redaction", async function () {
    const answers = await Promise.all(Array.from({ length: 50 }, () => get("/api/v3/repos/acme/app")));
    for (const answer of answers) {
      expect(answer.status, answer.body).to.equal(200);
      expect(parseJson(answer.body)).to.include({ full_name: "acme/app", seen: REDACTED });
    }
    const mine = issued.filter((i) => i.installation === "42");
    expect(mine).to.have.length(1);
    expect(mine[0]?.body).to.deep.equal({ repositories: ["app"], permissions: { contents: "read" } });
    expect(new Set(apiSaw.slice(-50)).size).to.equal(1);
    expect(apiSaw.at(-1)).to.match(/^token ghs_/);
  });

  it("an installation token about to expire is replaced by one exchange; the API never sees an expired one", async function () {
    const first = await get("/api/v3/short/one");
    expect(first.status).to.equal(200);
    const before = apiSaw.at(-1);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const answers = await Promise.all(Array.from({ length: 10 }, () => get("/api/v3/short/two")));
    for (const answer of answers) expect(answer.status, answer.body).to.equal(200);
    expect(issued.filter((i) => i.installation === "43")).to.have.length(2);
    expect(apiSaw.at(-1)).to.not.equal(before);
  });

  it("git clone over HTTPS through the sidecar: Basic x-access-token with a fresh token, the agent holding nothing", async function () {
    const dest = join(root, "clone");
    const { stderr } = await run(
      "git",
      [
        ...["-c", `http.proxy=${sidecar.proxyUrl}`, "-c", `http.sslCAInfo=${bundle}`],
        ...["clone", "-q", `https://${GHE}:${String(port)}/acme/app.git`, dest],
      ],
      {
        env: { ...process.env, GIT_SSL_CAINFO: bundle, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "/bin/false" },
      },
    );
    expect(readFileSync(join(dest, "README"), "utf8"), stderr).to.equal("hello from the app repository\n");
    expect(issued.filter((i) => i.installation === "44")).to.have.length(1);
  });

  it("a key GitHub does not know (a JWT it refuses) blocks with CredentialUnavailable, no secret in the message", async function () {
    // Replace the key: the JWT no longer verifies.
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const other = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    canary.secret(other, "another App key");
    sidecar.gate.setSecrets(new StaticSecrets([secret("agents", "app-key", { "private-key.pem": other })]));
    const blocked = await get("/api/v3/repos/acme/other");
    expect(blocked.status).to.equal(403);
    const body = parseJson(blocked.body);
    expect(body).to.include({ reason: "CredentialUnavailable" });
    expect(String(body.message)).to.match(/answered 401 without a token/);
  });
});
