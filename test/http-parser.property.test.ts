// Property of the HTTP parsing in front of the policy: the proxy listener is Node's own http server
// parser, and the agent writes whatever bytes it likes to it. After any batch of hostile byte
// strings, the sidecar must still answer an ordinary request; an exception escaping the parser
// would end this process (and fail the run) rather than this test.
import { expect } from "chai";
import fc from "fast-check";
import net from "node:net";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { assertAsyncProperty, PROPERTY_TIMEOUT_MS, propertyRuns } from "./helpers/property.ts";
import { exchange, parseResponse } from "./helpers/raw.ts";
import { policy, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

// Each case opens real connections, so it costs about a hundred in-memory cases: it runs
// AIRLOCK_PROPERTY_RUNS / 100 batches (100 in the normal suite, 10,000 under `make fuzz`).
const IO_SCALE = 100;
const MAX_BYTES = 4096;
// A connection the sidecar neither answers nor closes within this long is dropped by the test.
const CONNECTION_WAIT_MS = 2000;

const OPEN_HOST = "open.example.test";

/** Writes `data`, half-closes, and resolves once the sidecar closes (or the wait ends). */
function sendRaw(port: number, data: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, CONNECTION_WAIT_MS);
    socket.on("error", done);
    socket.on("close", done);
    socket.on("data", () => undefined);
    socket.on("connect", () => {
      socket.end(data);
    });
  });
}

const text = (arb: fc.Arbitrary<string>): fc.Arbitrary<Uint8Array> =>
  arb.map((s) => Buffer.from(s, "latin1"));

/** Request-ish byte strings: real methods, targets and headers, mixed with stray bytes and line ends. */
function httpish(upstreamPort: number): fc.Arbitrary<Uint8Array> {
  const authority = `${OPEN_HOST}:${upstreamPort}`;
  const piece = fc.oneof(
    fc.constantFrom("GET ", "POST ", "CONNECT ", "HEAD ", "PRI ", "get ", "G\u0000T "),
    fc.constantFrom(
      `http://${authority}/`,
      authority,
      "http://blocked.example.test/",
      "/",
      "*",
      "http://[::1]:0/",
    ),
    fc.constantFrom(" HTTP/1.1", " HTTP/1.0", " HTTP/9.9", " HTTP/1.1 x", ""),
    fc.constantFrom("\r\n", "\n", "\r", "\r\n\r\n", " ", "\t"),
    fc.constantFrom(
      `Host: ${authority}`,
      "Host:",
      "Host: a\u0000b",
      "Content-Length: 5",
      "Content-Length: -1",
    ),
    fc.constantFrom(
      "Content-Length: 99999999999999999999",
      "Transfer-Encoding: chunked",
      "Transfer-Encoding: xchunked",
    ),
    fc.constantFrom(
      "Connection: close",
      "Expect: 100-continue",
      "Upgrade: websocket",
      "X: \u00ff\u0080",
      ": v",
    ),
    fc.constantFrom("0\r\n\r\n", "5\r\nhello\r\n", "ffffffffffffffff\r\n", "x".repeat(100)),
    fc.string({ unit: "binary-ascii", maxLength: 40, size: "max" }),
  );
  return fc.oneof(
    text(fc.array(piece, { maxLength: 40 }).map((parts) => parts.join(""))),
    fc
      .tuple(
        text(fc.array(piece, { maxLength: 20 }).map((parts) => parts.join(""))),
        fc.uint8Array({ maxLength: 512 }),
      )
      .map(([head, tail]) => Buffer.concat([head, tail])),
  );
}

