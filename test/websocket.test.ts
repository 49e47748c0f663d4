// WebSocket through the credential path, with a real client and server (the `ws` package) over
// TLS through the explicit proxy: the upgrade is decided like any request, the credential goes on
// the handshake, and every frame the upstream sends passes the scrubber (THREATS.md I1, I3, I4).
import { expect } from "chai";
import { createHash } from "node:crypto";
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
    // The handshake's answer reflects the credential in a header of its own.
    wss.on("headers", (headers: string[], req: IncomingMessage) => {
      headers.push(`X-Echo: ${req.headers.authorization ?? ""}`);
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
    expect(headers["x-echo"], "the 101's headers are scrubbed").to.equal("[airlock:redacted]");
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

describe("WebSocket from a hostile upstream (raw TLS server): what cannot be scrubbed never reaches the agent", function () {
  const HOSTILE = "ws-hostile.example.test";
  const KEY = "hostile-k3y-8d1f0a6c2e";
  let sidecar: TestSidecar;
  let server: tls.Server;
  let port = 0;

  /** A 101 for `key`, with `extra` header lines. */
  const switching = (key: string, extra = ""): string =>
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64")}\r\n${extra}\r\n`;
  /** An unmasked text frame with `payload`, its first byte's flags given. */
  const frame = (first: number, payload: string, maskKey?: Buffer): Buffer => {
    const body = Buffer.from(payload);
    if (maskKey)
      for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (maskKey[i % 4] as number);
    return Buffer.concat([
      Buffer.from([first, (maskKey ? 0x80 : 0) | body.length]),
      maskKey ?? Buffer.alloc(0),
      body,
    ]);
  };

  before(async function () {
    const upstreamCa = new CertificateAuthority();
    server = tls.createServer(upstreamCa.serverCredentials(HOSTILE), (socket) => {
      let head = "";
      socket.on("error", () => socket.destroy());
      socket.on("data", (chunk: Buffer) => {
        head += chunk.toString("latin1");
        if (!head.includes("\r\n\r\n")) return;
        const path = /^GET (\S+)/.exec(head)?.[1] ?? "";
        const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? "";
        const seen = /authorization: *([^\r]+)/i.exec(head)?.[1] ?? "";
        head = "";
        if (path === "/extension")
          socket.write(switching(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"));
        else if (path === "/masked")
          socket.write(
            Buffer.concat([Buffer.from(switching(key)), frame(0x81, seen, Buffer.from([1, 2, 3, 4]))]),
          );
        else if (path === "/rsv")
          socket.write(Buffer.concat([Buffer.from(switching(key)), frame(0xc1, seen)]));
        else {
          // A sound frame, then a close, then the connection ends.
          socket.end(
            Buffer.concat([Buffer.from(switching(key)), frame(0x81, `plain ${seen}`), frame(0x88, "")]),
          );
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
    sidecar = await startTestSidecar({
      policies: [policy("hostile", [{ name: "h", hosts: [HOSTILE], ports: [port], credential: "h" }])],
      credentials: [
        credential("h", "h-secret", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
      ],
      secrets: [secret("agents", "h-secret", { token: KEY })],
      pins: { [HOSTILE]: "127.0.0.1" },
      upstreamCa: [upstreamCa.certificatePem],
    });
  });

  after(async function () {
    await sidecar.close();
    await new Promise((resolve) => server.close(resolve));
  });

  /** What a ws client saw of `path`: its messages, the status it was refused with, how it ended. */
  async function attempt(path: string): Promise<{ messages: string[]; status?: number; body: string }> {
    const socket = net.connect({ host: "127.0.0.1", port: sidecar.proxyAddress.port });
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(`CONNECT ${HOSTILE}:${port} HTTP/1.1\r\nHost: ${HOSTILE}:${port}\r\n\r\n`);
    await new Promise((resolve) => socket.once("data", resolve));
    const ws = new WebSocket(`wss://${HOSTILE}:${port}${path}`, {
      createConnection: () => tls.connect({ socket, servername: HOSTILE, ca: sidecar.ca.certificatePem }),
    });
    const seen: { messages: string[]; status?: number; body: string } = { messages: [], body: "" };
    ws.on("message", (data: RawData) => seen.messages.push(messageText(data)));
    ws.on("error", () => undefined);
    return new Promise((resolve) => {
      ws.once("unexpected-response", (_req, res: IncomingMessage) => {
        seen.status = res.statusCode;
        res.on("data", (chunk: Buffer) => (seen.body += chunk.toString()));
        res.on("end", () => {
          resolve(seen);
        });
      });
      ws.once("close", () => {
        resolve(seen);
      });
    });
  }

  it("a control case: a sound frame carrying the value arrives scrubbed", async function () {
    const seen = await attempt("/sound");
    expect(seen.messages).to.deep.equal(["plain [airlock:redacted]"]);
  });

  it("a 101 agreeing to an extension none was offered: 502, nothing relayed", async function () {
    const seen = await attempt("/extension");
    expect(seen.status).to.equal(502);
    expect(JSON.parse(seen.body)).to.include({ error: "upstream_error", kind: "protocol" });
  });

  for (const [path, what, reason] of [
    ["/masked", "a masked frame", "an upstream frame was masked"],
    [
      "/rsv",
      "a frame with an extension bit set (compressed: unreadable)",
      "a frame uses an extension none was negotiated for",
    ],
  ] as const)
    it(`${what} from the upstream: the sidecar closes the connection, the frame never reaches the agent`, async function () {
      const seen = await attempt(path);
      expect(seen.messages).to.deep.equal([]);
      // The sidecar's own refusal (the client would refuse such a frame too): its warning says why.
      expect(sidecar.auditText()).to.include(reason);
      expect(sidecar.auditText()).to.not.include(KEY);
    });
});
