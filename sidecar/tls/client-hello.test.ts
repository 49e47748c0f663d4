import { expect } from "chai";
import { execFile } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import tls from "node:tls";
import {
  looksLikeHttp,
  MAX_CLIENT_HELLO_BYTES,
  parseClientHello,
  sniffHttp,
  TLS_ALERT_HANDSHAKE_FAILURE,
  tlsAlert,
  type ClientHelloResult,
} from "./client-hello.ts";

/** Runs `client` against a listener that keeps the first bytes, answering `reply` once a hello is whole. */
async function capture(client: (port: number) => void, reply?: Buffer): Promise<Buffer> {
  let resolveBytes: (bytes: Buffer) => void = () => undefined;
  const bytes = new Promise<Buffer>((resolve) => (resolveBytes = resolve));
  const server = net.createServer((socket) => {
    let seen = Buffer.alloc(0);
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      if (parseClientHello(seen).state === "need-more") return;
      resolveBytes(seen);
      if (reply === undefined) socket.destroy();
      else socket.end(reply);
    });
    socket.on("close", () => {
      resolveBytes(seen);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  client(address.port);
  try {
    return await bytes;
  } finally {
    server.close();
  }
}

function tlsClient(options: tls.ConnectionOptions): (port: number) => void {
  return (port) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...options });
    socket.on("error", () => undefined);
    socket.on("close", () => undefined);
  };
}

function curl(port: number): void {
  const url = `https://api.example.test:${port}/`;
  execFile(
    "curl",
    ["-sk", "--max-time", "2", url, "--resolve", `api.example.test:${port}:127.0.0.1`],
    () => undefined,
  );
}

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number): Buffer => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
const vec1 = (...parts: Buffer[]): Buffer =>
  Buffer.concat([Buffer.from([Buffer.concat(parts).length]), ...parts]);
const vec2 = (...parts: Buffer[]): Buffer => Buffer.concat([u16(Buffer.concat(parts).length), ...parts]);
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec2(data)]);
const hostName = (name: string, type = 0): Buffer =>
  Buffer.concat([Buffer.from([type]), vec2(Buffer.from(name, "latin1"))]);
const sni = (...entries: Buffer[]): Buffer => ext(0, vec2(...entries));
const alpn = (...protocols: string[]): Buffer => ext(16, vec2(...protocols.map((p) => vec1(Buffer.from(p)))));

type BodySpec = {
  version?: number;
  session?: Buffer;
  suites?: Buffer;
  compression?: Buffer;
  extensions?: Buffer;
};
/** A ClientHello body; `extensions` is the raw block including its length, so it can lie. */
function body(spec: BodySpec = {}): Buffer {
  return Buffer.concat([
    u16(spec.version ?? 0x0303),
    Buffer.alloc(32, 7),
    spec.session ?? vec1(Buffer.alloc(32, 1)),
    spec.suites ?? vec2(Buffer.from([0x13, 0x01, 0x13, 0x02])),
    spec.compression ?? vec1(Buffer.from([0])),
    spec.extensions ?? vec2(sni(hostName("api.example.test")), alpn("h2", "http/1.1")),
  ]);
}
const handshake = (b: Buffer, type = 1, length = b.length): Buffer =>
  Buffer.concat([Buffer.from([type]), u24(length), b]);
/** Wraps handshake bytes in records of the given sizes (the last takes the rest). */
function records(hs: Buffer, sizes: number[] = [], header = [22, 3, 1]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (const size of [...sizes, hs.length]) {
    const fragment = hs.subarray(at, Math.min(hs.length, at + size));
    if (fragment.length === 0) break;
    out.push(Buffer.from(header), u16(fragment.length), fragment);
    at += fragment.length;
  }
  return Buffer.concat(out);
}
const hello = (spec?: BodySpec): Buffer => records(handshake(body(spec)));
const okWith = (rest: { sni: string | null; alpn: string[] }, length: number): ClientHelloResult => ({
  state: "ok",
  ...rest,
  length,
});

/** Every strict prefix is need-more; the whole is `want`. */
function expectPrefixes(bytes: Buffer, want: ClientHelloResult): void {
  for (let cut = 0; cut < bytes.length; cut++) {
    expect(parseClientHello(bytes.subarray(0, cut)), `cut at ${cut}`).to.deep.equal({ state: "need-more" });
  }
  expect(parseClientHello(bytes)).to.deep.equal(want);
}

