// Pushes compiled bundles to sidecars' control ports (sidecar/control/server.ts): read the
// sidecar's status, sign generation + 1 for its bootId, POST, and turn the answer (ACK/NACK, or a
// failure to reach it) into the SidecarReport the core reads back. The certificate is not verified:
// the signature carries the authority (docs/decisions.md, "Control port").

import type { KeyObject } from "node:crypto";
import https from "node:https";
import { signBundle, type PushAnswer } from "../sidecar/control/bundle.ts";
import { PORTS } from "../sidecar/constants.ts";
import type { PushTarget } from "./core/pods.ts";
import type { PushResult } from "./metrics.ts";
import type { SidecarReport } from "./core/snapshot.ts";

/** How to push: the operator's Ed25519 private key, the port, and limits. */
export interface PushOptions {
  privateKey: KeyObject;
  /** Default PORTS.control (where the webhook configures the sidecar to listen). */
  port?: number;
  /** Per-request timeout in ms (default 5000); a push is two requests. */
  timeoutMs?: number;
  /** Pushes in flight at once (default 8). */
  concurrency?: number;
  /** Told how each push ended (metrics). */
  onResult?: (result: PushResult) => void;
}

interface Reply {
  status: number;
  body: unknown;
}

/**
 * Connections to sidecars kept between the status read and the push, and between pushes: a new
 * TLS handshake for each of the two requests was most of the operator's CPU per push (measured with
 * 1,000 hollow sidecars, docs/benchmarks.md). An idle connection is dropped after 4 s, before the
 * sidecar's own 5 s keep-alive timeout closes it from the other side.
 */
const KEEP_ALIVE = new https.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: 4_000 });

function call(
  method: "GET" | "POST",
  host: string,
  port: number,
  path: string,
  timeoutMs: number,
  body?: unknown,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      {
        host,
        port,
        path,
        method,
        rejectUnauthorized: false,
        timeout: timeoutMs,
        agent: KEEP_ALIVE,
        headers:
          data === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(data) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown,
            });
          } catch {
            reject(
              new Error(`${method} ${path}: HTTP ${String(res.statusCode)} with a body that is not JSON`),
            );
          }
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(data);
  });
}

interface SidecarStatus {
  bootId: string;
  generation: number;
  hash: string | null;
}

function parseStatus(body: unknown): SidecarStatus | undefined {
  const b = body as Partial<Record<keyof SidecarStatus, unknown>> | null;
  if (b === null || typeof b.bootId !== "string" || typeof b.generation !== "number") return undefined;
  return { bootId: b.bootId, generation: b.generation, hash: typeof b.hash === "string" ? b.hash : null };
}

/**
 * Pushes one target's bundle and reports where the sidecar stands. Never throws: a sidecar that
 * cannot be reached or answers nonsense is reported with reason `Unreachable`, keeping `previous`'s
 * generation and hash (what it last told us it runs).
 */
export async function pushBundle(
  target: PushTarget,
  options: PushOptions,
  previous?: SidecarReport,
): Promise<SidecarReport> {
  const { report, result } = await pushOnce(target, options, previous);
  options.onResult?.(result);
  return report;
}

async function pushOnce(
  target: PushTarget,
  options: PushOptions,
  previous?: SidecarReport,
): Promise<{ report: SidecarReport; result: PushResult }> {
  const port = options.port ?? PORTS.control;
  const timeoutMs = options.timeoutMs ?? 5000;
  const unreachable = (message: string) => ({
    result: "unreachable" as const,
    report: {
      generation: previous?.generation ?? 0,
      hash: previous?.hash ?? null,
      lastError: { reason: "Unreachable", message, hash: target.hash },
    },
  });
  try {
    const reply = await call("GET", target.podIP, port, "/v1/status", timeoutMs);
    const status = reply.status === 200 ? parseStatus(reply.body) : undefined;
    if (status === undefined)
      return unreachable(`GET /v1/status: HTTP ${reply.status}, not a sidecar status`);
    if (status.hash === target.hash)
      return { result: "unchanged", report: { generation: status.generation, hash: status.hash } };
    const signed = signBundle(
      {
        apiVersion: "airlock.dev/v1alpha1",
        kind: "PolicyBundle",
        generation: status.generation + 1,
        bootId: status.bootId,
        issuedAt: new Date().toISOString(),
        policy: target.policy,
      },
      options.privateKey,
    );
    const posted = await call("POST", target.podIP, port, "/v1/bundle", timeoutMs, signed);
    const answer = posted.body as Partial<PushAnswer> | null;
    if (answer?.result === "ACK" && typeof answer.generation === "number")
      return { result: "ack", report: { generation: answer.generation, hash: answer.hash ?? target.hash } };
    if (answer?.result === "NACK" && typeof answer.reason === "string") {
      return {
        result: "nack",
        report: {
          generation: typeof answer.generation === "number" ? answer.generation : status.generation,
          hash: typeof answer.hash === "string" ? answer.hash : status.hash,
          lastError: {
            reason: answer.reason,
            message: typeof answer.message === "string" ? answer.message : "",
            ...(Array.isArray(answer.errors) ? { errors: answer.errors } : {}),
            hash: target.hash,
          },
        },
      };
    }
    return unreachable(`POST /v1/bundle: HTTP ${posted.status}, neither ACK nor NACK`);
  } catch (err) {
    return unreachable(err instanceof Error ? err.message : String(err));
  }
}

/** Pushes every target with at most `concurrency` in flight; reports keyed by pod uid. */
export async function pushAll(
  targets: readonly PushTarget[],
  options: PushOptions,
  previous: ReadonlyMap<string, SidecarReport> = new Map(),
): Promise<Map<string, SidecarReport>> {
  const reports = new Map<string, SidecarReport>();
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < targets.length; i = next++) {
      const target = targets[i];
      if (target === undefined) continue;
      reports.set(target.uid, await pushBundle(target, options, previous.get(target.uid)));
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency ?? 8, targets.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return reports;
}