/** Well-formed requests in outline (method, target, version, headers, body), each part now and then off. */
function structuredRequest(upstreamPort: number): fc.Arbitrary<Uint8Array> {
  const authority = `${OPEN_HOST}:${upstreamPort}`;
  const mostly = (usual: readonly string[], unusual: readonly string[]): fc.Arbitrary<string> =>
    fc.oneof({ arbitrary: fc.constantFrom(...usual), weight: 6 }, fc.constantFrom(...unusual));
  const header = fc.oneof(
    fc.constantFrom("Connection: close", "Content-Length: 5", "Transfer-Encoding: chunked", "Accept: */*"),
    fc.constantFrom(
      "Content-Length: 1",
      "Transfer-Encoding: gzip, chunked",
      "Proxy-Authorization: x",
      "X-A: b",
    ),
    fc
      .tuple(
        fc.stringMatching(/^[A-Za-z-]{1,20}$/),
        fc.oneof(
          { arbitrary: fc.stringMatching(/^[ -~]{0,30}$/), weight: 4 },
          fc.string({ unit: "binary-ascii", maxLength: 30 }),
        ),
      )
      .map(([name, value]) => `${name}: ${value}`),
  );
  return fc
    .record({
      method: mostly(["GET", "POST", "CONNECT", "HEAD", "PUT"], ["TRACE", "get", "", "G T"]),
      target: mostly(
        [
          `http://${authority}/x`,
          authority,
          `http://${authority}/a/%2e%2e/b?q`,
          "http://blocked.example.test/",
        ],
        ["/", "*", "http://127.0.0.1:1/", "http://user@open.example.test/", "blocked.example.test:443"],
      ),
      version: mostly(["HTTP/1.1", "HTTP/1.0"], ["HTTP/2.0", "HTTP/1.1 ", "http/1.1"]),
      host: mostly([`Host: ${authority}`], ["", "Host: other.example.test", `Host: ${authority}\r\nHost: x`]),
      headers: fc.array(header, { maxLength: 5 }),
      eol: mostly(["\r\n"], ["\n", "\r"]),
      body: fc.oneof(fc.constant(""), fc.constantFrom("hello", "0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n")),
    })
    .map(({ method, target, version, host, headers, eol, body }) => {
      const lines = [`${method} ${target} ${version}`, host, ...headers].filter((line) => line !== "");
      return Buffer.from(`${lines.join(eol)}${eol}${eol}${body}`, "latin1");
    });
}

function anyBytes(upstreamPort: number): fc.Arbitrary<Uint8Array> {
  return fc
    .oneof(
      fc.uint8Array({ maxLength: MAX_BYTES }),
      fc.uint8Array({ maxLength: MAX_BYTES, size: "large" }),
      httpish(upstreamPort),
      structuredRequest(upstreamPort),
    )
    .map((bytes) => bytes.subarray(0, MAX_BYTES));
}

describe("HTTP parsing behind the proxy listener: properties", function () {
  this.timeout(PROPERTY_TIMEOUT_MS * 3);
  let up: EchoUpstream;
  let sidecar: TestSidecar;

  before(async function () {
    up = await startEchoUpstream();
    sidecar = await startTestSidecar({
      policies: [policy("agent", [{ name: "open", hosts: [OPEN_HOST], ports: [up.port] }])],
      pins: { [OPEN_HOST]: "127.0.0.1" },
    });
  });
  after(async function () {
    await sidecar.close();
    await up.close();
  });

  async function stillServes(): Promise<void> {
    const authority = `${OPEN_HOST}:${up.port}`;
    const response = await exchange(
      sidecar.proxyAddress.port,
      `GET http://${authority}/alive HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
    );
    expect(parseResponse(response).status).to.equal(200);
  }

  it(`keeps serving after batches of up to ${MAX_BYTES} arbitrary or request-like bytes (${propertyRuns(IO_SCALE)} batches)`, async function () {
    await stillServes();
    await assertAsyncProperty(
      fc.asyncProperty(fc.array(anyBytes(up.port), { minLength: 1, maxLength: 6 }), async (batch) => {
        await Promise.all(batch.map((bytes) => sendRaw(sidecar.proxyAddress.port, bytes)));
        await stillServes();
      }),
      { scale: IO_SCALE },
    );
  });
});