describe("parseClientHello on real clients", () => {
  const hellos = new Map<string, Buffer>();
  before(async () => {
    const servername = "api.example.test";
    hellos.set("node", await capture(tlsClient({ servername, ALPNProtocols: ["h2", "http/1.1"] })));
    hellos.set("node TLS 1.2", await capture(tlsClient({ servername, maxVersion: "TLSv1.2" })));
    hellos.set("node to an IP", await capture(tlsClient({})));
    hellos.set("curl", await capture(curl));
  });
  const get = (name: string): Buffer => hellos.get(name) ?? Buffer.alloc(0);

  it("node: SNI and ALPN, and need-more at every cut", () => {
    const bytes = get("node");
    expectPrefixes(bytes, okWith({ sni: "api.example.test", alpn: ["h2", "http/1.1"] }, bytes.length));
  });

  it("node limited to TLS 1.2: SNI and no ALPN", () => {
    const bytes = get("node TLS 1.2");
    expectPrefixes(bytes, okWith({ sni: "api.example.test", alpn: [] }, bytes.length));
  });

  it("node connecting to an IP sends no SNI", () => {
    const bytes = get("node to an IP");
    expectPrefixes(bytes, okWith({ sni: null, alpn: [] }, bytes.length));
  });

  it("curl: SNI and ALPN, and need-more at every cut", () => {
    const bytes = get("curl");
    const result = parseClientHello(bytes);
    expect(result).to.include({ state: "ok", sni: "api.example.test", length: bytes.length });
    expect(result.state === "ok" && result.alpn).to.include("http/1.1");
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(parseClientHello(bytes.subarray(0, cut)).state, `cut at ${cut}`).to.equal("need-more");
    }
  });

  it("the real hello re-split into two records at every point parses the same", () => {
    const bytes = get("node");
    const hs = bytes.subarray(5);
    const want = { sni: "api.example.test", alpn: ["h2", "http/1.1"] };
    for (let split = 1; split < hs.length; split++) {
      const two = records(hs, [split], [22, 3, 3]);
      expect(parseClientHello(two), `split at ${split}`).to.deep.equal(okWith(want, bytes.length + 5));
    }
    for (const split of [1, 3, 4, 40, hs.length - 1])
      expectPrefixes(records(hs, [split]), okWith(want, bytes.length + 5));
  });

  it("bytes after the hello's records are left for the caller", () => {
    const bytes = get("node");
    const withMore = Buffer.concat([bytes, Buffer.from([20, 3, 3, 0, 1, 1])]);
    expect(parseClientHello(withMore)).to.include({ state: "ok", length: bytes.length });
  });

  it("2,000 random mutations and truncations never throw and stay self-consistent", () => {
    let seed = 0x5eed;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const original = get("node");
    for (let i = 0; i < 2000; i++) {
      let bytes = Buffer.from(original);
      for (let m = 0, count = 1 + random(4); m < count; m++) {
        const at = random(bytes.length);
        const kind = random(5);
        if (kind === 0) bytes[at] = random(256);
        else if (kind === 1) bytes[at] = [0, 0xff, 0x7f, 0x80][random(4)] ?? 0;
        else if (kind === 2) bytes = bytes.subarray(0, at);
        else if (kind === 3)
          bytes = Buffer.concat([
            bytes.subarray(0, at),
            Buffer.alloc(random(8), random(256)),
            bytes.subarray(at),
          ]);
        else bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + random(8))]);
      }
      const result = parseClientHello(bytes);
      expect(["need-more", "not-tls", "invalid", "ok"]).to.include(result.state);
      if (result.state === "ok") {
        expect(result.length).to.be.at.most(bytes.length);
        expect(parseClientHello(bytes.subarray(0, result.length))).to.deep.equal(result);
      }
    }
  });

  it("a refused client gets a handshake_failure alert it understands", async () => {
    let failure: Promise<unknown[]> | undefined;
    await capture((port) => {
      const socket = tls.connect({ host: "127.0.0.1", port, servername: "blocked.example.test" });
      failure = once(socket, "error");
    }, tlsAlert(TLS_ALERT_HANDSHAKE_FAILURE));
    const events: unknown[] = (await failure) ?? [];
    expect(events[0])
      .to.have.property("code")
      .that.matches(/ALERT_HANDSHAKE_FAILURE$/);
  });
});

