// The gate: the sidecar's one place where facts become verdicts. It holds the loaded policy (last
// good kept), and the resolver, secrets, CA, metrics and audit log every entry path shares.
import { rootCertificates } from "node:tls";
import type { Logger } from "pino";
import {
  canonicalHost,
  decide,
  decideTunnel,
  load,
  nameReachable,
  type PolicyIndex,
} from "../policy/index.ts";
import type {
  CompiledCredential,
  FieldError,
  RequestFacts,
  TunnelDecision,
  TunnelFacts,
} from "../policy/index.ts";
import { decisionWriter, type AuditRecord, type DecisionWriter } from "../observe/audit.ts";
import type { SidecarMetrics } from "../observe/metrics.ts";
import type { CertificateAuthority } from "../tls/ca.ts";
import { prepareInjection, prepareSigV4, unsafeValueReason, type PreparedInjection } from "./inject.ts";
import type { Resolver, ResolveResult } from "./resolve.ts";
import type { SecretFailure, SecretSource } from "./secrets.ts";
import { DecisionHooks } from "./hooks.ts";
import { MintedTokens, type TokenResult } from "./tokens.ts";
import { blockVerdict, type Verdict } from "./verdict.ts";

/** What every placeholder starts with (placeholder.ts). */
const PLACEHOLDER_PREFIX = "airlock_ph_";

/** Everything a gate is built from. */
export interface GateOptions {
  secrets: SecretSource;
  resolver: Resolver;
  ca: CertificateAuthority;
  metrics: SidecarMetrics;
  log: Logger;
  /** Extra PEM roots for verifying upstreams (`--upstream-ca`). */
  upstreamCa?: string[];
  /** True for an address:port that is one of the sidecar's own listeners (no proxy recursion). */
  isSelf?: (address: string, port: number) => boolean;
}

/**
 * Why a credential could not be attached: the `reason` label of airlock_credential_errors_total
 * (stable). NotCompiled: not in the loaded policy; SecretMissing, KeyMissing: see SecretFailure;
 * InvalidValue: the value would split the request (unsafeValueReason); TokenUnavailable: an OAuth2
 * token endpoint gave no token (tokens.ts); WriteBackFailed: a rotated refresh token could not be
 * written to its Secret (counted only; the request is not refused). The verdict's reason is
 * CredentialUnavailable for each.
 */
export type CredentialFailure =
  "NotCompiled" | SecretFailure | "InvalidValue" | "TokenUnavailable" | "WriteBackFailed";

/** A credential ready to attach, or the block verdict that replaces it. */
export type CredentialResult =
  | { ok: true; credential: CompiledCredential; injection: PreparedInjection }
  | { ok: false; verdict: Verdict };

/** The loaded policy and the shared services of one sidecar. */
export class Gate {
  readonly resolver: Resolver;
  readonly ca: CertificateAuthority;
  readonly metrics: SidecarMetrics;
  readonly log: Logger;
  /** Roots for upstream TLS: the system's plus `--upstream-ca`. */
  readonly upstreamRoots: string[];
  #secrets: SecretSource;
  #index: PolicyIndex | null = null;
  #generation = 0;
  #isSelf: (address: string, port: number) => boolean;
  /** Writes decision lines as `log.info` would, cheaper (one per request); undefined: use log.info. */
  #decisionLine: DecisionWriter | undefined;
  /** The last prepared injection per credential id: patterns are built once per value, not per request. */
  /** Placeholder → the id of its credential (policy.ts placeholder). */
  #placeholders = new Map<string, string>();
  /** Decision hooks (a rule's `hook`) and their cached answers. */
  readonly hooks: DecisionHooks;
  /** Minted tokens (OAuth2, GitHub App), per credential id. */
  #tokens: MintedTokens;
  #prepared = new Map<
    string,
    { credential: CompiledCredential; value: string; injection: PreparedInjection }
  >();

