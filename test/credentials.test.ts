// Credentials at the boundary (THREATS.md I1, I4 and the "Credentials" class): every injection
// form reaches the upstream, agent-supplied copies are removed, reflections are scrubbed in every
// encoding, redirects are not followed, and anything doubtful blocks rather than leaks.
import { expect } from "chai";
import tls from "node:tls";
import zlib from "node:zlib";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { connect, parseResponse, readUntil, responseComplete } from "./helpers/raw.ts";
import {
  credential,
  parseJson,
  policy,
  secret,
  startTestSidecar,
  type TestSidecar,
} from "./helpers/sidecar.ts";

const SECRET = "k3y-Value/with+chars=";
const B64 = Buffer.from(SECRET).toString("base64");

describe("credentials: injection forms, hygiene and reflection", function () {
  let up: EchoUpstream;
  let untrusted: EchoUpstream;
  let sidecar: TestSidecar;
  let bundle: string;

  before(async function () {
    up = await startEchoUpstream({
      tls: true,
      respond: (req, res) => {
        const url = new URL(req.url, "https://x");
        if (url.pathname === "/redirect") {
          res
            .writeHead(302, { location: `https://elsewhere.example.test/?${url.searchParams.toString()}` })
            .end();
          return true;
        }
        if (url.pathname === "/trickle") {
          // The reflection arrives one byte a write, so it straddles every chunk boundary.
          res.writeHead(200, { "content-type": "text/plain" });
          const text = `before ${String(req.headers.authorization)} after`;
          let i = 0;
          const step = (): void => {
            if (i >= text.length) {
              res.end();
              return;
            }
            res.write(text[i++]);
            setImmediate(step);
          };
          step();
          return true;
        }
        if (url.pathname === "/gzip") {
          const body = zlib.gzipSync(JSON.stringify(req.headers));
          res.writeHead(200, { "content-encoding": "gzip", "content-length": body.length }).end(body);
          return true;
        }
        if (url.pathname === "/b64") {
          res
            .writeHead(200, { "x-reflect": B64 })
            .end(`raw:${SECRET} b64:${B64} url:${encodeURIComponent(SECRET)}`);
          return true;
        }
        return false;
      },
    });
    untrusted = await startEchoUpstream({ tls: true });
    const ports = [up.port];
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "bearer", hosts: ["bearer.example.test"], ports, credential: "bearer" },
          { name: "basic", hosts: ["basic.example.test"], ports, credential: "basic" },
          { name: "query", hosts: ["query.example.test"], ports, credential: "query" },
          { name: "missing", hosts: ["missing.example.test"], ports, credential: "missing" },
          {
            name: "untrusted",
            hosts: ["untrusted.example.test"],
            ports: [untrusted.port],
            credential: "bearer",
          },
        ]),
      ],
      credentials: [
        credential("bearer", "tokens", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
        credential("basic", "tokens", { basicAuth: { username: "x-access-token" } }),
        credential("query", "tokens", { queryParam: { name: "api_key" } }),
        credential("missing", "no-such-secret", { header: { name: "X-Api-Key" } }),
      ],
      secrets: [secret("agents", "tokens", { token: SECRET })],
      pins: Object.fromEntries(
        ["bearer", "basic", "query", "missing", "untrusted"].map((n) => [`${n}.example.test`, "127.0.0.1"]),
      ),
      upstreamCa: [up.caPem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });
  after(async function () {
    await sidecar.close();
    await up.close();
    await untrusted.close();
  });

  const get = (host: string, path: string, extra: string[] = []) =>
    curl(["-x", sidecar.proxyUrl, "--cacert", bundle, ...extra, `https://${host}:${up.port}${path}`]);
  const last = () => up.received.at(-1);

  it("header: agent-supplied copies (any case, duplicates, named in Connection, Proxy-Authorization) are removed", async function () {
    // HTTP/1.1: over HTTP/2 (curl's default with the sidecar) curl itself drops Connection, and a
    // header it named is an ordinary one.
    const res = await get("bearer.example.test", "/h", [
      "--http1.1",
      "-H",
      "authorization: Bearer agent-one",
      "-H",
      "AUTHORIZATION: Bearer agent-two",
      "-H",
      "Proxy-Authorization: Basic cHJveHk6cHc=",
      "-H",
      "Connection: X-Agent-Hop",
      "-H",
      "X-Agent-Hop: 1",
    ]);
    expect(res.status).to.equal(200);
    const raw = last()?.rawHeaders ?? [];
    const auth = raw.filter((_, i) => i % 2 === 0 && raw[i]?.toLowerCase() === "authorization");
    expect(auth).to.have.length(1);
    expect(last()?.headers.authorization).to.equal(`Bearer ${SECRET}`);
    expect(last()?.headers["proxy-authorization"]).to.equal(undefined);
    expect(last()?.headers["x-agent-hop"]).to.equal(undefined);
    expect(res.body).not.to.include(SECRET);
  });

  it("basicAuth: the upstream gets Basic user:secret, the echo of it is scrubbed", async function () {
    const res = await get("basic.example.test", "/b", ["-u", "agent:guess"]);
    const expected = Buffer.from(`x-access-token:${SECRET}`).toString("base64");
    expect(last()?.headers.authorization).to.equal(`Basic ${expected}`);
    expect(res.body).not.to.include(expected);
    expect(res.body).to.include("[airlock:redacted]");
  });

  it("queryParam: agent-supplied copies are removed, the key is appended, the redirect is not followed and its Location scrubbed", async function () {
    const before = up.received.length;
    const res = await get("query.example.test", "/redirect?api_key=agent&API_KEY=kept&q=1&api%5Fkey=enc");
    expect(res.status).to.equal(302);
    expect(up.received.length).to.equal(before + 1);
    const url = new URL(last()?.url ?? "", "https://x");
    expect(url.searchParams.getAll("api_key")).to.deep.equal([SECRET]);
    expect(url.searchParams.get("q")).to.equal("1");
    expect(url.searchParams.get("API_KEY")).to.equal("kept");
    expect(res.headers.location).to.be.a("string");
    expect(res.headers.location).not.to.include(encodeURIComponent(SECRET));
    expect(decodeURIComponent(res.headers.location ?? "")).not.to.include(SECRET);
    expect(res.headers.location).to.include("[airlock:redacted]");
  });

  it("a reflection split across every chunk boundary is still scrubbed", async function () {
    const res = await get("bearer.example.test", "/trickle");
    expect(res.body).to.equal("before [airlock:redacted] after");
  });

  it("a compressed reflection is decoded and scrubbed", async function () {
    const res = await get("bearer.example.test", "/gzip", ["-H", "Accept-Encoding: gzip"]);
    expect(last()?.headers["accept-encoding"]).to.equal("identity");
    expect(res.headers["content-encoding"]).to.equal(undefined);
    expect(res.body).not.to.include(SECRET);
    expect(res.body).to.include("[airlock:redacted]");
  });

  it("raw, base64 and URL-encoded reflections in headers and body are all scrubbed", async function () {
    const res = await get("bearer.example.test", "/b64");
    const seen = res.body + JSON.stringify(res.headers);
    for (const form of [SECRET, B64, encodeURIComponent(SECRET)]) expect(seen).not.to.include(form);
    expect(res.body).to.equal("raw:[airlock:redacted] b64:[airlock:redacted] url:[airlock:redacted]");
  });

  it("a missing Secret blocks with CredentialUnavailable and nothing is sent", async function () {
    const before = up.received.length;
    const res = await get("missing.example.test", "/m");
    expect(res.status).to.equal(403);
    expect(parseJson(res.body)).to.include({ reason: "CredentialUnavailable" });
    expect(up.received.length).to.equal(before);
    const metrics = await sidecar.metrics.registry.metrics();
    expect(metrics).to.match(
      /airlock_credential_errors_total\{credential="agents\/missing",reason="SecretMissing"\} 1/,
    );
  });

  it("an upstream whose certificate does not verify gets nothing: 502, no credential sent", async function () {
    const before = untrusted.received.length;
    const res = await curl([
      "-x",
      sidecar.proxyUrl,
      "--cacert",
      bundle,
      `https://untrusted.example.test:${untrusted.port}/x`,
    ]);
    expect(res.status).to.equal(502);
    expect(parseJson(res.body)).to.include({ error: "upstream_error", kind: "tls" });
    expect(untrusted.received.length).to.equal(before);
  });

  it("each request on a kept-alive intercepted connection is decided on its own Host", async function () {
    const socket = await connect(sidecar.proxyAddress.port);
    socket.write(
      `CONNECT bearer.example.test:${up.port} HTTP/1.1\r\nHost: bearer.example.test:${up.port}\r\n\r\n`,
    );
    expect(await readUntil(socket, (t) => t.includes("\r\n\r\n"))).to.match(/^HTTP\/1\.1 200/);
    const secure = tls.connect({ socket, servername: "bearer.example.test", ca: sidecar.ca.certificatePem });
    await new Promise((resolve) => secure.once("secureConnect", resolve));
    const before = up.received.length;
    secure.write(`GET /first HTTP/1.1\r\nHost: bearer.example.test:${up.port}\r\n\r\n`);
    const first = parseResponse(await readUntil(secure, responseComplete));
    expect(first.status).to.equal(200);
    secure.write(`GET /second HTTP/1.1\r\nHost: basic.example.test:${up.port}\r\n\r\n`);
    const second = parseResponse(await readUntil(secure, responseComplete));
    expect(second.status).to.equal(403);
    expect(parseJson(second.body).reason).to.equal("HostMismatch");
    expect(up.received.length).to.equal(before + 1);
    secure.destroy();
  });

  it("the secret never reaches the audit log or the metrics", async function () {
    const text = sidecar.auditText() + (await sidecar.metrics.registry.metrics());
    for (const form of [SECRET, B64, encodeURIComponent(SECRET)]) expect(text).not.to.include(form);
  });
});
