// HTTP/2 through the credential path with real clients (Node's http2, curl --http2) and a real
// HTTP/2 upstream, over the explicit proxy: every stream is a request decided on its :authority,
// :method and :path; the credential goes upstream only on inject; nothing the agent reads — headers,
// body, trailers — carries it (THREATS.md I1, I3, I4); HTTP/2's abuse shapes end the stream or the
// connection while the sidecar goes on serving others.
import { expect } from "chai";
import { execFile } from "node:child_process";
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { promisify } from "node:util";
import v8 from "node:v8";
import vm from "node:vm";
import { REDACTED } from "../sidecar/proxy/scrub.ts";
import { CertificateAuthority } from "../sidecar/tls/ca.ts";
import { eventually } from "./helpers/eventually.ts";
import {
  credential,
  parseJson,
  policy,
  secret,
  startTestSidecar,
  type TestSidecar,
} from "./helpers/sidecar.ts";

const run = promisify(execFile);

const API = "h2-api.example.test";
const OPEN = "h2-open.example.test";
const OLD = "h2-old.example.test";
const EVIL = "h2-evil.example.test";
const SECRET = "h2-s3cr3t-7d41e0b9c2";

interface Seen {
  authority: string;
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
  protocol: string;
}

/** What came back on one stream. */
interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders;
}

/** One line of HTTPX_GET's output. */
interface HttpxLine {
  status: number;
  version: string;
  decision: string;
  body: string;
}

/** httpx with HTTP/2 through an HTTP proxy: argv proxy, CA file, URLs; a JSON line per URL. */
const HTTPX_GET = `import httpx, json, sys
proxy, ca, urls = sys.argv[1], sys.argv[2], sys.argv[3:]
with httpx.Client(http2=True, http1=False, proxies=proxy, verify=ca, timeout=10) as client:
    for url in urls:
        r = client.get(url)
        print(json.dumps({"status": r.status_code, "version": r.http_version, "decision": r.headers.get("x-airlock-decision"), "body": r.text}))
`;

