// The Node ceiling for `test/bench/proxy.ts`: the smallest useful node:http forward proxy
// (absolute-form requests over a keep-alive pool, CONNECT spliced to the target) with no policy,
// no scrubbing and no logging. What Airlock's plain-forward and passthrough arms are compared to.
//
//   node test/bench/node-proxy.ts PORT   (listens on 127.0.0.1:PORT; 0 picks one and prints it)
import http from "node:http";
import net from "node:net";

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
server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
  const [host, port] = (req.url ?? "").split(":");
  const upstream = net.connect({ host, port: Number(port), noDelay: true }, () => {
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    upstream.write(head);
    socket.pipe(upstream).on("error", () => upstream.destroy());
    upstream.pipe(socket).on("error", () => socket.destroy());
  });
  upstream.on("error", () => socket.destroy());
  socket.on("error", () => upstream.destroy());
});
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  const address = server.address() as net.AddressInfo;
  process.stderr.write(`node-proxy listening on 127.0.0.1:${address.port}\n`);
});
