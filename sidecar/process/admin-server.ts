// The read-only admin listener: /metrics, /healthz, /readyz, for the sidecar and the operator alike.
// It holds no secret and changes nothing.
import type { Server } from "node:http";
import { http } from "./http.ts";
import type { Registry } from "prom-client";

/**
 * Serves the registry and health; `ready` decides /readyz (false until a policy is applied), and
 * `notReadyReason`, when given, is the 503 body (what is wrong and what to do).
 */
export function createAdminServer(
  registry: Registry,
  ready: () => boolean,
  notReadyReason?: () => string,
): Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const ok = ready();
      res
        .writeHead(ok ? 200 : 503, { "content-type": "text/plain" })
        .end(ok ? "ready\n" : (notReadyReason?.() ?? "no policy applied yet\n"));
    } else {
      res
        .writeHead(404, { "content-type": "text/plain" })
        .end("not found: try /metrics, /healthz or /readyz\n");
    }
  });
}