describe("parseClientHello on constructed input", () => {
  const exts = (...extensions: Buffer[]): Buffer => hello({ extensions: vec2(...extensions) });
  const host = hostName;
  const none = { sni: null, alpn: [] };
  // A string wants `invalid` with a message containing it; { sni, alpn } wants `ok` over the whole buffer.
  type Want = ClientHelloResult | string | { sni: string | null; alpn: string[] };
  const cases: [string, Buffer, Want][] = [
    ["minimal hello", hello(), { sni: "api.example.test", alpn: ["h2", "http/1.1"] }],
    ["no extensions at all", hello({ extensions: Buffer.alloc(0) }), none],
    ["empty extension block", exts(), none],
    [
      "unknown extensions are skipped",
      exts(ext(0xfe0d, Buffer.alloc(9)), sni(host("a.test"))),
      { sni: "a.test", alpn: [] },
    ],
    [
      "the name is returned exactly as sent",
      exts(sni(host("A.Test.\xff"))),
      { sni: "A.Test.\xff", alpn: [] },
    ],
    ["empty buffer", Buffer.alloc(0), { state: "need-more" }],
    ["HTTP request", Buffer.from("GET / HTTP/1.1\r\n"), { state: "not-tls" }],
    ["SSLv2-style hello", Buffer.from([0x80, 0x2e, 0x01]), { state: "not-tls" }],
    [
      "hello longer than its record: waits",
      records(handshake(body()).subarray(0, 60)),
      { state: "need-more" },
    ],
    [
      "hello declared longer than its extensions",
      records(handshake(body(), 1, 500)),
      "stray bytes after extensions",
    ],
    ["record version 3.0", records(handshake(body()), [], [22, 3, 0]), "version 3.0"],
    ["record version 3.5", Buffer.from([22, 3, 5]), "version 3.5"],
    ["record version 2.x", Buffer.from([22, 2]), "version major 2"],
    ["empty record", Buffer.from([22, 3, 1, 0, 0]), "record 0 is empty"],
    ["record over 2^14", Buffer.from([22, 3, 1, 0x40, 0x01]), "over 2^14"],
    [
      "alert as second record",
      Buffer.concat([records(handshake(body()).subarray(0, 9)), Buffer.from([21])]),
      "record 1 has content type 21",
    ],
    ["ServerHello", records(handshake(body(), 2)), "handshake type 2"],
    ["hello shorter than its record", records(handshake(body(), 1, 100)), "bytes follow the ClientHello"],
    ["hello declared over 64 KiB", records(Buffer.from([1, 1, 0x11, 0x70])), "exceeds 64 KiB"],
    ["legacy_version SSL 3.0", hello({ version: 0x0300 }), "legacy_version 0x300"],
    ["session id of 33 bytes", hello({ session: vec1(Buffer.alloc(33)) }), "legacy_session_id length 33"],
    ["no cipher suites", hello({ suites: vec2() }), "cipher_suites length 0"],
    ["odd cipher suites", hello({ suites: vec2(Buffer.alloc(3)) }), "odd"],
    ["no compression methods", hello({ compression: vec1() }), "legacy_compression_methods length 0"],
    ["extensions overrun the hello", hello({ extensions: u16(10) }), "extensions overruns"],
    [
      "stray bytes after extensions",
      hello({ extensions: Buffer.concat([vec2(), Buffer.alloc(2)]) }),
      "stray bytes after extensions",
    ],
    ["extension overruns the block", exts(u16(0), u16(5)), "extension 0 overruns"],
    ["two host names", exts(sni(host("a.test"), host("b.test"))), "more than one name"],
    ["name type 1", exts(sni(host("a.test", 1))), "type 1 is not host_name"],
    ["empty server_name list", exts(sni()), "server_name list length 0"],
    ["empty server_name extension", exts(ext(0, Buffer.alloc(0))), "server_name list overruns"],
    ["empty host name", exts(sni(host(""))), "host_name length 0"],
    [
      "server_name list shorter than extension",
      exts(ext(0, Buffer.concat([vec2(host("a.test")), Buffer.alloc(1)]))),
      "stray bytes after server_name list",
    ],
    ["server_name twice", exts(sni(host("a.test")), sni(host("b.test"))), "extension 0 appears twice"],
    ["ALPN twice", exts(alpn("h2"), alpn("http/1.1")), "extension 16 appears twice"],
    ["empty ALPN list", exts(alpn()), "ALPN list length 0"],
    ["empty ALPN protocol", exts(alpn("h2", "")), "ALPN protocol length 0"],
    ["ALPN protocol overruns", exts(ext(16, vec2(Buffer.from([9, 0x68])))), "ALPN protocol overruns"],
  ];
  for (const [name, bytes, expected] of cases) {
    it(name, () => {
      const result = parseClientHello(bytes);
      if (typeof expected !== "string" && "state" in expected)
        return void expect(result).to.deep.equal(expected);
      if (typeof expected !== "string")
        return void expect(result).to.deep.equal(okWith(expected, bytes.length));
      expect(result.state).to.equal("invalid");
      if (result.state === "invalid") expect(result.message).to.include(expected);
    });
  }

  it("invalid as soon as a prefix shows it, not only on the whole", () => {
    const bad = hello({ session: vec1(Buffer.alloc(33)) });
    expect(parseClientHello(bad.subarray(0, 5 + 4 + 2 + 32 + 1))).to.have.property("state", "invalid");
  });

  it("a hello over 2^14 bytes spans several records", () => {
    const big = body({ extensions: vec2(sni(hostName("big.test")), ext(21, Buffer.alloc(40_000))) });
    const bytes = records(handshake(big), [16384, 16384]);
    expect(parseClientHello(bytes)).to.deep.equal(okWith({ sni: "big.test", alpn: [] }, bytes.length));
  });

  it("one-byte records are accepted, but only within 64 KiB", () => {
    const small = records(handshake(body()), Array<number>(200).fill(1));
    expect(parseClientHello(small)).to.deep.include({ state: "ok", sni: "api.example.test" });
    const padded = body({ extensions: vec2(sni(hostName("a.test")), ext(21, Buffer.alloc(11_000))) });
    const tiny = records(handshake(padded), Array<number>(20_000).fill(1));
    expect(parseClientHello(tiny.subarray(0, MAX_CLIENT_HELLO_BYTES))).to.have.property("state", "invalid");
    expect(parseClientHello(tiny)).to.have.property("state", "invalid");
  });
});

