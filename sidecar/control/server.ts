// The sidecar's control port: the operator pushes signed bundles here and reads the applied
// version back (Envoy-style ACK/NACK). Only bundles signed by the operator's key, for this process
// (bootId) and newer than the applied generation are loaded; a rejected bundle changes nothing.
import { randomBytes, type KeyObject } from "node:crypto";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { controlAnswer, sendAnswer } from "../proxy/answers.ts";
import type { Gate } from "../proxy/gate.ts";
import type { CertificateAuthority } from "../tls/ca.ts";
import { openBundle, type BundleRejection, type PushAnswer } from "./bundle.ts";

const MAX_BODY = 4 * 1024 * 1024;
/** The name on the control port's certificate (the operator dials the pod IP and checks the signature, not this). */
export const CONTROL_SERVER_NAME = "control.airlock.internal";

/**
 * Creates the HTTPS control server; `publicKey` is the operator's Ed25519 key, or several during a
 * key rotation (a bundle signed by any of them is accepted).
 */
export function createControlServer(options: {
  gate: Gate;
  ca: CertificateAuthority;
  publicKey: KeyObject | readonly KeyObject[];
  log: Logger;
}): { server: https.Server; bootId: string } {
  const { gate, publicKey, log } = options;
  const bootId = randomBytes(16).toString("hex");
  // The operator dials the pod IP (no SNI): one certificate for every name.
  const server = https.createServer({
    ...options.ca.serverCredentials(CONTROL_SERVER_NAME),
    minVersion: "TLSv1.2",
  });
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    sendAnswer(res, controlAnswer(status, body));
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === "/v1/status" && req.method === "GET") {
      send(res, 200, {
        bootId,
        generation: gate.generation,
        hash: gate.policyHash ?? null,
        ready: gate.ready,
      });
      return;
    }
    if (path !== "/v1/bundle" || req.method !== "POST") {
      send(res, 404, { error: "not found: POST /v1/bundle or GET /v1/status" });
      return;
    }
    readBody(req, res, send, (text) => {
      const answer = pushBundle(text, gate, publicKey, bootId);
      log.info(
        {
          control: answer.result,
          generation: answer.generation,
          reason: answer.result === "NACK" ? answer.reason : undefined,
        },
        "bundle push",
      );
      send(res, answer.result === "ACK" ? 200 : answer.reason === "LoadFailed" ? 422 : 409, answer);
    });
  });
  server.on("clientError", (_err, socket) => socket.destroy());

  return { server, bootId };
}

/**
 * Checks and applies one pushed bundle: signed by one of `publicKey`, for this process (`bootId`),
 * newer than the applied generation, and loadable; anything else is a NACK that changes nothing.
 */
function pushBundle(
  text: string,
  gate: Gate,
  publicKey: KeyObject | readonly KeyObject[],
  bootId: string,
): PushAnswer {
  const current = { generation: gate.generation, hash: gate.policyHash ?? null };
  const nack = (
    reason: BundleRejection | "LoadFailed",
    message: string,
    errors?: { path: string; message: string }[],
  ): PushAnswer => ({
    result: "NACK",
    reason,
    message,
    ...(errors ? { errors } : {}),
    ...current,
  });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return nack("Malformed", "the body is not JSON");
  }
  const opened = openBundle(body, publicKey);
  if (!opened.ok) return nack(opened.reason, opened.message);
  const bundle = opened.value;
  if (bundle.bootId !== bootId)
    return nack("WrongBoot", "the bundle was signed for another sidecar process; read /v1/status again");
  if (bundle.generation <= gate.generation)
    return nack(
      "StaleGeneration",
      `generation ${bundle.generation} is not newer than the applied ${gate.generation}`,
    );
  const applied = gate.apply(bundle.policy, bundle.generation);
  if (!applied.ok)
    return nack(
      "LoadFailed",
      "the policy in the bundle failed to load; the last good policy stays applied",
      applied.errors.map((e) => ({ path: e.path, message: e.message })),
    );
  return { result: "ACK", generation: bundle.generation, hash: gate.policyHash ?? "" };
}

/** Collects a request body up to MAX_BODY (413 beyond it), then hands it to `onBody` as text. */
function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  send: (res: ServerResponse, status: number, body: unknown) => void,
  onBody: (text: string) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      send(res, 413, { error: "bundle too large" });
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on("end", () => {
    if (res.headersSent) return;
    onBody(Buffer.concat(chunks).toString("utf8"));
  });
}
