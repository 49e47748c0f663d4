// Availability (THREATS.md): a flood of pipelined requests whose answers are never read must not
// turn into unbounded upstream work or memory in the sidecar. At most K requests of one connection
// are forwarded at a time (measured at the upstream); the rest wait, a connection with too many
// waiting is closed, and when the client goes away everything it started is released. A client
// that pipelines and reads gets every answer, in order.
import { expect } from "chai";
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import tls from "node:tls";
import { startEchoUpstream, type EchoUpstream } from "../../sidecar/demo/echo-upstream.ts";
import { connect, readUntil } from "../helpers/raw.ts";
import { policy, startTestSidecar, type TestSidecar } from "../helpers/sidecar.ts";

const PLAIN_HOST = "plain.example.test";
const TLS_HOST = "tunnel.example.test";
/** Larger than any loopback socket buffers: a client that never reads never finishes one. */
const HUGE = Buffer.alloc(32 * 1024 * 1024, 0x61);

/** Resolves once `condition` holds; fails with `what` if it does not within `ms`. */
async function until(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** An upstream whose answers are chosen per test; `open` counts answers not yet closed. */
interface Upstream {
  server: EchoUpstream;
  mode: "hold" | "huge" | "echo";
  open: number;
  maxOpen: number;
}

async function startUpstream(useTls: boolean): Promise<Upstream> {
  const state: Upstream = { server: undefined as unknown as EchoUpstream, mode: "echo", open: 0, maxOpen: 0 };
  const respond = (rec: { url: string }, res: ServerResponse): boolean => {
    state.open++;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    res.once("close", () => state.open--);
    if (state.mode === "hold") return true;
    if (state.mode === "huge") {
      res.writeHead(200, { "content-length": HUGE.length }).end(HUGE);
      return true;
    }
    // A little latency, so that requests forwarded together overlap at the upstream.
    setTimeout(() => res.writeHead(200, { "content-length": Buffer.byteLength(rec.url) }).end(rec.url), 5);
    return true;
  };
  state.server = await startEchoUpstream({ tls: useTls, respond });
  return state;
}

describe("pipelining: a flood whose answers are never read stays bounded", function () {
  let plain: Upstream;
  let secure: Upstream;
  let sidecar: TestSidecar;
  let K: number;
  let QUEUED: number;

  before(async function () {
    plain = await startUpstream(false);
    secure = await startUpstream(true);
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "plain", hosts: [PLAIN_HOST], ports: [plain.server.port] },
          // A path rule: the tunnel is intercepted and every request in it decided and forwarded.
          { name: "tunnel", hosts: [TLS_HOST], ports: [secure.server.port], paths: ["/**"] },
        ]),
      ],
      pins: { [PLAIN_HOST]: "127.0.0.1", [TLS_HOST]: "127.0.0.1" },
      upstreamCa: [secure.server.caPem],
    });
    K = sidecar.boundary.pipeline.limits.maxInFlight;
    QUEUED = sidecar.boundary.pipeline.limits.maxQueued;
  });
  after(async function () {
    await sidecar.close();
    await plain.server.close();
    await secure.server.close();
  });

  const MODES = [
    {
      name: "plain proxy",
      upstream: () => plain,
      open: async (): Promise<Socket> => connect(sidecar.proxyAddress.port),
      request: (path: string) => {
        const authority = `${PLAIN_HOST}:${plain.server.port}`;
        return `GET http://${authority}${path} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`;
      },
    },
    {
      name: "intercepted CONNECT tunnel",
      upstream: () => secure,
      open: async (): Promise<Socket> => {
        const authority = `${TLS_HOST}:${secure.server.port}`;
        const socket = await connect(sidecar.proxyAddress.port);
        socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
        expect(await readUntil(socket, (t) => t.includes("\r\n\r\n"))).to.match(/^HTTP\/1\.1 200/);
        const wrapped = tls.connect({ socket, servername: TLS_HOST, ca: sidecar.ca.certificatePem });
        await new Promise((resolve) => wrapped.once("secureConnect", resolve));
        return wrapped;
      },
      request: (path: string) => `GET ${path} HTTP/1.1\r\nHost: ${TLS_HOST}:${secure.server.port}\r\n\r\n`,
    },
  ];

  /** Waits until the sidecar holds nothing for any connection and the upstream answers are gone. */
  async function released(upstream: Upstream): Promise<void> {
    const { pipeline } = sidecar.boundary;
    await until("the sidecar to release the connection", () => {
      return pipeline.connections === 0 && pipeline.inFlight === 0 && pipeline.waiting === 0;
    });
    await until("the upstream requests to be closed", () => upstream.open === 0);
  }

  for (const mode of MODES) {
    describe(mode.name, function () {
      it("a client that never reads: K requests reach the upstream, the rest wait, all released on close", async function () {
        const upstream = mode.upstream();
        upstream.mode = "huge";
        const before = upstream.server.received.length;
        const extra = 40;
        const client = await mode.open();
        client.pause();
        client.on("error", () => undefined);
        const flood = Array.from({ length: K + extra }, (_, i) => mode.request(`/flood/${i}`));
        client.write(flood.join(""));
        const { pipeline } = sidecar.boundary;
        // Every request was parsed (K forwarded plus `extra` waiting) and none more was forwarded.
        await until(`${K} in flight and ${extra} waiting`, () => {
          return pipeline.inFlight === K && pipeline.waiting === extra;
        });
        await until("the forwarded requests at the upstream", () => {
          return upstream.server.received.length - before === K;
        });
        expect(upstream.open).to.equal(K);

        client.destroy();
        await released(upstream);
        // The waiting requests were dropped with the connection, never forwarded.
        expect(upstream.server.received.length - before).to.equal(K);
        upstream.mode = "echo";
      });

      it("a flood beyond the queue limit: the connection is closed, nothing more is forwarded", async function () {
        const upstream = mode.upstream();
        upstream.mode = "hold";
        const before = upstream.server.received.length;
        const auditBefore = sidecar.audit.length;
        const client = await mode.open();
        client.on("error", () => undefined);
        const closed = new Promise((resolve) => client.once("close", resolve));
        const flood = Array.from({ length: K + QUEUED + 2000 }, (_, i) => mode.request(`/flood/${i}`));
        client.write(flood.join(""));
        await closed;
        await released(upstream);
        expect(upstream.server.received.length - before).to.be.at.most(K);
        // One audit record for the connection, not one per request parsed after the limit.
        const refused = sidecar.audit.slice(auditBefore).filter((r) => r.reason === "InvalidRequest");
        expect(refused).to.have.length(1);
        expect(String(refused[0]?.msg)).to.include("pipelined requests waiting");
        upstream.mode = "echo";
      });

      it("a pipelining client that reads gets every answer, in order, with at most K at the upstream", async function () {
        const upstream = mode.upstream();
        upstream.mode = "echo";
        upstream.maxOpen = 0;
        const count = K * 6;
        const client = await mode.open();
        const paths = Array.from({ length: count }, (_, i) => `/ordered/${i}`);
        client.write(paths.map((p) => mode.request(p)).join(""));
        const text = await readUntil(client, (t) => splitResponses(t).length === count, 15_000);
        client.destroy();
        const responses = splitResponses(text);
        expect(responses.map((r) => r.status)).to.deep.equal(paths.map(() => 200));
        expect(responses.map((r) => r.body)).to.deep.equal(paths);
        expect(upstream.maxOpen).to.be.at.most(K);
      });
    });
  }
});

/** Splits a stream of HTTP/1.1 responses with Content-Length bodies into status and body. */
function splitResponses(text: string): { status: number; body: string }[] {
  const out: { status: number; body: string }[] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end === -1) return out;
    const head = text.slice(at, end);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
    if (length === undefined) return out;
    const bodyEnd = end + 4 + Number(length);
    if (text.length < bodyEnd) return out;
    out.push({ status: Number(head.split(" ")[1]), body: text.slice(end + 4, bodyEnd) });
    at = bodyEnd;
  }
}
