// WebSocket through the credential path, with a real client and server (the `ws` package) over
// TLS through the explicit proxy: the upgrade is decided like any request, the credential goes on
// the handshake, and every frame the upstream sends passes the scrubber (THREATS.md I1, I3, I4).
import { expect } from "chai";
import https from "node:https";
import type { IncomingMessage } from "node:http";
import net from "node:net";
import tls from "node:tls";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { MAX_FRAME_BYTES } from "../sidecar/proxy/websocket.ts";
import { CertificateAuthority } from "../sidecar/tls/ca.ts";
import { credential, policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

const API = "ws-api.example.test";
const OPEN = "ws-open.example.test";
const EVIL = "ws-evil.example.test";
const SECRET = "ws-s3cr3t-4b9e1c7a5d";

/** A ws message as text, whatever form it arrived in. */
function messageText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  return Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data).toString("utf8");
}

interface Handshake {
  host: string;
  url: string;
  headers: IncomingMessage["headers"];
}

describe("WebSocket through the credential path (ws client and server, explicit proxy)", function () {
  let sidecar: TestSidecar;
  let server: https.Server;
  let port = 0;
  const handshakes: Handshake[] = [];

  before(async function () {
    const upstreamCa = new CertificateAuthority();
    server = https.createServer({
      SNICallback: (name, callback) => {
        callback(null, upstreamCa.contextFor(name));
      },
    });
    const wss = new WebSocketServer({
      server,
      verifyClient: (info, callback) => {
        // An upstream refusing the upgrade, with the credential in its answer.
        if (info.req.url === "/deny")
          callback(false, 401, `denied for ${String(info.req.headers.authorization)}`);
        else callback(true);
      },
    });
    wss.on("connection", (ws, req) => {
      handshakes.push({ host: req.headers.host ?? "", url: req.url ?? "", headers: req.headers });
      const seen = req.headers.authorization ?? "";
      ws.on("message", (data: RawData) => {
        const text = messageText(data);
        if (text === "echo-credential") ws.send(`you sent ${seen}`);
        else if (text === "split-credential") {
          // One message in two fragments, the value cut in the middle.
          const half = Math.floor(seen.length / 2);
          ws.send(`a ${seen.slice(0, half)}`, { fin: false });
          ws.send(`${seen.slice(half)} b`, { fin: true });
        } else if (text === "ping-credential") ws.ping(Buffer.from(seen.slice(-20)));
        else ws.send(`echo ${text}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "api", hosts: [API], ports: [port], credential: "api-token" },
          // Constrained by path, so intercepted: decided per request without a credential.
          { name: "open", hosts: [OPEN], ports: [port], paths: ["/socket/**"] },
        ]),
      ],
      credentials: [
        credential("api-token", "api-secret", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
      ],
      secrets: [secret("agents", "api-secret", { token: SECRET })],
      pins: { [API]: "127.0.0.1", [OPEN]: "127.0.0.1", [EVIL]: "127.0.0.1" },
      upstreamCa: [upstreamCa.certificatePem],
    });
  });

  after(async function () {
    await sidecar.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** A CONNECT tunnel through the sidecar to host:port, ready for TLS. */
  async function tunnel(host: string): Promise<net.Socket> {
    const socket = net.connect({ host: "127.0.0.1", port: sidecar.proxyAddress.port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
    const answer = await new Promise<string>((resolve) => {
      socket.once("data", (chunk: Buffer) => {
        resolve(chunk.toString("latin1"));
      });
    });
    expect(answer).to.match(/^HTTP\/1\.1 200 /);
    return socket;
  }

  /** A ws client through the sidecar; resolves with the socket open, or with the refusal. */
  async function open(
    host: string,
    path: string,
  ): Promise<
    | { ok: true; ws: WebSocket; headers: IncomingMessage["headers"] }
    | { ok: false; status: number; body: string; decision: unknown }
  > {
    const socket = await tunnel(host);
    const ws = new WebSocket(`wss://${host}:${port}${path}`, {
      headers: { Authorization: "Bearer agent-guess" },
      createConnection: () => tls.connect({ socket, servername: host, ca: sidecar.ca.certificatePem }),
    });
    return new Promise((resolve, reject) => {
      ws.once("upgrade", (res: IncomingMessage) => {
        ws.once("open", () => {
          resolve({ ok: true, ws, headers: res.headers });
        });
      });
      ws.once("unexpected-response", (_req, res: IncomingMessage) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => {
          resolve({
            ok: false,
            status: res.statusCode ?? 0,
            body,
            decision: res.headers["x-airlock-decision"],
          });
        });
      });
      ws.once("error", reject);
    });
  }

  const next = (ws: WebSocket): Promise<string> =>
    new Promise((resolve) =>
      ws.once("message", (data: RawData) => {
        resolve(messageText(data));
      }),
    );

  it("inject: the handshake carries the credential, frames flow both ways, the agent never sees the value", async function () {
    const before = handshakes.length;
    const opened = await open(API, "/v1/stream");
    if (!opened.ok) throw new Error(`refused: ${opened.status} ${opened.body}`);
    const { ws, headers } = opened;
    expect(headers["x-airlock-decision"]).to.equal("inject");
    const got = handshakes.slice(before);
    expect(got).to.have.length(1);
    expect(got[0]?.headers.authorization).to.equal(`Bearer ${SECRET}`);
    // The agent offered compression; the upstream was not offered it (frames must stay readable).
    expect(got[0]?.headers["sec-websocket-extensions"]).to.equal(undefined);
    ws.send("hello");
    expect(await next(ws)).to.equal("echo hello");
    ws.send("echo-credential");
    // The whole header value as sent is one of the forms scrubbed.
    expect(await next(ws)).to.equal("you sent [airlock:redacted]");
    ws.send("split-credential");
    const split = await next(ws);
    expect(split).to.not.include(SECRET);
    expect(split).to.include("[airlock:redacted]");
    ws.send("ping-credential");
    const ping = await new Promise<Buffer>((resolve) => ws.once("ping", resolve));
    expect(ping.toString()).to.not.include(SECRET.slice(-10));
    ws.send("still open");
    expect(await next(ws)).to.equal("echo still open");
    ws.close();
    const line = sidecar.audit.at(-1) ?? {};
    expect(line).to.include({ outcome: "inject", status: 101, host: API, path: "/v1/stream" });
  });

  it("allow on an intercepted host: decided by its path, relayed without a credential", async function () {
    const before = handshakes.length;
    const opened = await open(OPEN, "/socket/a");
    if (!opened.ok) throw new Error(`refused: ${opened.status} ${opened.body}`);
    expect(opened.headers["x-airlock-decision"]).to.equal("allow");
    opened.ws.send("hi");
    expect(await next(opened.ws)).to.equal("echo hi");
    opened.ws.close();
    expect(handshakes.slice(before)[0]?.headers.authorization).to.equal("Bearer agent-guess");

    const refused = await open(OPEN, "/elsewhere");
    expect(refused).to.include({ ok: false, status: 403, decision: "block" });
    expect(handshakes.length).to.equal(before + 1);
  });

  it("block: an upgrade no rule allows gets a 403 and never reaches the upstream", async function () {
    const before = handshakes.length;
    const socket = net.connect({ host: "127.0.0.1", port: sidecar.proxyAddress.port });
    const text = await new Promise<string>((resolve) => {
      let got = "";
      socket.on("data", (c: Buffer) => (got += c.toString("latin1")));
      socket.on("close", () => {
        resolve(got);
      });
      socket.write(`CONNECT ${EVIL}:${port} HTTP/1.1\r\nHost: ${EVIL}:${port}\r\n\r\n`);
    });
    expect(text.split("\r\n")[0]).to.equal("HTTP/1.1 403 Forbidden");
    expect(handshakes.length).to.equal(before);
  });

  it("an upstream refusing the upgrade: the agent gets its status with the value scrubbed", async function () {
    const refused = await open(API, "/deny");
    expect(refused).to.include({ ok: false, status: 401, decision: "inject" });
    if (refused.ok) return;
    expect(refused.body).to.include("[airlock:redacted]");
    expect(refused.body).to.not.include(SECRET);
  });

  it("a frame over the limit ends that connection; the next one works", async function () {
    const opened = await open(API, "/v1/big");
    if (!opened.ok) throw new Error(`refused: ${opened.status} ${opened.body}`);
    const closed = new Promise<number>((resolve) => opened.ws.once("close", resolve));
    opened.ws.on("error", () => undefined);
    opened.ws.send(Buffer.alloc(MAX_FRAME_BYTES + 1));
    expect(await closed).to.be.a("number");
    const again = await open(API, "/v1/again");
    if (!again.ok) throw new Error(`refused: ${again.status} ${again.body}`);
    again.ws.send("after");
    expect(await next(again.ws)).to.equal("echo after");
    again.ws.close();
  });
});
