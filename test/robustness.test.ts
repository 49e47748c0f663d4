// Availability and HTTP parsing (THREATS.md): malformed requests, smuggling shapes, bad TLS,
// oversized headers, silent and abruptly closed connections. Each is answered or dropped, nothing
// reaches the upstream that should not, and the sidecar keeps serving everyone else.
import { expect } from "chai";
import tls from "node:tls";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { connect, exchange, parseResponse, readUntil } from "./helpers/raw.ts";
import { credential, policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

describe("robustness: hostile and broken input never crashes the sidecar", function () {
  let up: EchoUpstream;
  let tlsUp: EchoUpstream;
  let sidecar: TestSidecar;
  let authority: string;

  before(async function () {
    up = await startEchoUpstream();
    tlsUp = await startEchoUpstream({ tls: true });
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "open", hosts: ["open.example.test"], ports: [up.port] },
          { name: "api", hosts: ["api.example.test"], ports: [tlsUp.port], credential: "api" },
        ]),
      ],
      credentials: [credential("api", "api", { header: { name: "X-Key" } })],
      secrets: [secret("agents", "api", { token: "robust-secret" })],
      pins: { "open.example.test": "127.0.0.1", "api.example.test": "127.0.0.1" },
      upstreamCa: [tlsUp.caPem],
    });
    authority = `open.example.test:${up.port}`;
  });
  after(async function () {
    await sidecar.close();
    await up.close();
    await tlsUp.close();
  });

  /** The sidecar still serves a normal request. */
  async function stillServes(): Promise<void> {
    const res = parseResponse(
      await exchange(
        sidecar.proxyAddress.port,
        `GET http://${authority}/alive HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
      ),
    );
    expect(res.status).to.equal(200);
  }

  const MALFORMED: { name: string; data: () => string; status: number }[] = [
    { name: "garbage", data: () => "\x00\x01\x02 hello\r\n\r\n", status: 400 },
    {
      name: "unknown HTTP version",
      data: () => `GET http://${authority}/ HTTP/9.9\r\nHost: ${authority}\r\n\r\n`,
      status: 400,
    },
    {
      name: "Content-Length and Transfer-Encoding together (CL.TE)",
      data: () =>
        `POST http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n`,
      status: 400,
    },
    {
      name: "two different Content-Lengths",
      data: () =>
        `POST http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
      status: 400,
    },
    {
      name: "obfuscated Transfer-Encoding",
      data: () =>
        `POST http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`,
      status: 400,
    },
    {
      name: "bare LF line endings in headers",
      data: () => `GET http://${authority}/ HTTP/1.1\nHost: ${authority}\nX: y\r\n\r\n`,
      status: 400,
    },
    {
      name: "header too large",
      data: () =>
        `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`,
      status: 431,
    },
    {
      name: "duplicate Host headers",
      data: () =>
        `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nHost: evil.example.test\r\nConnection: close\r\n\r\n`,
      status: 400,
    },
    {
      name: "Host differing from the absolute URI",
      data: () => `GET http://${authority}/ HTTP/1.1\r\nHost: evil.example.test\r\nConnection: close\r\n\r\n`,
      status: 403,
    },
    {
      name: "origin-form request to the explicit proxy",
      data: () => `GET / HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
      status: 400,
    },
    {
      name: "userinfo in the target",
      data: () => `GET http://user@${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
      status: 400,
    },
    {
      name: "NUL in the path",
      data: () => `GET http://${authority}/a%00b HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
      status: 400,
    },
    {
      name: "h2c upgrade (only WebSocket upgrades are relayed)",
      data: () =>
        `GET http://${authority}/ws HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
      status: 403,
    },
    { name: "CONNECT without a port", data: () => "CONNECT open.example.test HTTP/1.1\r\n\r\n", status: 400 },
  ];

  for (const c of MALFORMED) {
    it(`${c.name}: answered ${c.status}, nothing forwarded`, async function () {
      const before = up.received.length;
      const text = await exchange(sidecar.proxyAddress.port, c.data());
      expect(parseResponse(text).status).to.equal(c.status);
      expect(up.received.length).to.equal(before);
      await stillServes();
    });
  }

  it("bytes sent after a refused CONNECT are never forwarded", async function () {
    const before = up.received.length;
    const text = await exchange(
      sidecar.proxyAddress.port,
      `CONNECT evil.example.test:${up.port} HTTP/1.1\r\n\r\nGET http://${authority}/after-refusal HTTP/1.1\r\nHost: ${authority}\r\n\r\n`,
    );
    expect(parseResponse(text).status).to.equal(403);
    expect(text.match(/HTTP\/1\.1/g)).to.have.length(1);
    expect(up.received.length).to.equal(before);
  });

  it("garbage inside an intercepted CONNECT tunnel is refused", async function () {
    const socket = await connect(sidecar.proxyAddress.port);
    socket.write(`CONNECT api.example.test:${tlsUp.port} HTTP/1.1\r\n\r\n`);
    expect(await readUntil(socket, (t) => t.includes("\r\n\r\n"))).to.match(/ 200 /);
    socket.write("\x16\x03\x01\x00\x05hello-not-a-handshake");
    await readUntil(socket, () => false, 1000);
    expect(socket.destroyed || socket.readableEnded).to.equal(true);
    socket.destroy();
    await stillServes();
  });

  it("a TLS client that gives up mid-handshake, or sends an SNI other than the CONNECT name", async function () {
    const socket = await connect(sidecar.proxyAddress.port);
    socket.write(`CONNECT api.example.test:${tlsUp.port} HTTP/1.1\r\n\r\n`);
    await readUntil(socket, (t) => t.includes("\r\n\r\n"));
    const secure = tls.connect({ socket, servername: "other.example.test", rejectUnauthorized: false });
    const error = await new Promise<Error>((resolve) => secure.once("error", resolve));
    expect(error.message).to.match(/alert|handshake|socket/i);
    const half = await connect(sidecar.proxyAddress.port);
    half.write(`CONNECT api.example.test:${tlsUp.port} HTTP/1.1\r\n\r\n`);
    await readUntil(half, (t) => t.includes("\r\n\r\n"));
    half.write(Buffer.from([22, 3, 1, 2, 0, 1, 0]));
    half.destroy();
    await stillServes();
    const mismatch = sidecar.audit.find(
      (a) => a.reason === "HostMismatch" && a.host === "other.example.test",
    );
    expect(mismatch).to.not.equal(undefined);
  });

  it("abrupt disconnects: mid-request, mid-body, and mid-handshake inside a CONNECT tunnel", async function () {
    for (const partial of [
      `GET http://${authority}/x HTTP/1.1\r\nHost: ${authority}`,
      `POST http://${authority}/x HTTP/1.1\r\nHost: ${authority}\r\nContent-Length: 1000\r\n\r\nabc`,
      `CONNECT api.example.test:${tlsUp.port} HTTP/1.1\r\n\r\n\x16\x03`,
    ]) {
      const socket = await connect(sidecar.proxyAddress.port);
      socket.write(partial);
      await new Promise((resolve) => setTimeout(resolve, 20));
      socket.resetAndDestroy();
    }
    await stillServes();
  });

  it("a hundred concurrent connections that close at random points leave the sidecar serving", async function () {
    const tasks = Array.from({ length: 100 }, async (_, i) => {
      const socket = await connect(sidecar.proxyAddress.port);
      socket.on("error", () => undefined);
      const request = `GET http://${authority}/n${i} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`;
      socket.write(request.slice(0, i % request.length));
      await new Promise((resolve) => setTimeout(resolve, i % 7));
      if (i % 2 === 0) socket.resetAndDestroy();
      else socket.destroy();
    });
    await Promise.all(tasks);
    await stillServes();
  });
});
