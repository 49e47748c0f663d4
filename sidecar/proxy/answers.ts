// The answer map: every answer the sidecar itself writes — blocks, upstream failures, malformed
// requests, raw-socket and TLS refusals, the control port's replies — is built here, as data,
// and written by the two writers below (an HTTP response, or a raw socket). The status line's
// reason phrase is always the standard one for the code (node:http STATUS_CODES).
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import { http } from "../process/http.ts";
import type { Duplex } from "node:stream";
import { DECISION_HEADER } from "../constants.ts";
import { tlsAlert, TLS_ALERT_HANDSHAKE_FAILURE } from "../tls/client-hello.ts";
import type { Reason, Verdict } from "./verdict.ts";

/** One HTTP answer as data: status, headers (lower-case names, in the order written), body. */
export interface Answer {
  status: number;
  headers: Record<string, string | number>;
  body: string;
}

/** The standard status line for `status`, e.g. "HTTP/1.1 400 Bad Request". */
export function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? "Unknown"}`;
}

// 400 for requests that could not be understood, else 403.
function blockStatus(reason: Reason): number {
  return reason === "InvalidRequest" ? 400 : 403;
}

// The JSON body the agent receives for a block: outcome, reason and what to change.
function blockBody(verdict: Verdict, host: string | undefined): string {
  return JSON.stringify({
    error: "egress_blocked",
    outcome: "block",
    reason: verdict.reason,
    host: host ?? null,
    ...(verdict.policy !== undefined ? { policy: verdict.policy, rule: verdict.rule } : {}),
    message: verdict.message ?? "blocked by airlock",
  });
}

function json(status: number, body: string, extra: Record<string, string> = {}): Answer {
  return {
    status,
    headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...extra },
    body,
  };
}

/** A block: 400/403 with the JSON body, the decision header, and `connection: close` when `close`. */
export function blockAnswer(verdict: Verdict, host: string | undefined, close = false): Answer {
  return json(blockStatus(verdict.reason), blockBody(verdict, host), {
    [DECISION_HEADER]: "block",
    ...(close ? { connection: "close" } : {}),
  });
}

const UNDICI_TIMEOUTS = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** Kinds of upstream failure (bounded label values for airlock_upstream_errors_total). */
export type UpstreamErrorKind = "connect" | "dns" | "tls" | "timeout" | "reset" | "protocol";

/**
 * Classifies a socket/TLS error from dialling or talking to an upstream (Node's codes, and the
 * HTTP client's: UND_ERR_* timeouts, and UND_ERR_SOCKET when the upstream closed mid-exchange).
 */
export function upstreamErrorKind(err: unknown): UpstreamErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return "protocol";
  if (code === "ETIMEDOUT" || code === "UpstreamTimeout" || UNDICI_TIMEOUTS.has(code)) return "timeout";
  if (code === "ECONNRESET" || code === "EPIPE" || code === "UND_ERR_SOCKET") return "reset";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "ENODATA") return "dns";
  if (code.startsWith("ERR_TLS") || code.includes("CERT") || code.startsWith("ERR_SSL") || code === "EPROTO")
    return "tls";
  if (code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENETUNREACH") return "connect";
  return "protocol";
}

/** An upstream failure: 504 on timeout, else 502; the kind only, never a secret. */
export function upstreamErrorAnswer(kind: UpstreamErrorKind, outcome: string): Answer {
  const body = JSON.stringify({
    error: "upstream_error",
    kind,
    message: `airlock could not complete the request upstream (${kind})`,
  });
  return json(kind === "timeout" ? 504 : 502, body, { [DECISION_HEADER]: outcome });
}

/** A request the HTTP parser rejected (`code` from Node's parser): 431 for oversized headers, else 400; empty body. */
export function clientErrorAnswer(code: string | undefined): Answer {
  return {
    status: code === "HPE_HEADER_OVERFLOW" ? 431 : 400,
    headers: { connection: "close", "content-length": 0 },
    body: "",
  };
}

/** A control-port reply: `body` as JSON with `status`. */
export function controlAnswer(status: number, body: unknown): Answer {
  return json(status, JSON.stringify(body));
}

/** The bytes of `answer` on the wire: status line, headers, blank line, body. */
export function rawAnswer(answer: Answer): string {
  const headers = Object.entries(answer.headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  return `${statusLine(answer.status)}\r\n${headers}\r\n${answer.body}`;
}

/** Writes `answer` on an HTTP response; a response already started is destroyed instead. */
export function sendAnswer(res: ServerResponse, answer: Answer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (isGrpcCall(res)) {
    sendGrpcAnswer(res, answer);
    return;
  }
  res.writeHead(answer.status, answer.headers satisfies OutgoingHttpHeaders).end(answer.body);
}

/** gRPC status codes for the sidecar's own answers (grpc/doc/statuscodes.md). */
const GRPC_STATUS: Record<number, number> = {
  400: 3, // INVALID_ARGUMENT
  403: 7, // PERMISSION_DENIED
  502: 14, // UNAVAILABLE
  504: 4, // DEADLINE_EXCEEDED
};

/** True when the response answers a gRPC call (Content-Type application/grpc, +proto, …). */
function isGrpcCall(res: ServerResponse): boolean {
  const type = (res as { req?: { headers?: Record<string, unknown> } }).req?.headers?.["content-type"];
  return typeof type === "string" && /^application\/grpc(\+|;|$)/i.test(type);
}

/**
 * An answer to a gRPC call as gRPC clients read one: HTTP 200, an empty body, and the status in
 * grpc-status / grpc-message (trailers over HTTP/2) — a block is PERMISSION_DENIED with the
 * reason and what to change, an upstream failure UNAVAILABLE or DEADLINE_EXCEEDED.
 */
function sendGrpcAnswer(res: ServerResponse, answer: Answer): void {
  let text = http.STATUS_CODES[answer.status] ?? "error";
  try {
    const body = JSON.parse(answer.body) as { reason?: unknown; message?: unknown };
    const message = typeof body.message === "string" ? body.message : text;
    text = typeof body.reason === "string" ? `airlock ${body.reason}: ${message}` : `airlock: ${message}`;
  } catch {
    // Not JSON: the standard phrase.
  }
  // The decision is in the trailers too: gRPC libraries hand those to the caller with the error.
  const decision = answer.headers[DECISION_HEADER];
  const decided: Record<string, string> =
    decision !== undefined ? { [DECISION_HEADER]: String(decision) } : {};
  const status = {
    "grpc-status": String(GRPC_STATUS[answer.status] ?? 2),
    "grpc-message": grpcPercentEncode(text),
    ...decided,
  };
  const headers: Record<string, string> = { "content-type": "application/grpc", ...decided };
  if (res.req.httpVersionMajor === 2) {
    res.writeHead(200, headers);
    res.addTrailers(status);
    res.end();
  } else res.writeHead(200, { ...headers, ...status, "content-length": 0 }).end();
}

/** grpc-message's encoding: bytes outside printable ASCII, and '%', percent-encoded (UTF-8). */
function grpcPercentEncode(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8"))
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}

/** Writes `answer` on a socket no HTTP server manages, then closes it once written. */
export function sendRawAnswer(socket: Duplex, answer: Answer): void {
  socket.end(rawAnswer(answer));
  (socket as Duplex & { destroySoon?: () => void }).destroySoon?.();
}

/** Writes a block answer on an HTTP response (connection closed when `close`). */
export function sendBlock(
  res: ServerResponse,
  verdict: Verdict,
  host: string | undefined,
  close = false,
): void {
  sendAnswer(res, blockAnswer(verdict, host, close));
}

/** Writes the agent's answer to an upstream failure: 504 on timeout, else 502; never a secret. */
export function sendUpstreamError(res: ServerResponse, kind: UpstreamErrorKind, outcome: string): void {
  sendAnswer(res, upstreamErrorAnswer(kind, outcome));
}

/** The refusal of a TLS stream before any handshake: a fatal handshake_failure alert. */
export function tlsRefusal(): Buffer {
  return tlsAlert(TLS_ALERT_HANDSHAKE_FAILURE);
}
