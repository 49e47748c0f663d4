// The sidecar's own Kubernetes client (kube-api.ts): reading kubeconfigs and the in-cluster files,
// and the protocol edges of requests and watches against a real HTTPS server that answers as the
// API server does (the happy paths against a real kube-apiserver are in test/kube-secrets.test.ts).
import { expect } from "chai";
import type { IncomingMessage, ServerResponse } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority } from "../tls/ca.ts";
import { startTlsServer, type TlsTestServer } from "../../test/helpers/tls-server.ts";
import { eventually } from "../../test/helpers/eventually.ts";
import {
  inClusterConfig,
  KubeApi,
  KubeApiError,
  kubeconfigFromFile,
  type KubeApiConfig,
} from "./kube-api.ts";

/** A kubeconfig whose current context is `cluster` + `user`, written to `dir`. */
function kubeconfig(dir: string, cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  const path = join(dir, "config");
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster }],
      users: [{ name: "u", user }],
      contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
      "current-context": "ctx",
    }),
  );
  return path;
}

describe("kube-api: kubeconfig and in-cluster config", function () {
  let dir: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), "airlock-kube-api-"));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads server, CA data, TLS server name and token of the current context", function () {
    const config = kubeconfigFromFile(
      kubeconfig(
        dir,
        {
          server: "https://10.0.0.1:6443",
          "certificate-authority-data": Buffer.from("PEM").toString("base64"),
          "tls-server-name": "kubernetes",
        },
        { token: "abc" },
      ),
    );
    expect(config.server.href).to.equal("https://10.0.0.1:6443/");
    expect(config.ca?.toString()).to.equal("PEM");
    expect(config.servername).to.equal("kubernetes");
    expect(config.token?.()).to.equal("abc");
  });

  it("takes relative file names from the kubeconfig's folder, and reads a tokenFile anew each time", function () {
    writeFileSync(join(dir, "ca.pem"), "CA");
    writeFileSync(join(dir, "client.crt"), "CERT");
    writeFileSync(join(dir, "client.key"), "KEY");
    writeFileSync(join(dir, "token"), "first\n");
    const config = kubeconfigFromFile(
      kubeconfig(
        dir,
        { server: "https://api.test", "certificate-authority": "ca.pem" },
        { "client-certificate": "client.crt", "client-key": "client.key", tokenFile: "token" },
      ),
    );
    expect([config.ca?.toString(), config.cert?.toString(), config.key?.toString()]).to.deep.equal([
      "CA",
      "CERT",
      "KEY",
    ]);
    expect(config.token?.()).to.equal("first");
    writeFileSync(join(dir, "token"), "rotated\n");
    expect(config.token?.()).to.equal("rotated");
  });

  const refusals: [string, () => string, RegExp][] = [
    [
      "no current-context",
      () => {
        const path = join(dir, "config");
        writeFileSync(path, "apiVersion: v1\nkind: Config\n");
        return path;
      },
      /no current-context; set one \(kubectl config use-context NAME\)/,
    ],
    [
      "a current-context that is not defined",
      () => {
        const path = join(dir, "config");
        writeFileSync(path, "current-context: gone\ncontexts: []\n");
        return path;
      },
      /no context named gone/,
    ],
    [
      "YAML that does not parse",
      () => (writeFileSync(join(dir, "c"), "a: [\n"), join(dir, "c")),
      /kubeconfig .*c: /,
    ],
    ["a missing file", () => join(dir, "absent"), /kubeconfig .*absent: ENOENT/],
    [
      "an exec credential",
      () => kubeconfig(dir, { server: "https://a" }, { exec: { command: "aws" } }),
      /user u: exec is not supported by the sidecar; give it a token, a tokenFile or a client certificate/,
    ],
    [
      "an auth-provider",
      () => kubeconfig(dir, { server: "https://a" }, { "auth-provider": { name: "oidc" } }),
      /auth-provider is not supported/,
    ],
    [
      "a client certificate without its key",
      () => kubeconfig(dir, { server: "https://a" }, { "client-certificate-data": "QQ==" }),
      /client certificate or key without the other/,
    ],
    ["no server", () => kubeconfig(dir, {}, { token: "t" }), /cluster c has no server/],
    ["a server that is not a URL", () => kubeconfig(dir, { server: "api:6443" }, {}), /is not http\(s\)/],
    [
      "a CA file that is not there",
      () => kubeconfig(dir, { server: "https://a", "certificate-authority": "nope.pem" }, {}),
      /certificate-authority .*nope\.pem: ENOENT/,
    ],
    [
      "a proxy-url",
      () => kubeconfig(dir, { server: "https://a", "proxy-url": "http://p:3128" }, {}),
      /proxy-url is not supported/,
    ],
  ];
  for (const [what, make, message] of refusals)
    it(`refuses ${what}, saying what to fix`, function () {
      expect(() => kubeconfigFromFile(make())).to.throw(message);
    });

  it("in a pod: the service's host (IPv6 in brackets) and port, the mounted CA, the token read anew", function () {
    writeFileSync(join(dir, "ca.crt"), "CA");
    writeFileSync(join(dir, "token"), "one");
    const env = { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" };
    const config = inClusterConfig(env, dir);
    expect(config.server.href).to.equal("https://[fd00::1]/");
    expect(config.ca?.toString()).to.equal("CA");
    expect(config.token?.()).to.equal("one");
    writeFileSync(join(dir, "token"), "two");
    expect(config.token?.()).to.equal("two");
    rmSync(join(dir, "token"));
    expect(() => config.token?.()).to.throw(/cannot read the token at .*token \(ENOENT\)/);
  });

  it("in a pod: refuses to start without the service's address or the CA, saying which", function () {
    expect(() => inClusterConfig({}, dir)).to.throw(/KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT/);
    expect(() =>
      inClusterConfig({ KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" }, dir),
    ).to.throw(
      /cannot read the API server's CA at .*ca\.crt \(ENOENT\); is the service-account token volume mounted\?/,
    );
  });
});

describe("kube-api: requests and watches over TLS", function () {
  let server: TlsTestServer;
  let handler: (req: IncomingMessage, res: ServerResponse) => void;
  let seen: IncomingMessage[];
  let api: KubeApi;
  let token: string;
  const ca = new CertificateAuthority();
  const config = (): KubeApiConfig => ({
    server: new URL(`https://127.0.0.1:${String(server.port)}`),
    ca: Buffer.from(ca.certificatePem),
    servername: "api.test",
    token: () => token,
  });

  before(async function () {
    server = await startTlsServer((req, res) => {
      seen.push(req);
      handler(req, res);
    }, ca);
  });
  beforeEach(function () {
    seen = [];
    token = "t1";
    api = new KubeApi(config(), { watchSeconds: 1, graceSeconds: 1 });
  });
  afterEach(function () {
    api.close();
  });
  after(async function () {
    await server.close();
  });

  /** Runs one watch to its end: the events it delivered and how it ended. */
  const watchOnce = (
    path = "/api/v1/namespaces/n/secrets",
  ): Promise<{ events: [string, unknown][]; err: Error | null }> =>
    new Promise((resolve) => {
      const events: [string, unknown][] = [];
      api.watch(
        path,
        { fieldSelector: "metadata.name=s" },
        (type, object) => events.push([type, object]),
        (err) => {
          resolve({ events, err });
        },
      );
    });

  it("sends the token as read at each request, and answers JSON", async function () {
    handler = (req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ auth: req.headers.authorization }));
    };
    expect(await api.request("GET", "/api/v1/namespaces/n/secrets/s")).to.deep.equal({ auth: "Bearer t1" });
    token = "t2";
    expect(await api.request("GET", "/api/v1/namespaces/n/secrets/s")).to.deep.equal({ auth: "Bearer t2" });
  });

  it("a refusal is a KubeApiError with the status code and the Status message", async function () {
    handler = (_req, res) => {
      res.statusCode = 409;
      res.end(JSON.stringify({ kind: "Status", code: 409, message: "the object has been modified" }));
    };
    const err = await api.request("PUT", "/x", { a: 1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(KubeApiError);
    expect((err as KubeApiError).code).to.equal(409);
    expect((err as KubeApiError).message).to.equal("PUT /x: 409 the object has been modified");
  });

  it("an answer that is not JSON fails without quoting it (it may be a Secret's data)", async function () {
    handler = (_req, res) => res.end("token=hunter2");
    const err = await api.request("GET", "/api/v1/namespaces/n/secrets/s").then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as KubeApiError).message).to.equal(
      "GET /api/v1/namespaces/n/secrets/s: an answer that is not JSON",
    );
  });

  it("a server whose certificate the CA did not sign is refused (code 0, nothing sent)", async function () {
    const other = new KubeApi({ ...config(), ca: Buffer.from(new CertificateAuthority().certificatePem) });
    handler = (_req, res) => res.end("{}");
    const err = await other.request("GET", "/x").then(
      () => null,
      (e: unknown) => e,
    );
    other.close();
    expect((err as KubeApiError).code).to.equal(0);
    expect(seen).to.have.length(0);
  });

  it("a watch delivers events split anywhere across chunks, and ends with null when the server ends it", async function () {
    handler = (_req, res) => {
      const body =
        JSON.stringify({ type: "ADDED", object: { data: { k: "dg==" } } }) +
        "\n" +
        JSON.stringify({ type: "MODIFIED", object: { data: { k: "dw==" } } }) +
        "\n";
      res.writeHead(200, { "content-type": "application/json" });
      // Seven bytes at a time: lines are cut in the middle, objects too.
      let i = 0;
      const next = (): void => {
        if (i >= body.length) {
          res.end();
          return;
        }
        res.write(body.slice(i, i + 7));
        i += 7;
        setImmediate(next);
      };
      next();
    };
    const { events, err } = await watchOnce();
    expect(err).to.equal(null);
    expect(events).to.deep.equal([
      ["ADDED", { data: { k: "dg==" } }],
      ["MODIFIED", { data: { k: "dw==" } }],
    ]);
    const query = new URL(seen[0]?.url ?? "", "https://x").searchParams;
    expect(query.get("watch")).to.equal("true");
    expect(query.get("fieldSelector")).to.equal("metadata.name=s");
    expect(Number(query.get("timeoutSeconds"))).to.be.within(1, 2);
  });

  it("an ERROR event (410 Gone) ends the watch with that code", async function () {
    handler = (_req, res) => {
      res.writeHead(200);
      res.write(
        JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, message: "too old" } }) + "\n",
      );
      // Left open: the client ends it.
    };
    const { err } = await watchOnce();
    expect((err as KubeApiError).code).to.equal(410);
    expect(err?.message).to.match(/too old/);
  });

  it("a watch refused (403) ends with the code and the Status message", async function () {
    handler = (_req, res) => {
      res.statusCode = 403;
      res.end(JSON.stringify({ kind: "Status", code: 403, message: "secrets is forbidden" }));
    };
    const { err } = await watchOnce();
    expect((err as KubeApiError).code).to.equal(403);
    expect(err?.message).to.match(/403 secrets is forbidden/);
  });

  it("a line that is not JSON ends the watch without echoing it", async function () {
    handler = (_req, res) => {
      res.writeHead(200);
      res.write("value=hunter2\n");
    };
    const { err } = await watchOnce();
    expect(err?.message).to.match(/an event that is not JSON/);
    expect(err?.message).not.to.include("hunter2");
  });

  it("a watch the server never ends is given up after its time plus the grace", async function () {
    this.timeout(10_000);
    handler = (_req, res) => {
      res.writeHead(200);
      res.write(JSON.stringify({ type: "ADDED", object: {} }) + "\n");
    };
    const started = Date.now();
    const { events, err } = await watchOnce();
    expect(events).to.have.length(1);
    expect(err?.message).to.match(/not ended by the server after 2 s/);
    expect(Date.now() - started).to.be.within(1500, 5000);
  });

  it("twelve watches open at once, and a read still goes through beside them", async function () {
    const open: ServerResponse[] = [];
    handler = (req, res) => {
      if (req.url?.includes("watch=true") === true) {
        res.writeHead(200);
        res.write("");
        open.push(res);
      } else res.end(JSON.stringify({ ok: true }));
    };
    const handles = Array.from({ length: 12 }, (_, i) =>
      api.watch(
        `/w${String(i)}`,
        {},
        () => undefined,
        () => undefined,
      ),
    );
    await eventually(() => expect(open).to.have.length(12), { what: "twelve watches at the server" });
    expect(await api.request("GET", "/read")).to.deep.equal({ ok: true });
    for (const handle of handles) handle.abort();
  });

  it("abort() ends a watch without calling done, and closes its connection", async function () {
    let closed: Promise<void> | undefined;
    handler = (req, res) => {
      res.writeHead(200);
      res.write("");
      closed = new Promise((resolve) => req.socket.on("close", resolve));
    };
    let done = false;
    const handle = api.watch(
      "/w",
      {},
      () => undefined,
      () => (done = true),
    );
    while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    handle.abort();
    await eventually(() => expect(closed, "the request reached the server").to.not.equal(undefined));
    await closed; // the server saw the connection close (the test times out otherwise)
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(done).to.equal(false);
  });
});
