// Verdicts: the policy core's Decision widened with the reasons only the data path can know, and
// the one place that maps a blocked verdict to what the agent receives.
import type { ServerResponse } from "node:http";
import { DECISION_HEADER } from "../constants.ts";
import type { Decision, PolicyReason } from "../policy/types.ts";

/**
 * Reasons the data path adds to the policy core's (stable; they are in logs, metrics and status):
 * - AddressForbidden: the target is, or resolves to, an address airlock refuses to dial.
 * - CredentialUnavailable: the rule's credential could not be resolved (fail closed).
 * - HostMismatch: Host differs from the absolute URI, the CONNECT target or the SNI.
 * - InvalidRequest: the request could not be reduced to canonical facts.
 * - UnsupportedProtocol: neither TLS nor HTTP/1.x, or an Upgrade the sidecar cannot police.
 * - OriginalPortUnknown: a captured connection whose original port the capture rules did not record.
 */
export type DataPathReason =
  | "AddressForbidden"
  | "CredentialUnavailable"
  | "HostMismatch"
  | "InvalidRequest"
  | "UnsupportedProtocol"
  | "OriginalPortUnknown";

/** Every stable reason a verdict can carry. */
export type Reason = PolicyReason | DataPathReason;

/** A decision as the proxy acts on it. */
export interface Verdict extends Omit<Decision, "reason"> {
  reason: Reason;
}

/** A block verdict for a data-path reason. */
export function blockVerdict(reason: Reason, message: string): Verdict {
  return { outcome: "block", reason, message };
}

/** The HTTP status for a blocked verdict: 400 for requests that could not be understood, else 403. */
export function blockStatus(reason: Reason): number {
  return reason === "InvalidRequest" ? 400 : 403;
}

/** The JSON body the agent receives for a block: outcome, reason and what to change. */
export function blockBody(verdict: Verdict, host: string | undefined): string {
  return JSON.stringify({
    error: "egress_blocked",
    outcome: "block",
    reason: verdict.reason,
    host: host ?? null,
    ...(verdict.policy !== undefined ? { policy: verdict.policy, rule: verdict.rule } : {}),
    message: verdict.message ?? "blocked by airlock",
  });
}

/** Writes a block answer on an HTTP response (connection closed when `close`). */
export function sendBlock(
  res: ServerResponse,
  verdict: Verdict,
  host: string | undefined,
  close = false,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = blockBody(verdict, host);
  res.writeHead(blockStatus(verdict.reason), {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    [DECISION_HEADER]: "block",
    ...(close ? { connection: "close" } : {}),
  });
  res.end(body);
}

/** Kinds of upstream failure (bounded label values for airlock_upstream_errors_total). */
export type UpstreamErrorKind = "connect" | "dns" | "tls" | "timeout" | "reset" | "protocol";

/** Classifies a socket/TLS error from dialling or talking to an upstream. */
export function upstreamErrorKind(err: unknown): UpstreamErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return "protocol";
  if (code === "ETIMEDOUT" || code === "UpstreamTimeout") return "timeout";
  if (code === "ECONNRESET" || code === "EPIPE") return "reset";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "ENODATA") return "dns";
  if (code.startsWith("ERR_TLS") || code.includes("CERT") || code.startsWith("ERR_SSL") || code === "EPROTO")
    return "tls";
  if (code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENETUNREACH") return "connect";
  return "protocol";
}

/** Writes the agent's answer to an upstream failure: 504 on timeout, else 502; never a secret. */
export function sendUpstreamError(res: ServerResponse, kind: UpstreamErrorKind, outcome: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    error: "upstream_error",
    kind,
    message: `airlock could not complete the request upstream (${kind})`,
  });
  res.writeHead(kind === "timeout" ? 504 : 502, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    [DECISION_HEADER]: outcome,
  });
  res.end(body);
}
