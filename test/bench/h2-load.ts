// An HTTP/2 load client for `make bench` (h2load cannot go through an HTTP proxy): CONNS
// connections, each with STREAMS requests in flight at all times, for SECONDS. Each connection is
// TLS with ALPN h2 to NAME, either dialled at ADDRESS directly or through a CONNECT tunnel to the
// proxy on 127.0.0.1:PROXY. Certificates are not verified (as hey does not). Prints one JSON line:
// req/s, p50 and p99 in ms, answered and failed requests.
//
//   node test/bench/h2-load.ts --url https://NAME:PORT/PATH (--address IP | --proxy PORT)
//                              [--conns 10] [--streams 10] [--seconds 3]
import http2, { type ClientHttp2Session } from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { option } from "./args.ts";

const url = new URL(option("--url") ?? "");
const address = option("--address");
const proxy = option("--proxy");
const conns = Number(option("--conns") ?? 10);
const streams = Number(option("--streams") ?? 10);
const seconds = Number(option("--seconds") ?? 3);
const port = Number(url.port || 443);

/** A TCP connection to the origin: direct, or a CONNECT tunnel through the proxy. */
async function dial(): Promise<net.Socket> {
  if (proxy === undefined) return net.connect({ host: address ?? url.hostname, port });
  const socket = net.connect({ host: "127.0.0.1", port: Number(proxy) });
  socket.write(`CONNECT ${url.hostname}:${port} HTTP/1.1\r\nHost: ${url.hostname}:${port}\r\n\r\n`);
  const answer = await new Promise<string>((resolve, reject) => {
    socket.once("data", (chunk: Buffer) => {
      resolve(chunk.toString("latin1"));
    });
    socket.once("error", reject);
  });
  if (!answer.startsWith("HTTP/1.1 200"))
    throw new Error(`CONNECT refused: ${answer.split("\r\n")[0] ?? ""}`);
  return socket;
}

async function session(): Promise<ClientHttp2Session> {
  const socket = await dial();
  const secure = tls.connect({
    socket,
    servername: url.hostname,
    ALPNProtocols: ["h2"],
    rejectUnauthorized: false,
  });
  await new Promise<void>((resolve, reject) => {
    secure.once("secureConnect", resolve);
    secure.once("error", reject);
  });
  if (secure.alpnProtocol !== "h2") throw new Error(`ALPN chose ${String(secure.alpnProtocol)}, not h2`);
  return http2.connect(url.origin, { createConnection: () => secure });
}

const latencies: number[] = [];
let ok = 0;
let errors = 0;
const deadline = performance.now() + seconds * 1000;

/** One stream after another on `client` until the deadline. */
async function loop(client: ClientHttp2Session): Promise<void> {
  while (performance.now() < deadline && !client.destroyed) {
    const started = performance.now();
    const status = await new Promise<number>((resolve) => {
      const req = client.request({ ":path": url.pathname });
      let code = 0;
      req.on("response", (headers) => {
        code = Number(headers[":status"]);
      });
      req.on("data", () => undefined);
      req.on("end", () => {
        resolve(code);
      });
      req.on("error", () => {
        resolve(0);
      });
    });
    if (status === 200) {
      ok++;
      latencies.push(performance.now() - started);
    } else errors++;
  }
}

const sessions = await Promise.all(Array.from({ length: conns }, () => session()));
const began = performance.now();
await Promise.all(sessions.flatMap((client) => Array.from({ length: streams }, () => loop(client))));
const elapsed = (performance.now() - began) / 1000;
for (const client of sessions) client.close();
latencies.sort((a, b) => a - b);
const at = (q: number): number =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
console.log(JSON.stringify({ rps: ok / elapsed, p50: at(0.5), p99: at(0.99), ok, errors }));