  constructor(options: GateOptions) {
    this.resolver = options.resolver;
    this.ca = options.ca;
    this.metrics = options.metrics;
    this.log = options.log;
    this.#decisionLine = decisionWriter(options.log);
    this.upstreamRoots = [...rootCertificates, ...(options.upstreamCa ?? [])];
    this.#secrets = options.secrets;
    this.#isSelf = options.isSelf ?? (() => false);
    this.hooks = new DecisionHooks({
      resolve: (host, port) => this.resolve(host, port),
      roots: this.upstreamRoots,
      secrets: () => this.#secrets,
    });
    this.#tokens = new MintedTokens({
      resolve: (host, port) => this.resolve(host, port),
      roots: this.upstreamRoots,
      onRotated: (id, value) => {
        this.#writeBack(id, value);
      },
    });
  }

  /** The applied policy's generation (0 before the first). */
  get generation(): number {
    return this.#generation;
  }

  /** True once a policy has been applied (readiness). */
  get ready(): boolean {
    return this.#index !== null;
  }

  /** The applied policy's content hash, if any. */
  get policyHash(): string | undefined {
    return this.#index?.policy.hash;
  }

  /**
   * Loads and applies a compiled policy. On any error nothing changes: the last good policy (or
   * none, which blocks everything) stays in force.
   */
  apply(bundle: unknown, generation: number): { ok: true } | { ok: false; errors: FieldError[] } {
    const loaded = load(bundle);
    if (!loaded.ok) return loaded;
    this.#index = loaded.value;
    this.#generation = generation;
    this.#prepared.clear();
    this.#placeholders = new Map(
      Object.values(loaded.value.policy.credentials).flatMap((c) =>
        c.placeholder === undefined ? [] : [[c.placeholder, c.id] as [string, string]],
      ),
    );
    this.#trackSecrets();
    this.metrics.policyInfo.reset();
    this.metrics.policyInfo.set({ generation: String(generation), hash: loaded.value.policy.hash }, 1);
    this.metrics.policyApplied.set(Date.now() / 1000);
    return { ok: true };
  }

  /** True when the applied policy gives some credential a placeholder. */
  get hasPlaceholders(): boolean {
    return this.#placeholders.size > 0;
  }

  /** The placeholders in `text` with their credential ids (none: an empty list). */
  placeholdersIn(text: string): [string, string][] {
    if (this.#placeholders.size === 0 || !text.includes(PLACEHOLDER_PREFIX)) return [];
    const found: [string, string][] = [];
    for (const [placeholder, id] of this.#placeholders)
      if (text.includes(placeholder)) found.push([placeholder, id]);
    return found;
  }

  /** True when some rule of the applied policy names `name` (what the DNS responder answers for). */
  nameReachable(name: string): boolean {
    return nameReachable(this.#index, name);
  }

  /** Replaces the secret source (a new set of files, or a cluster watch). */
  setSecrets(secrets: SecretSource): void {
    this.#secrets = secrets;
    this.#trackSecrets();
  }

  #trackSecrets(): void {
    const credentials = Object.values(this.#index?.policy.credentials ?? {});
    const refs = new Map(
      credentials.map((c) => [
        `${c.namespace}/${c.secretRef.name}`,
        { namespace: c.namespace, name: c.secretRef.name },
      ]),
    );
    // A hook's token Secret, in its policy's namespace.
    for (const rule of this.#index?.policy.rules ?? []) {
      const ref = rule.hook?.tokenSecretRef;
      const namespace = rule.policy.split("/")[0] ?? "";
      if (ref !== undefined) refs.set(`${namespace}/${ref.name}`, { namespace, name: ref.name });
    }
    this.#secrets.track?.([...refs.values()]);
  }

  /** The verdict for one request's canonical facts. IP-literal hosts are checked as the addresses they are. */
  evaluate(facts: RequestFacts): Verdict {
    const literal = this.#forbiddenLiteral(facts.host);
    return literal ?? decide(this.#index, facts);
  }

  /** The tunnel-level answer for a CONNECT target or SNI name. */
  evaluateTunnel(facts: TunnelFacts): TunnelDecision | { action: "block"; decision: Verdict } {
    const literal = this.#forbiddenLiteral(facts.host);
    return literal ? { action: "block", decision: literal } : decideTunnel(this.#index, facts);
  }

  /** Resolves the host of allowed facts and checks every address (and that it is not the sidecar itself). */
  async resolve(host: string, port: number): Promise<ResolveResult> {
    const canonical = canonicalHost(host);
    const result =
      canonical.kind === "ip"
        ? this.resolver.checkAddress(canonical.address)
        : await this.resolver.resolve(host);
    if (result.ok && result.addresses.some((a) => this.#isSelf(a.address, port)))
      return {
        ok: false,
        kind: "forbidden",
        message: `${host}:${port} is this sidecar; proxying to itself is refused`,
      };
    return result;
  }

  /**
   * Resolves the value of credential `id` now (a rotated Secret is used on the next request). An
   * OAuth2 credential's value is its access token: at once when a fresh one is held, else once the
   * token endpoint has answered.
   */
  credential(id: string): CredentialResult | Promise<CredentialResult> {
    const credential = this.#index?.policy.credentials[id];
    const fail = (reason: CredentialFailure, message: string): CredentialResult =>
      this.#refuse(id, reason, message);
    if (!credential) return fail("NotCompiled", `credential ${id} is not in the loaded policy`);
    const lookup = this.#secrets.get(
      credential.namespace,
      credential.secretRef.name,
      credential.secretRef.key,
    );
    if (!lookup.ok)
      return fail(
        lookup.reason,
        lookup.reason === "SecretMissing"
          ? `Secret ${credential.namespace}/${credential.secretRef.name} for credential ${id} is missing`
          : `Secret ${credential.namespace}/${credential.secretRef.name} has no key "${credential.secretRef.key}" for credential ${id}`,
      );
    const secret = lookup.value.toString("utf8");
    if (credential.injection.kind === "awsSigV4") return this.#sigV4(credential, secret);
    const settle = (token: TokenResult): CredentialResult =>
      token.ok
        ? this.#prepare(credential, token.token)
        : fail("TokenUnavailable", `credential ${id}: ${token.message}`);
    if (credential.githubApp !== undefined) {
      const minted = this.#tokens.githubApp(id, credential.githubApp, secret);
      return minted instanceof Promise ? minted.then(settle) : settle(minted);
    }
    if (credential.oauth2 === undefined) return this.#prepare(credential, secret);
    const spec = credential.oauth2;
    const refreshToken =
      spec.refreshTokenKey === undefined ? undefined : this.#secretKey(credential, spec.refreshTokenKey);
    if (refreshToken !== undefined && typeof refreshToken !== "string") return refreshToken;
    const token = this.#tokens.oauth2(id, spec, secret, refreshToken);
    return token instanceof Promise ? token.then(settle) : settle(token);
  }

  /**
   * Writes a rotated refresh token back to the credential's Secret when its Credential opts in
   * (writeBackRefreshToken). A failure is logged and counted (never the value); the token stays in
   * use from memory either way.
   */
  #writeBack(id: string, value: string): void {
    const credential = this.#index?.policy.credentials[id];
    const key = credential?.oauth2?.refreshTokenKey;
    if (credential?.oauth2?.writeBackRefreshToken !== true || key === undefined) return;
    const fail = (message: string): void => {
      const reason: CredentialFailure = "WriteBackFailed";
      this.metrics.credentialErrors.inc({ credential: id, reason });
      this.log.warn({ credential: id, message }, "rotated refresh token not written back");
    };
    const update = this.#secrets.update?.bind(this.#secrets);
    if (update === undefined) {
      fail("this sidecar's Secrets cannot be written (files)");
      return;
    }
    update(credential.namespace, credential.secretRef.name, key, value).then(
      (written) => {
        if (!written.ok) fail(written.message);
      },
      (err: unknown) => {
        fail(err instanceof Error ? err.message : "error");
      },
    );
  }

  /** Blocks with CredentialUnavailable for `reason` (counted; the message never holds a value). */
  #refuse(id: string, reason: CredentialFailure, message: string): CredentialResult {
    this.metrics.credentialErrors.inc({ credential: id, reason });
    return { ok: false, verdict: { ...blockVerdict("CredentialUnavailable", message), credential: id } };
  }

  /** Another key of the credential's Secret (a refresh token, an access key id), or the refusal. */
  #secretKey(credential: CompiledCredential, key: string): string | CredentialResult {
    const { id, namespace, secretRef } = credential;
    const got = this.#secrets.get(namespace, secretRef.name, key);
    return got.ok
      ? got.value.toString("utf8")
      : this.#refuse(
          id,
          got.reason,
          `Secret ${namespace}/${secretRef.name} has no key "${key}" for credential ${id}`,
        );
  }

  /** An awsSigV4 credential: the access key id and session token from the same Secret, then the keys. */
  #sigV4(credential: CompiledCredential, secretAccessKey: string): CredentialResult {
    const { id, injection } = credential;
    if (injection.kind !== "awsSigV4")
      return this.#refuse(id, "NotCompiled", `credential ${id} does not sign`);
    const read = (key: string): string | CredentialResult => {
      const got = this.#secretKey(credential, key);
      return typeof got === "string" ? got.trim() : got;
    };
    const accessKeyId = read(injection.accessKeyIdKey);
    if (typeof accessKeyId !== "string") return accessKeyId;
    const sessionToken =
      injection.sessionTokenKey === undefined ? undefined : read(injection.sessionTokenKey);
    if (sessionToken !== undefined && typeof sessionToken !== "string") return sessionToken;
    const value = `${accessKeyId}\n${secretAccessKey}\n${sessionToken ?? ""}`;
    for (const part of [accessKeyId, secretAccessKey, ...(sessionToken ? [sessionToken] : [])]) {
      const unsafe = unsafeValueReason(part);
      if (unsafe !== undefined)
        return this.#refuse(id, "InvalidValue", `credential ${id} cannot sign: ${unsafe}`);
    }
    const cached = this.#prepared.get(id);
    if (cached?.value === value && cached.credential === credential)
      return { ok: true, credential, injection: cached.injection };
    const prepared = prepareSigV4(credential, {
      accessKeyId,
      secretAccessKey,
      ...(sessionToken !== undefined ? { sessionToken } : {}),
    });
    this.#prepared.set(id, { credential, value, injection: prepared });
    return { ok: true, credential, injection: prepared };
  }

  /** The injection of `value` for `credential` (built once per value). */
  #prepare(credential: CompiledCredential, value: string): CredentialResult {
    const { id } = credential;
    const unsafe = unsafeValueReason(value);
    if (unsafe !== undefined)
      return this.#refuse(id, "InvalidValue", `credential ${id} cannot be sent: ${unsafe}`);
    const cached = this.#prepared.get(id);
    if (cached?.value === value && cached.credential === credential)
      return { ok: true, credential, injection: cached.injection };
    const injection = prepareInjection(credential, value);
    this.#prepared.set(id, { credential, value, injection });
    return { ok: true, credential, injection };
  }

  /** Counts a decision and writes its audit line. */
  record(verdict: Verdict, record: Omit<AuditRecord, "outcome" | "reason">): void {
    const full: AuditRecord = {
      ...record,
      outcome: verdict.outcome,
      reason: verdict.reason,
      ...(verdict.auditReason !== undefined ? { auditReason: verdict.auditReason } : {}),
      ...(verdict.policy !== undefined ? { policy: verdict.policy, rule: verdict.rule } : {}),
      ...(verdict.credential !== undefined ? { credential: verdict.credential } : {}),
    };
    this.metrics.decisions.inc({
      outcome: verdict.outcome,
      reason: verdict.reason,
      policy: verdict.policy ?? "",
      rule: verdict.rule ?? "",
    });
    if (record.durationMs !== undefined)
      this.metrics.requestDuration.observe({ outcome: verdict.outcome }, record.durationMs / 1000);
    const msg = verdict.outcome === "block" ? (verdict.message ?? "blocked") : "decision";
    if (this.#decisionLine) this.#decisionLine(full, msg);
    else this.log.info(full, msg);
  }

  #forbiddenLiteral(host: string): Verdict | undefined {
    const canonical = canonicalHost(host);
    if (canonical.kind !== "ip") return undefined;
    const check = this.resolver.checkAddress(canonical.address);
    return check.ok ? undefined : blockVerdict("AddressForbidden", check.message);
  }
}
