// The Node ceiling for `test/bench/proxy.ts`: the smallest useful node:http forward proxy
// (absolute-form requests over a keep-alive pool, CONNECT spliced to the target) with no policy,
// no scrubbing and no logging. What Airlock's plain-forward and passthrough arms are compared to.
// With --mitm it also intercepts CONNECTs to HOST the way the inject arms need: TLS terminated
// with CERT/KEY, one header added, forwarded over a keep-alive TLS pool verified against CA. That
// is the ceiling for the inject arms: the same Node HTTP and TLS machinery Airlock uses, none of
// the boundary's own work.
//
//   node test/bench/node-proxy.ts PORT
//     [--mitm HOST --address IP --cert F --key F --ca F --header NAME:VALUE]
//   (listens on 127.0.0.1:PORT; 0 picks one and prints it)
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { option } from "./args.ts";

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/");
  const headers = { ...req.headers };
  delete headers["proxy-connection"];
  const upstream = http.request(
    {
      host: url.hostname,
      port: url.port || 80,
      path: url.pathname + url.search,
      method: req.method,
      headers,
      agent,
    },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    },
  );
  upstream.on("error", () => res.destroy());
  req.pipe(upstream);
});

const mitmHost = option("--mitm");
const mitm = mitmHost === undefined ? undefined : intercepting(mitmHost);

/** The intercepting half: an HTTP server fed the decrypted connections, an upstream TLS pool. */
function intercepting(host: string): (socket: net.Socket, head: Buffer) => void {
  const read = (flag: string): string => readFileSync(option(flag) ?? "", "utf8");
  const [name = "", value = ""] = (option("--header") ?? "").split(":");
  const address = option("--address") ?? host;
  const context = tls.createSecureContext({ cert: read("--cert"), key: read("--key") });
  const pool = new https.Agent({
    keepAlive: true,
    maxSockets: 256,
    secureContext: tls.createSecureContext({ ca: read("--ca") }),
  });
  const inner = http.createServer((req, res) => {
    const headers = { ...req.headers, [name]: value };
    const upstream = https.request(
      { host: address, port: 443, servername: host, path: req.url, method: req.method, headers, agent: pool },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  return (socket, head) => {
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) socket.unshift(head);
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
    secure.on("error", () => secure.destroy());
    inner.emit("connection", secure);
  };
}

server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
  const [host, port] = (req.url ?? "").split(":");
  socket.on("error", () => socket.destroy());
  if (mitm && host === mitmHost) {
    mitm(socket, head);
    return;
  }
  const upstream = net.connect({ host, port: Number(port), noDelay: true }, () => {
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    upstream.write(head);
    socket.pipe(upstream).on("error", () => upstream.destroy());
    upstream.pipe(socket).on("error", () => socket.destroy());
  });
  upstream.on("error", () => socket.destroy());
  socket.on("close", () => upstream.destroy());
});
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  const address = server.address() as net.AddressInfo;
  process.stderr.write(`node-proxy listening on 127.0.0.1:${address.port}\n`);
});
// Exit normally on a signal, so that --cpu-prof and friends write their files.
for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => process.exit(0));
