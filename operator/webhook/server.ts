// The admission webhook's HTTPS server: a thin shell (STYLE.md §9) that parses an AdmissionReview,
// asks admission.ts for the answer and writes it. A body that is not a review gets HTTP 400 with a
// JSON error; nothing a client sends can crash the process. The serving certificate can be
// replaced while running (setTls), so a rotated certificate needs no restart.
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import { pino, type Logger } from "pino";
import type { InjectionConfig } from "../inject/types.ts";
import { admitInjection, admitValidation } from "./admission.ts";
import { WEBHOOK_PATHS } from "./configurations.ts";
import {
  deny,
  parseReview,
  reviewResponse,
  type AdmissionRequest,
  type AdmissionResponse,
} from "./review.ts";

/** The serving certificate (chain, PEM) and its private key (PEM). */
export interface WebhookTls {
  cert: string;
  key: string;
}

/** Where and how to serve. */
export interface WebhookServerOptions {
  listen: { host: string; port: number };
  tls: WebhookTls;
  injection: InjectionConfig;
  /** One line per refused request and per handler failure; nothing for allowed ones below debug. */
  log?: Logger;
}

/** A running webhook server. */
export interface WebhookServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** Serves `tls` to every new connection from now on; throws (keeping the old one) if it is unusable. */
  setTls(tls: WebhookTls): void;
  /** Stops accepting, closes idle keep-alive connections, resolves when every connection is gone. */
  close(): Promise<void>;
}

/**
 * The largest review accepted. The API server accepts objects up to 3 MiB, and an UPDATE review
 * carries the object twice (object, oldObject): 2 × 3 MiB plus the envelope.
 */
export const MAX_REVIEW_BYTES = 7 * 1024 * 1024;

/** The API server gives up after timeoutSeconds (10); a request still open after this is not its. */
const REQUEST_TIMEOUT_MS = 15_000;
/** How long close() lets in-flight reviews finish before cutting their connections. */
const CLOSE_GRACE_MS = 2_000;

function describe(request: AdmissionRequest): Record<string, unknown> {
  const { group, resource } = request.resource;
  return {
    uid: request.uid,
    operation: request.operation,
    resource: [group, resource, request.subResource].filter((s) => s !== "").join("/"),
    namespace: request.namespace,
    name: request.name,
    dryRun: request.dryRun,
  };
}

function reviewHandler(
  route: string,
  admit: (request: AdmissionRequest) => AdmissionResponse,
  log: Logger,
): (req: Request, res: Response) => void {
  return (req, res) => {
    const parsed = parseReview(Buffer.isBuffer(req.body) ? req.body : "");
    if (!parsed.ok) {
      log.warn({ route, error: parsed.error }, "malformed admission review");
      res.status(400).json({ error: "malformed_review", message: parsed.error });
      return;
    }
    const started = performance.now();
    let response: AdmissionResponse;
    try {
      response = admit(parsed.request);
    } catch (err) {
      // A bug, not a verdict: refuse (fail closed) and say so, rather than time the API server out.
      log.error({ route, ...describe(parsed.request), err }, "admission handler failed");
      response = deny(
        parsed.request.uid,
        500,
        "Airlock's admission webhook failed on this object; see its log",
      );
    }
    const ms = Math.round((performance.now() - started) * 1000) / 1000;
    const fields = {
      route,
      ...describe(parsed.request),
      allowed: response.allowed,
      patched: "patch" in response,
      ms,
    };
    if (response.allowed) log.debug(fields, "admitted");
    else log.info({ ...fields, message: response.status?.message }, "refused");
    res.status(200).json(reviewResponse(response));
  };
}

function errorHandler(log: Logger) {
  // Express recognises an error handler by its four parameters.
  return (err: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const status = (err as { status?: unknown }).status;
    const code = typeof status === "number" && status >= 400 && status < 500 ? status : 500;
    const type = (err as { type?: unknown }).type;
    if (code === 500) log.error({ err }, "webhook request failed");
    res.status(code).json({
      error: code === 413 ? "review_too_large" : code === 500 ? "internal_error" : "malformed_review",
      message:
        code === 413
          ? `the review exceeds ${String(MAX_REVIEW_BYTES)} bytes`
          : typeof type === "string"
            ? type
            : "bad request",
    });
  };
}

/** The express app: POST /inject, POST /validate, GET /healthz; JSON errors for everything else. */
export function webhookApp(injection: InjectionConfig, log: Logger): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  // Any content type (the API server sends application/json; others get the same parse and a 400);
  // no gzip, so the limit bounds what is held in memory.
  const body = express.raw({ type: () => true, limit: MAX_REVIEW_BYTES, inflate: false });
  app.post(
    WEBHOOK_PATHS.inject,
    body,
    reviewHandler("inject", (r) => admitInjection(r, injection), log),
  );
  app.post(WEBHOOK_PATHS.validate, body, reviewHandler("validate", admitValidation, log));
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.use((_req, res) => {
    res.status(404).json({
      error: "not_found",
      message: `serves POST ${WEBHOOK_PATHS.inject}, POST ${WEBHOOK_PATHS.validate}, GET /healthz`,
    });
  });
  app.use(errorHandler(log));
  return app;
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new Error(`webhook: cannot listen on ${host}:${String(port)}: ${err.message}`, { cause: err }));
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Starts the HTTPS webhook server; resolves once it listens. */
export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const log = options.log ?? pino({ enabled: false });
  const tlsOptions = (tls: WebhookTls) => ({ cert: tls.cert, key: tls.key, minVersion: "TLSv1.2" as const });
  const server = createServer(
    { ...tlsOptions(options.tls), requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS },
    webhookApp(options.injection, log),
  );
  // Handshake failures (a client not trusting us yet, a port scan) are the client's problem.
  server.on("tlsClientError", (err) => {
    log.debug({ err: err.message }, "webhook TLS handshake failed");
  });
  await listen(server, options.listen.host, options.listen.port);
  server.on("error", (err) => {
    log.error({ err }, "webhook server error");
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    setTls: (tls) => {
      server.setSecureContext(tlsOptions(tls));
    },
    close: () =>
      new Promise<void>((resolve) => {
        const cut = setTimeout(() => {
          server.closeAllConnections();
        }, CLOSE_GRACE_MS);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
