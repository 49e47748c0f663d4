// A real HTTP(S) upstream that answers every request with a JSON echo of what it received and
// keeps its own record of it: the demo's upstreams, and the tests' proof of what crossed the boundary.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { http } from "../process/http.ts";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { CertificateAuthority } from "../tls/ca.ts";

/** What the upstream saw of one request. */
export interface ReceivedRequest {
  host: string | undefined;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
}

/** A running echo upstream. */
export interface EchoUpstream {
  port: number;
  /** Every request received, in order. */
  received: ReceivedRequest[];
  /** PEM of the CA that signed its certificates (tls only). */
  caPem: string;
  /** The listening server (for what rides on it besides requests, such as WebSocket upgrades). */
  server: Server;
  close(): Promise<void>;
}

/**
 * Starts an echo server on `host` (default 127.0.0.1). With `tls`, it serves a certificate for
 * whatever SNI name a client asks for, signed by its own CA (clients must trust `caPem`).
 * `respond` may replace the default echo for special cases (redirects, reflections, errors).
 */
export async function startEchoUpstream(
  options: {
    tls?: boolean;
    host?: string;
    port?: number;
    respond?: (req: ReceivedRequest, res: ServerResponse) => boolean;
    /** The CA that signs its certificates (several upstreams may share one). */
    ca?: CertificateAuthority;
  } = {},
): Promise<EchoUpstream> {
  const received: ReceivedRequest[] = [];
  const ca = options.ca ?? new CertificateAuthority();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const record: ReceivedRequest = {
        host: req.headers.host,
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      received.push(record);
      if (options.respond?.(record, res) === true) return;
      const body = JSON.stringify({ method: record.method, url: record.url, headers: record.headers });
      res.writeHead(200, { "content-type": "application/json", "x-echo": "1" }).end(body);
    });
  };
  const server =
    options.tls === true
      ? https.createServer(
          {
            SNICallback: (name, cb) => {
              cb(null, ca.contextFor(name.toLowerCase()));
            },
            minVersion: "TLSv1.2",
          },
          handler,
        )
      : http.createServer(handler);
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve),
  );
  return {
    port: (server.address() as AddressInfo).port,
    received,
    caPem: ca.certificatePem,
    server,
    close: () =>
      new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
