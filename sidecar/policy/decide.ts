// decide(): the one function that turns a request's facts into inject, allow or block. Every
// entry path of the sidecar calls it with the same facts, so the same target gets the same
// answer however it arrived.

import { compareCandidates, hostCandidates, type Candidate } from "./candidates.ts";
import { isRecord } from "./fields.ts";
import { canonicalHost, hostMatches, hostPatternString, type CanonicalHost } from "./host.ts";
import type { PolicyIndex } from "./load.ts";
import { DEFAULT_METHODS } from "./methods.ts";
import { pathMatches } from "./path.ts";
import type { Decision, PolicyReason, RequestFacts, TunnelDecision, TunnelFacts } from "./types.ts";

const NO_POLICY: Decision = {
  outcome: "block",
  reason: "NoPolicyLoaded",
  message:
    "no policy is loaded yet, so every request is blocked (fail closed); wait for the first valid policy bundle",
};

/** The facts decide() reads, each of its type. */
interface CleanFacts {
  host: string;
  port: number;
  method: string;
  path: string;
  scheme: string;
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");

// The facts come from the data path; anything malformed is read as a value that matches no rule.
function sanitize(facts: RequestFacts | TunnelFacts): CleanFacts {
  const raw: Partial<Record<keyof RequestFacts, unknown>> = isRecord(facts) ? facts : {};
  return {
    host: text(raw.host),
    port: typeof raw.port === "number" ? raw.port : 0,
    method: text(raw.method),
    path: text(raw.path),
    scheme: text(raw.scheme),
  };
}

function hostForDisplay(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function whyMethodMatchesNothing(method: string): string {
  if (DEFAULT_METHODS.has(method)) return "";
  if (method === "TRACE")
    return "; TRACE is never allowed: the upstream would reflect the request, credentials included";
  return `; only ${[...DEFAULT_METHODS].join(", ")} can be allowed, and "${method}" is not one of them`;
}

function whyHostMatchesNothing(canonical: CanonicalHost): string {
  if (canonical.kind === "ip") return "; IP literals never match a rule: address the service by its DNS name";
  if (canonical.kind === "invalid") return `; the host is not a valid DNS name (${canonical.message})`;
  return "";
}

function block(reason: PolicyReason, message: string, matched?: Candidate): Decision {
  return matched === undefined
    ? { outcome: "block", reason, message }
    : { outcome: "block", reason, policy: matched.entry.rule.policy, rule: matched.entry.rule.rule, message };
}

// Audit lets a would-be block through, without ever attaching a credential.
function enforceOrAudit(index: PolicyIndex, decision: Decision): Decision {
  if (index.policy.mode !== "Audit" || decision.outcome !== "block") return decision;
  const relaxed: Decision = { outcome: "allow", reason: "AuditWouldBlock", auditReason: decision.reason };
  if (decision.policy !== undefined) relaxed.policy = decision.policy;
  if (decision.rule !== undefined) relaxed.rule = decision.rule;
  relaxed.message = `Audit mode let this through; Enforce would block it (${decision.reason}): ${decision.message ?? ""}`;
  return relaxed;
}

function requestCandidates(index: PolicyIndex, name: string | undefined, facts: CleanFacts): Candidate[] {
  if (name === undefined) return [];
  const candidates: Candidate[] = [];
  for (const { entry, hostRank } of hostCandidates(index, name, facts.port)) {
    if (!(entry.methods ?? DEFAULT_METHODS).has(facts.method)) continue;
    let pathRank = 0;
    if (entry.paths !== null) {
      pathRank = -1;
      for (const pattern of entry.paths) {
        if (pattern.length > pathRank && pathMatches(pattern, facts.path)) pathRank = pattern.length;
      }
      if (pathRank < 0) continue;
    }
    candidates.push({ entry, hostRank, pathRank });
  }
  return candidates.length > 1 ? candidates.sort(compareCandidates) : candidates;
}

/**
 * The outcome for one request. Checks, in order:
 *  1. No index loaded → block NoPolicyLoaded (never relaxed by Audit).
 *  2. Candidates: rules whose host matches facts.host (a host that is not a valid DNS name,
 *     e.g. an IP literal, matches nothing), whose ports include facts.port, whose methods
 *     include facts.method (a rule without methods: HTTP_METHODS, so never TRACE, CONNECT or
 *     an extension method), and one of whose paths matches facts.path (or any).
 *  3. No candidate → block NoRuleMatched.
 *  4. Rank candidates: (a) exact host before wildcard, and among wildcards the longer suffix
 *     (more labels) first; (b) the longer matching path pattern first (a rule without paths
 *     ranks 0); (c) a rule with a credential before one without; (d) policy id (string order);
 *     (e) rule index.
 *  5. Another candidate ties with the best on (a) and (b), and both name credentials that
 *     differ → block RuleConflict (never guessed). The same credential is no conflict.
 *  6. The best rule names a credential: facts.host outside the credential's hosts bound →
 *     block CredentialHostMismatch; facts.scheme not "https" → block CredentialRequiresTls (a
 *     credential never leaves over cleartext); else inject, RuleMatched, with the credential.
 *  7. The best rule names no credential → allow RuleMatched.
 * In Audit mode a block from 3, 5 or 6 becomes allow AuditWouldBlock (auditReason = the block's
 * reason, policy and rule when known), never injecting. Never throws.
 */
export function decide(index: PolicyIndex | null, requestFacts: RequestFacts): Decision {
  if (index === null) return { ...NO_POLICY };
  const facts = sanitize(requestFacts);
  // Only block messages name the target: built when one is written, not for every request.
  const target = (): string =>
    `${facts.method} ${facts.scheme}://${hostForDisplay(facts.host)}:${facts.port}${facts.path}`;
  const canonical = canonicalHost(facts.host);
  const name = canonical.kind === "name" ? canonical.name : undefined;
  const candidates = requestCandidates(index, name, facts);
  const best = candidates[0];
  if (best === undefined) {
    const why = whyMethodMatchesNothing(facts.method) || whyHostMatchesNothing(canonical);
    const message = `no rule of the loaded policy allows ${target()}${why}; add a rule to an EgressPolicy selecting this pod`;
    return enforceOrAudit(index, block("NoRuleMatched", message));
  }

  const credential = best.entry.credential;
  const rival = candidates.find(
    (c) =>
      c.hostRank === best.hostRank &&
      c.pathRank === best.pathRank &&
      c.entry.credential !== undefined &&
      credential !== undefined &&
      c.entry.credential.id !== credential.id,
  );
  if (rival !== undefined && credential !== undefined) {
    const message =
      `rules ${best.entry.ref} and ${rival.entry.ref} both match ${target()} at the same precedence but attach ` +
      `different credentials (${credential.id}, ${rival.entry.credential?.id ?? ""}); refusing to guess: give one ` +
      `rule a more specific path, or make both use one credential`;
    return enforceOrAudit(index, block("RuleConflict", message, best));
  }

  const { policy, rule } = best.entry.rule;
  const { headers, hook } = best.entry;
  if (credential === undefined) {
    const allowed: Decision = { outcome: "allow", reason: "RuleMatched", policy, rule };
    if (headers !== undefined) allowed.headers = headers;
    if (hook !== undefined) allowed.hook = hook;
    return allowed;
  }
  const host = name ?? "";
  if (credential.hosts !== null && !credential.hosts.some((pattern) => hostMatches(pattern, host))) {
    const bound = credential.hosts.map(hostPatternString).join(", ");
    const message =
      `rule ${best.entry.ref} matched ${target()}, but Credential ${credential.id} is bound to ${bound}; ` +
      `add "${host}" to the Credential's hosts or remove it from the rule`;
    return enforceOrAudit(index, block("CredentialHostMismatch", message, best));
  }
  if (facts.scheme !== "https") {
    const message =
      `rule ${best.entry.ref} attaches Credential ${credential.id}, which never leaves over cleartext; ` +
      `request https://${hostForDisplay(host)}${facts.path} instead`;
    return enforceOrAudit(index, block("CredentialRequiresTls", message, best));
  }
  const injected: Decision = {
    outcome: "inject",
    reason: "RuleMatched",
    policy,
    rule,
    credential: credential.id,
  };
  if (headers !== undefined) injected.headers = headers;
  if (hook !== undefined) injected.hook = hook;
  return injected;
}

/**
 * The answer when a tunnel opens (CONNECT target or SNI), before any request is seen:
 * no index → block NoPolicyLoaded; no rule matching host and port → block NoRuleMatched
 * (Audit: passthrough with allow AuditWouldBlock); every matching rule names no credential,
 * constrains neither methods nor paths and edits no header → passthrough with the best-ranked
 * rule's allow;
 * otherwise intercept, and decide() each request inside. Never throws.
 */
export function decideTunnel(index: PolicyIndex | null, tunnelFacts: TunnelFacts): TunnelDecision {
  if (index === null) return { action: "block", decision: { ...NO_POLICY } };
  const facts = sanitize(tunnelFacts);
  const canonical = canonicalHost(facts.host);
  const matches = canonical.kind === "name" ? hostCandidates(index, canonical.name, facts.port) : [];
  const candidates: Candidate[] = matches.map(({ entry, hostRank }) => ({ entry, hostRank, pathRank: 0 }));
  if (candidates.length === 0) {
    const target = `${hostForDisplay(facts.host)}:${facts.port}`;
    const message = `no rule of the loaded policy allows ${target}${whyHostMatchesNothing(canonical)}; add a rule to an EgressPolicy selecting this pod`;
    const decision = enforceOrAudit(index, block("NoRuleMatched", message));
    return decision.outcome === "block" ? { action: "block", decision } : { action: "passthrough", decision };
  }
  // A rule that edits headers must see the requests to edit them.
  const unconstrained = candidates.every(
    ({ entry }) =>
      entry.credential === undefined &&
      entry.methods === null &&
      entry.paths === null &&
      entry.headers === undefined &&
      entry.hook === undefined,
  );
  if (!unconstrained) return { action: "intercept" };
  const best = candidates.sort(compareCandidates)[0] ?? candidates[0];
  if (best === undefined) return { action: "intercept" };
  return {
    action: "passthrough",
    decision: {
      outcome: "allow",
      reason: "RuleMatched",
      policy: best.entry.rule.policy,
      rule: best.entry.rule.rule,
    },
  };
}
