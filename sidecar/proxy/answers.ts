// The answer map: every answer the sidecar itself writes — blocks, upstream failures, malformed
// requests, raw-socket and TLS refusals, the control port's replies — is built here, as data,
// and written by the two writers below (an HTTP response, or a raw socket). The status line's
// reason phrase is always the standard one for the code (node:http STATUS_CODES).
import { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
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
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}`;
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
  res.writeHead(answer.status, answer.headers satisfies OutgoingHttpHeaders).end(answer.body);
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
