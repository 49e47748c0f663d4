// A minimal client of an explicit proxy: HTTP in absolute form, HTTPS through CONNECT. The demo
// uses it so that `airlock demo` needs nothing but the airlock package itself.
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { http } from "../process/http.ts";
import https from "node:https";
import tls from "node:tls";

/** What the client saw. */
export interface ProxyResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function collect(res: IncomingMessage): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => {
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      });
    });
    res.on("error", reject);
  });
}

/** Sends `method url` through the proxy at host:port; `ca` is what the client trusts for https. */
export function requestViaProxy(
  proxy: { host: string; port: number },
  method: string,
  url: string,
  options: { ca?: string[]; headers?: Record<string, string> } = {},
): Promise<ProxyResponse> {
  const target = new URL(url);
  const headers = options.headers ?? {};
  if (target.protocol === "http:") {
    return new Promise((resolve, reject) => {
      http
        .request({ host: proxy.host, port: proxy.port, method, path: url, headers }, (res) => {
          collect(res).then(resolve, reject);
        })
        .on("error", reject)
        .end();
    });
  }
  const port = Number(target.port || 443);
  return new Promise((resolve, reject) => {
    const connect = http.request({
      host: proxy.host,
      port: proxy.port,
      method: "CONNECT",
      path: `${target.hostname}:${port}`,
    });
    connect.on("connect", (res: IncomingMessage, socket, head: Buffer) => {
      if (res.statusCode !== 200) {
        // A refused CONNECT carries the proxy's answer in the rest of the stream.
        const chunks: Buffer[] = [head];
        socket.on("data", (c: Buffer) => chunks.push(c));
        socket.on("close", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text.slice(text.indexOf("{")) });
        });
        return;
      }
      const secure = tls.connect({
        socket,
        servername: target.hostname,
        ...(options.ca ? { ca: options.ca } : {}),
      });
      secure.on("error", reject);
      https
        .request(
          {
            method,
            path: target.pathname + target.search,
            headers: { host: target.host, ...headers },
            createConnection: () => secure,
          },
          (r) => {
            collect(r).then(resolve, reject);
          },
        )
        .on("error", reject)
        .end();
    });
    connect.on("error", reject);
    connect.end();
  });
}