describe("sniffHttp and looksLikeHttp", () => {
  const rows: [string, string, ReturnType<typeof sniffHttp>][] = [
    ["request line", "GET / HTTP/1.1\r\n", "http"],
    ["CONNECT", "CONNECT api.example.test:443 HTTP/1.1", "http"],
    ["method and space only", "DELETE ", "http"],
    ["twenty-letter method", `${"A".repeat(20)} /`, "http"],
    ["empty", "", "need-more"],
    ["one letter", "G", "need-more"],
    ["method without the space yet", "OPTIONS", "need-more"],
    ["twenty letters without the space yet", "A".repeat(20), "need-more"],
    ["twenty-one letters", "A".repeat(21), "not-http"],
    ["lowercase method", "get / HTTP/1.1", "not-http"],
    ["leading space", " GET /", "not-http"],
    ["tab after the method", "GET\t/", "not-http"],
    ["digit in the method", "G3T /", "not-http"],
    ["TLS record", "\x16\x03\x01", "not-http"],
  ];
  for (const [name, text, want] of rows) {
    it(`${name}: ${want}`, () => {
      expect(sniffHttp(Buffer.from(text, "latin1"))).to.equal(want);
      expect(looksLikeHttp(Buffer.from(text, "latin1"))).to.equal(want === "http");
    });
  }
});

describe("tlsAlert", () => {
  it("builds a fatal alert record", () => {
    expect([...tlsAlert(TLS_ALERT_HANDSHAKE_FAILURE)]).to.deep.equal([21, 3, 3, 0, 2, 2, 40]);
  });
  it("refuses a description that is not a byte", () => {
    for (const bad of [-1, 256, 1.5, Number.NaN]) expect(() => tlsAlert(bad)).to.throw(RangeError);
  });
});
