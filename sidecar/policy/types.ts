// The policy core's data types: what the compiler reads, what it produces, what decide() answers.
// Everything here is plain data (JSON-serialisable); nothing here touches I/O.

import type { SigV4Injection } from "./aws-sigv4.ts";
import type { GitHubAppSpec } from "./github-app.ts";
import type { HookSpec } from "./hook.ts";
import type { OAuth2Spec } from "./oauth2.ts";

/** Kubernetes object identity as it appears in errors, logs and status. */
export interface ObjectRef {
  kind: "EgressPolicy" | "Credential" | "Secret";
  namespace: string;
  name: string;
}

/** One located problem in an input object; `path` is a JSON field path such as `spec.egress[2].hosts[0]`. */
export interface FieldError {
  object?: ObjectRef;
  path: string;
  /** What is wrong and what to do instead, e.g. `"*" is not a host; use "*.example.com"`. */
  message: string;
}

/** The result of every fallible step of the core: a value, or every error found (never only the first). */
export type Result<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

export type Mode = "Enforce" | "Audit";

/** How a credential is attached: exactly one form. */
export type Injection =
  | { kind: "header"; name: string; valuePrefix: string }
  | { kind: "basicAuth"; username: string }
  | { kind: "queryParam"; name: string }
  | SigV4Injection;

/** A host pattern after compilation: an exact lower-case DNS name, or `*.suffix` (any depth, never the apex). */
export type HostPattern = { kind: "exact"; name: string } | { kind: "wildcard"; suffix: string };

/** A compiled Credential: where its value lives and how it is attached. Never holds the value. */
export interface CompiledCredential {
  /** `namespace/name` of the Credential. */
  id: string;
  namespace: string;
  name: string;
  secretRef: { name: string; key: string };
  injection: Injection;
  /** Hard bound: the credential is attached only to these hosts; null = no bound beyond the rules. */
  hosts: HostPattern[] | null;
  /** The value attached is an access token from this token endpoint (secretRef: the client secret). */
  oauth2?: OAuth2Spec;
  /** The value attached is a GitHub App installation token (secretRef: the App's private key). */
  githubApp?: GitHubAppSpec;
  /** The placeholder the agent may hold (placeholder.ts); absent = none. */
  placeholder?: string;
}

/** A compiled rule of one policy. */
export interface CompiledRule {
  /** `namespace/name` of the EgressPolicy. */
  policy: string;
  /** The rule's `name`, unique within its policy. */
  rule: string;
  /** Position of the rule in its policy's `spec.egress`. */
  index: number;
  hosts: HostPattern[];
  ports: number[];
  /** Upper-case methods; null = the default set (HTTP_METHODS in methods.ts). */
  methods: string[] | null;
  /** Path patterns as written (`*` within a segment, `**` across); null = any path. */
  paths: string[] | null;
  /** `namespace/name` of the Credential (a key of CompiledPolicy.credentials); absent = allow-only. */
  credential?: string;
  /** Headers set on every request the rule matches (names as written); absent = none. */
  setHeaders?: { name: string; value: string }[];
  /** Lower-case names of headers removed from every request the rule matches; absent = none. */
  removeHeaders?: string[];
  /** A service asked about every request the rule matches; absent = none. */
  hook?: HookSpec;
}

/** Two rules at the same precedence rank that would attach different credentials. */
export interface Conflict {
  /** The two rules as `policy#rule`. */
  rules: [string, string];
  message: string;
}

/**
 * The compiled, content-hashed policy for one pod identity: the unit the operator pushes and the
 * sidecar loads. JSON-serialisable; `hash` covers every other field.
 */
export interface CompiledPolicy {
  apiVersion: "airlock.dev/v1alpha1";
  kind: "CompiledPolicy";
  /** `sha256:<hex>` of the canonical JSON of the other fields. */
  hash: string;
  /** Audit only when every policy in it is Audit; any Enforce policy makes the identity Enforce. */
  mode: Mode;
  policies: { id: string; mode: Mode; generation?: number }[];
  rules: CompiledRule[];
  credentials: Record<string, CompiledCredential>;
  conflicts: Conflict[];
}

/** A rule's static header edits as the data path applies them: removals first, then sets. */
export interface HeaderEdits {
  set: { name: string; value: string }[];
  /** Lower-case names. */
  remove: string[];
}

/** Which listener a request came in through. */
export type Entry = "http" | "connect" | "transparent-http" | "transparent-tls";

/** The canonical facts of one request: every entry path reduces a request to these. */
export interface RequestFacts {
  scheme: "http" | "https";
  /** Lower-case, no trailing dot; an IP literal in its canonical form never matches a rule. */
  host: string;
  port: number;
  /** Upper-case method. */
  method: string;
  /** Normalised path (see normalizePath), no query. */
  path: string;
  entry: Entry;
}

/** The facts known when a tunnel opens (CONNECT target or SNI), before any request inside it. */
export interface TunnelFacts {
  host: string;
  port: number;
  entry: Entry;
}

/**
 * Stable reasons. They appear in logs, metrics and CR status: never rename one once shipped.
 * - RuleMatched: a rule matched (outcome inject or allow).
 * - NoRuleMatched: default deny.
 * - NoPolicyLoaded: no valid policy yet (fail closed).
 * - RuleConflict: rules of equal rank name different credentials; never guessed.
 * - CredentialHostMismatch: the matched rule's credential is bound to other hosts.
 * - CredentialRequiresTls: an inject rule matched a cleartext request.
 * - AuditWouldBlock: Audit mode let through a request Enforce would block (see Decision.auditReason).
 * The proxy adds the reasons of the data path (AddressForbidden, CredentialUnavailable, …) in its own union.
 */
export type PolicyReason =
  | "RuleMatched"
  | "NoRuleMatched"
  | "NoPolicyLoaded"
  | "RuleConflict"
  | "CredentialHostMismatch"
  | "CredentialRequiresTls"
  | "AuditWouldBlock";

export type Outcome = "inject" | "allow" | "block";

/** What decide() answers: plain data, acted on by the proxy. */
export interface Decision {
  outcome: Outcome;
  reason: PolicyReason;
  /** `namespace/name` of the policy whose rule decided, when one did. */
  policy?: string;
  rule?: string;
  /** `namespace/name` of the credential to attach (outcome inject only). */
  credential?: string;
  /** The matched rule's static header edits (outcome inject or allow), when it has any. */
  headers?: HeaderEdits;
  /** The matched rule's hook (outcome inject or allow): asked before the request goes. */
  hook?: HookSpec;
  /** With reason AuditWouldBlock: the reason Enforce mode would have blocked with. */
  auditReason?: PolicyReason;
  /** Human-readable detail for error bodies and logs; never holds a secret. */
  message?: string;
}

/**
 * What decideTunnel() answers for a CONNECT target or an SNI name:
 * - passthrough: every rule that can match host:port is an unconstrained allow rule, so the
 *   stream may be relayed without interception (decision is that allow).
 * - intercept: some rule matching host:port injects a credential or constrains method/path, so
 *   TLS must be terminated and each request inside decided with decide().
 * - block: no rule can match host:port (decision says why).
 */
export type TunnelDecision =
  | { action: "passthrough"; decision: Decision }
  | { action: "intercept" }
  | { action: "block"; decision: Decision };
