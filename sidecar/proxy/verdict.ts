// Verdicts: the policy core's Decision widened with the reasons only the data path can know.
// What the agent receives for one is answers.ts's business.
import type { Decision, PolicyReason } from "../policy/index.ts";

/**
 * Reasons the data path adds to the policy core's (stable; they are in logs, metrics and status):
 * - AddressForbidden: the target is, or resolves to, an address airlock refuses to dial.
 * - CredentialUnavailable: the rule's credential could not be resolved (fail closed).
 * - HostMismatch: Host differs from the absolute URI, the CONNECT target or the SNI.
 * - InvalidRequest: the request could not be reduced to canonical facts.
 * - UnsupportedProtocol: neither TLS nor HTTP/1.x, or an Upgrade the sidecar cannot police.
 * - OriginalPortUnknown: a captured connection whose original port the capture rules did not record.
 * - HookDenied: the matched rule's decision hook answered deny.
 * - HookUnavailable: the matched rule's decision hook gave no usable answer in time (fail closed).
 * - PlaceholderOffHost: a credential's placeholder in a request its credential is not attached to.
 */
export type DataPathReason =
  | "AddressForbidden"
  | "CredentialUnavailable"
  | "HostMismatch"
  | "InvalidRequest"
  | "UnsupportedProtocol"
  | "OriginalPortUnknown"
  | "HookDenied"
  | "HookUnavailable"
  | "PlaceholderOffHost";

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

// forward.ts has always found its answers here; they are built in answers.ts.
export { sendBlock, sendUpstreamError, upstreamErrorKind, type UpstreamErrorKind } from "./answers.ts";