describe("HTTP/2 through the credential path (Node http2, curl, httpx; explicit proxy)", function () {
  let sidecar: TestSidecar;
  let h2Upstream: http2.Http2SecureServer;
  let h1Upstream: https.Server;
  let port = 0;
  let oldPort = 0;
  const seen: Seen[] = [];
  let caFile = "";

  before(async function () {
    const upstreamCa = new CertificateAuthority();
    h2Upstream = http2.createSecureServer({
      SNICallback: (name, callback) => {
        callback(null, upstreamCa.contextFor(name));
      },
    });
    h2Upstream.on("stream", (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const authorization = headers.authorization ?? "";
        const body = Buffer.concat(chunks).toString("utf8");
        seen.push({
          authority: String(headers[":authority"]),
          path: String(headers[":path"]),
          method: String(headers[":method"]),
          headers,
          body,
          protocol: "h2",
        });
        if (headers[":path"] === "/slow") {
          setTimeout(() => {
            if (!stream.destroyed) stream.respond({ ":status": 200 }, { endStream: true });
          }, 200);
          return;
        }
        // Everything the upstream saw, reflected in a header, the body and a trailer.
        stream.respond(
          { ":status": 200, "content-type": "text/plain", "x-echo": authorization },
          { waitForTrailers: true },
        );
        stream.on("wantTrailers", () => {
          stream.sendTrailers({ "x-trailer-echo": authorization, "x-done": "yes" });
        });
        stream.end(`path ${String(headers[":path"])} body ${body} auth ${authorization}`);
      });
    });
    await new Promise<void>((resolve) => h2Upstream.listen(0, "127.0.0.1", resolve));
    port = (h2Upstream.address() as net.AddressInfo).port;
    // An HTTP/1.1-only upstream: the agent's HTTP/2 is its own side's business.
    h1Upstream = https.createServer(
      {
        SNICallback: (name, callback) => {
          callback(null, upstreamCa.contextFor(name));
        },
      },
      (req, res) => {
        seen.push({
          authority: req.headers.host ?? "",
          path: req.url ?? "",
          method: req.method ?? "",
          headers: req.headers,
          body: "",
          protocol: `http/${req.httpVersion}`,
        });
        res.setHeader("x-echo", req.headers.authorization ?? "");
        res.end(`old ${req.headers.authorization ?? ""}`);
      },
    );
    await new Promise<void>((resolve) => h1Upstream.listen(0, "127.0.0.1", resolve));
    oldPort = (h1Upstream.address() as net.AddressInfo).port;
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "api", hosts: [API], ports: [port], credential: "api-token" },
          { name: "old", hosts: [OLD], ports: [oldPort], credential: "api-token" },
          // Constrained by path, so intercepted: decided per stream without a credential.
          { name: "open", hosts: [OPEN], ports: [port], paths: ["/open/**"], methods: ["GET", "POST"] },
        ]),
      ],
      credentials: [
        credential("api-token", "api-secret", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
      ],
      secrets: [secret("agents", "api-secret", { token: SECRET })],
      pins: { [API]: "127.0.0.1", [OPEN]: "127.0.0.1", [OLD]: "127.0.0.1", [EVIL]: "127.0.0.1" },
      upstreamCa: [upstreamCa.certificatePem],
    });
    caFile = `/tmp/airlock-h2-test-ca-${process.pid}.pem`;
    await import("node:fs/promises").then((fs) => fs.writeFile(caFile, sidecar.ca.certificatePem));
  });

  after(async function () {
    await sidecar.close();
    await new Promise((resolve) => h2Upstream.close(resolve));
    h1Upstream.closeAllConnections();
    await new Promise((resolve) => h1Upstream.close(resolve));
    await import("node:fs/promises").then((fs) => fs.rm(caFile, { force: true }));
  });

  /** A CONNECT tunnel through the sidecar to host:port. */
  async function tunnel(host: string, toPort: number): Promise<net.Socket> {
    const socket = net.connect({ host: "127.0.0.1", port: sidecar.proxyAddress.port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    socket.write(`CONNECT ${host}:${toPort} HTTP/1.1\r\nHost: ${host}:${toPort}\r\n\r\n`);
    const answer = await new Promise<string>((resolve) => {
      socket.once("data", (chunk: Buffer) => {
        resolve(chunk.toString("latin1"));
      });
    });
    expect(answer).to.match(/^HTTP\/1\.1 200 /);
    return socket;
  }

  /** TLS through a tunnel to host, trusting the sidecar's CA, h2 chosen in ALPN. */
  async function secureTunnel(host: string, toPort: number): Promise<tls.TLSSocket> {
    const socket = await tunnel(host, toPort);
    const secure = tls.connect({
      socket,
      servername: host,
      ca: sidecar.ca.certificatePem,
      ALPNProtocols: ["h2"],
    });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    expect(secure.alpnProtocol).to.equal("h2");
    return secure;
  }

  /** An HTTP/2 session to host through the sidecar (TLS with the sidecar's CA, ALPN h2). */
  async function session(host: string, toPort = port): Promise<ClientHttp2Session> {
    const secure = await secureTunnel(host, toPort);
    const client = http2.connect(`https://${host}:${toPort}`, { createConnection: () => secure });
    client.on("error", () => undefined);
    return client;
  }

  /** One stream: its response headers, body and trailers. */
  function exchange(
    client: ClientHttp2Session,
    headers: http2.OutgoingHttpHeaders,
    body?: string,
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const stream = client.request(headers, { endStream: body === undefined });
      let status = 0;
      let responseHeaders: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        responseHeaders = h;
      });
      stream.on("trailers", (t: IncomingHttpHeaders) => {
        trailers = t;
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks).toString("utf8"), trailers });
      });
      stream.on("error", reject);
      if (body !== undefined) stream.end(body);
    });
  }

  it("injects on every stream of one connection; the upstream gets HTTP/2 with the credential, the agent none of it", async function () {
    seen.length = 0;
    const client = await session(API);
    try {
      const answers = await Promise.all(
        [1, 2, 3].map((n) => exchange(client, { ":method": "POST", ":path": `/echo/${n}` }, `payload ${n}`)),
      );
      for (const [i, answer] of answers.entries()) {
        expect(answer.status).to.equal(200);
        expect(answer.headers["x-airlock-decision"]).to.equal("inject");
        expect(answer.body).to.contain(`path /echo/${i + 1} body payload ${i + 1}`);
        // The reflection in the header, body and trailer is scrubbed; the trailer still arrives.
        expect(answer.trailers["x-done"]).to.equal("yes");
        const visible = JSON.stringify([answer.headers, answer.body, answer.trailers]);
        expect(visible).not.to.contain(SECRET);
        expect(answer.headers["x-echo"]).to.equal(REDACTED);
        expect(answer.trailers["x-trailer-echo"]).to.equal(REDACTED);
        expect(answer.body).to.contain(`auth ${REDACTED}`);
      }
      expect(seen).to.have.length(3);
      for (const request of seen) {
        expect(request.protocol).to.equal("h2");
        expect(request.authority).to.equal(`${API}:${port}`);
        expect(request.headers.authorization).to.equal(`Bearer ${SECRET}`);
      }
      expect(seen.map((s) => s.body).sort()).to.deep.equal(["payload 1", "payload 2", "payload 3"]);
    } finally {
      client.close();
    }
  });

  it("decides each stream alone: a blocked path gets 403 while the other streams on the connection go on", async function () {
    seen.length = 0;
    const client = await session(OPEN);
    try {
      const [allowed, blocked, method, again] = await Promise.all([
        exchange(client, { ":path": "/open/a", authorization: "Bearer agent-own" }),
        exchange(client, { ":path": "/closed/b" }),
        exchange(client, { ":method": "DELETE", ":path": "/open/c" }),
        exchange(client, { ":path": "/open/d" }),
      ]);
      expect(allowed.status).to.equal(200);
      expect(allowed.headers["x-airlock-decision"]).to.equal("allow");
      expect(again.status).to.equal(200);
      expect(blocked.status).to.equal(403);
      expect(blocked.headers["x-airlock-decision"]).to.equal("block");
      expect(parseJson(blocked.body)).to.include({ reason: "NoRuleMatched", outcome: "block" });
      expect(method.status).to.equal(403);
      expect(seen.map((s) => s.path).sort()).to.deep.equal(["/open/a", "/open/d"]);
      // Allow-only: the agent's own header goes through, no credential is added.
      expect(seen.find((s) => s.path === "/open/a")?.headers.authorization).to.equal("Bearer agent-own");
      expect(seen.find((s) => s.path === "/open/d")?.headers.authorization).to.equal(undefined);
    } finally {
      client.close();
    }
  });

  it("refuses a stream whose :authority is not the name the connection was opened for", async function () {
    seen.length = 0;
    const client = await session(API);
    try {
      const other = await exchange(client, { ":path": "/echo/x", ":authority": `${EVIL}:${port}` });
      expect(other.status).to.equal(403);
      expect(parseJson(other.body)).to.include({ reason: "HostMismatch" });
      // A Host header beside :authority naming another host: refused either way it is read.
      const conflicting = await exchange(client, { ":path": "/echo/y", host: `${EVIL}:${port}` });
      expect(conflicting.status).to.be.oneOf([400, 403]);
      expect(parseJson(conflicting.body).reason).to.be.oneOf(["InvalidRequest", "HostMismatch"]);
      const fine = await exchange(client, { ":path": "/echo/z" });
      expect(fine.status).to.equal(200);
      expect(seen.map((s) => s.path)).to.deep.equal(["/echo/z"]);
    } finally {
      client.close();
    }
  });

  it("speaks HTTP/1.1 to an upstream that does not offer h2, HTTP/2 to the agent", async function () {
    seen.length = 0;
    const client = await session(OLD, oldPort);
    try {
      const answer = await exchange(client, { ":path": "/v1" });
      expect(answer.status).to.equal(200);
      expect(answer.body).not.to.contain(SECRET);
      expect(answer.body).to.equal(`old ${REDACTED}`);
      expect(seen).to.have.length(1);
      expect(seen[0]?.protocol).to.equal("http/1.1");
      expect(seen[0]?.headers.authorization).to.equal(`Bearer ${SECRET}`);
    } finally {
      client.close();
    }
  });

  it("curl --http2 through HTTPS_PROXY: inject, allow and block", async function () {
    seen.length = 0;
    const curl = async (url: string): Promise<{ code: string; version: string; body: string }> => {
      const { stdout } = await run("curl", [
        "-sS",
        "--http2",
        "--proxy",
        `http://127.0.0.1:${sidecar.proxyAddress.port}`,
        "--cacert",
        caFile,
        "-w",
        "\n%{http_code} %{http_version}",
        url,
      ]);
      const lines = stdout.split("\n");
      const [code = "", version = ""] = (lines.pop() ?? "").split(" ");
      return { code, version, body: lines.join("\n") };
    };
    const inject = await curl(`https://${API}:${port}/echo/curl`);
    expect(inject).to.include({ code: "200", version: "2" });
    expect(inject.body).not.to.contain(SECRET);
    expect(inject.body).to.contain("path /echo/curl");
    const allow = await curl(`https://${OPEN}:${port}/open/curl`);
    expect(allow).to.include({ code: "200", version: "2" });
    const block = await curl(`https://${OPEN}:${port}/closed/curl`);
    expect(block).to.include({ code: "403", version: "2" });
    expect(seen.map((s) => [s.path, s.headers.authorization])).to.deep.equal([
      ["/echo/curl", `Bearer ${SECRET}`],
      ["/open/curl", undefined],
    ]);
  });

  it("Python httpx with HTTP/2 through the proxy: inject, allow and block", async function () {
    seen.length = 0;
    const { stdout } = await run("/usr/bin/python3", [
      "-c",
      HTTPX_GET,
      `http://127.0.0.1:${sidecar.proxyAddress.port}`,
      caFile,
      `https://${API}:${port}/echo/httpx`,
      `https://${OPEN}:${port}/open/httpx`,
      `https://${OPEN}:${port}/closed/httpx`,
    ]);
    const lines = stdout.trim().split("\n");
    expect(lines).to.have.length(3);
    const [inject, allow, block] = lines.map((line) => JSON.parse(line) as HttpxLine);
    expect(inject).to.include({ status: 200, version: "HTTP/2", decision: "inject" });
    expect(inject?.body).to.contain(`auth ${REDACTED}`);
    expect(allow).to.include({ status: 200, version: "HTTP/2", decision: "allow" });
    expect(block).to.include({ status: 403, version: "HTTP/2", decision: "block" });
    expect(stdout).not.to.contain(SECRET);
    expect(seen.map((s) => [s.path, s.headers.authorization])).to.deep.equal([
      ["/echo/httpx", `Bearer ${SECRET}`],
      ["/open/httpx", undefined],
    ]);
  });

  it("an agent that goes away mid-stream cancels the upstream stream; the connection serves on", async function () {
    const client = await session(API);
    try {
      const stream = client.request({ ":path": "/slow" });
      stream.on("error", () => undefined);
      await eventually(
        () => {
          if (!seen.some((s) => s.path === "/slow")) throw new Error("not yet");
        },
        { what: "the slow request upstream" },
      );
      stream.close(http2.constants.NGHTTP2_CANCEL);
      const next = await exchange(client, { ":path": "/echo/after" });
      expect(next.status).to.equal(200);
    } finally {
      client.close();
    }
  });
  describe("abuse: each shape ends its stream or its connection; the sidecar serves on", function () {
    /** Streams the upstream still has open (each reset stream's upstream work must be cancelled). */
    function openUpstreamStreams(): Promise<number> {
      return new Promise((resolve, reject) => {
        h2Upstream.getConnections((err, count) => {
          if (err) reject(err);
          else resolve(count);
        });
      });
    }

    /** The heap in use after full collections (the sidecar runs in this process). */
    function settledHeap(): number {
      v8.setFlagsFromString("--expose-gc");
      const gc = vm.runInNewContext("gc") as () => void;
      gc();
      gc();
      return v8.getHeapStatistics().used_heap_size;
    }

    /** One healthy request on a fresh connection. */
    async function stillServes(): Promise<void> {
      const client = await session(API);
      try {
        const answer = await exchange(client, { ":path": "/echo/healthy" });
        expect(answer.status).to.equal(200);
      } finally {
        client.close();
      }
    }

    /** A raw HTTP/2 connection to API through the sidecar: TLS with ALPN h2, preface and SETTINGS sent. */
    async function rawH2(): Promise<tls.TLSSocket> {
      const secure = await secureTunnel(API, port);
      secure.on("error", () => undefined);
      secure.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"));
      secure.write(frame(0x4, 0, 0, Buffer.alloc(0)));
      return secure;
    }

    /** One HTTP/2 frame: 24-bit length, type, flags, stream id. */
    function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
      const head = Buffer.alloc(9);
      head.writeUIntBE(payload.length, 0, 3);
      head[3] = type;
      head[4] = flags;
      head.writeUInt32BE(stream, 5);
      return Buffer.concat([head, payload]);
    }

    /** The types of the frames in `bytes`, in order. */
    function frameTypes(bytes: Buffer): number[] {
      const types: number[] = [];
      for (let at = 0; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3))
        types.push(bytes[at + 3] as number);
      return types;
    }

    /** An HPACK literal header field without indexing, new name (RFC 7541 §6.2.2); short strings. */
    function literal(name: string, value: string): Buffer {
      return Buffer.concat([
        Buffer.from([0x00, name.length]),
        Buffer.from(name, "latin1"),
        Buffer.from([value.length]),
        Buffer.from(value, "latin1"),
      ]);
    }

    it("a rapid-reset burst (HEADERS then RST_STREAM, 4,000 streams) ends that connection; the upstream work is cancelled", async function () {
      const before = seen.length;
      const heapBefore = settledHeap();
      const secure = await rawH2();
      const closed = new Promise<void>((resolve) =>
        secure.once("close", () => {
          resolve();
        }),
      );
      const received: Buffer[] = [];
      secure.on("data", (chunk: Buffer) => received.push(chunk));
      // GET https://API:port/slow (HPACK: :method GET, :scheme https, literal :path and :authority).
      const block = Buffer.concat([
        Buffer.from([0x82, 0x87]),
        literal(":path", "/slow"),
        literal(":authority", `${API}:${port}`),
      ]);
      const cancel = Buffer.alloc(4);
      cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
      for (let id = 1; id < 8000 && secure.writable; id += 2) {
        // END_STREAM | END_HEADERS, then the reset at once.
        secure.write(Buffer.concat([frame(0x1, 0x5, id, block), frame(0x3, 0, id, cancel)]));
        if (id % 400 === 399) await new Promise((resolve) => setImmediate(resolve));
      }
      await closed;
      expect(frameTypes(Buffer.concat(received)), "a GOAWAY frame from the sidecar").to.include(0x7);
      // Far fewer than the 4,000 streams opened reached the upstream, and none stays open there.
      expect(seen.length - before).to.be.below(4000);
      await eventually(
        async () => {
          const open = await openUpstreamStreams();
          if (open > 4) throw new Error(`${open} upstream connections still open`);
        },
        { what: "the upstream work of the reset streams cancelled" },
      );
      // What the burst cost is given back: the heap (sidecar, upstream and client all live in
      // this process) ends within 32 MiB of where it began.
      expect(settledHeap() - heapBefore).to.be.below(32 * 1024 * 1024);
      await stillServes();
    });

    it("a CONTINUATION flood (one header block that never ends) ends the connection", async function () {
      const secure = await rawH2();
      const closed = new Promise<void>((resolve) =>
        secure.once("close", () => {
          resolve();
        }),
      );
      const received: Buffer[] = [];
      secure.on("data", (chunk: Buffer) => received.push(chunk));
      // HEADERS without END_HEADERS (:method GET, :scheme https, :path /), then CONTINUATIONs.
      const block = Buffer.concat([Buffer.from([0x82, 0x87, 0x84]), literal(":authority", `${API}:${port}`)]);
      secure.write(frame(0x1, 0x1, 1, block));
      let frames = 0;
      for (; frames < 10_000 && !secure.destroyed && secure.writable; frames++) {
        secure.write(frame(0x9, 0, 1, literal(`x-flood-${frames % 10}`, "a".repeat(40))));
        if (frames % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
      }
      await closed;
      // The sidecar ended it with a GOAWAY long before the flood was all sent.
      expect(frameTypes(Buffer.concat(received)), "a GOAWAY frame from the sidecar").to.include(0x7);
      await stillServes();
    });

    it("a stream whose header list is over the limit is refused; the next stream on the connection is served", async function () {
      const client = await session(API);
      try {
        const outcome = await new Promise<string>((resolve) => {
          const stream = client.request({ ":path": "/echo/big", "x-big": "b".repeat(24 * 1024) });
          stream.on("response", (h) => {
            resolve(`status ${String(h[":status"])}`);
          });
          stream.on("error", (err: Error & { code?: string }) => {
            resolve(`error ${err.code ?? err.message}`);
          });
          stream.on("close", () => {
            resolve(`closed ${stream.rstCode}`);
          });
          stream.resume();
        });
        expect(outcome).to.equal("status 431");
        expect(seen.some((s) => s.path === "/echo/big")).to.equal(false);
        if (!client.closed && !client.destroyed) {
          const next = await exchange(client, { ":path": "/echo/after-big" });
          expect(next.status).to.equal(200);
        } else await stillServes();
      } finally {
        client.close();
      }
    });
  });
});
