// The e2e's upstream: what "the internet" is in the test world. One pod in a namespace without the
// boundary serves HTTPS on 443 and HTTP on 80 for every name the policies use, and listens on UDP
// 5353. It writes one JSON line per arrival to stdout (the test reads `kubectl logs`), and answers
// with a body that names the host and path but never echoes a request header.
// Runs on Node 24 with type stripping: node: imports only.
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";

function record(entry: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
}

function handler(scheme: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      record({
        kind: "http",
        scheme,
        method: req.method,
        url: req.url,
        headers: req.headers,
        bodyBytes: Buffer.concat(chunks).length,
        from: req.socket.remoteAddress,
      });
      const body = `hello from ${String(req.headers.host)} ${String(req.url)}\n`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  };
}

const tls = { cert: readFileSync("/tls/tls.crt"), key: readFileSync("/tls/tls.key") };
createHttpsServer(tls, handler("https")).listen(443, "0.0.0.0");
createHttpServer(handler("http")).listen(80, "0.0.0.0");
const udp = createSocket("udp4");
udp.on("message", (msg, from) => {
  record({ kind: "udp", bytes: msg.length, from: from.address });
});
udp.bind(5353, "0.0.0.0");
record({ kind: "ready" });
