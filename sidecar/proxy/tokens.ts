// Tokens the sidecar mints for Credentials: OAuth2 access tokens (`spec.oauth2`; RFC 6749 §4.4
// client credentials, §6 refresh token) and GitHub App installation tokens (`spec.githubApp`: an
// RS256 JWT signed with the App's key, exchanged for a token). The sidecar asks the endpoint itself — its name resolved and its
// address checked like any upstream's, its certificate verified against the same roots — and
// keeps each token until shortly before it expires. Concurrent requests that find no fresh token
// share one exchange; a failed exchange is remembered for a moment so a failing endpoint is not
// hammered, and the next request after that tries again. No token, secret or endpoint answer body
// is logged: failures say the status and the OAuth2 error code only.
import { createHash, createPrivateKey, sign } from "node:crypto";
import type { GitHubAppSpec, OAuth2Spec } from "../policy/index.ts";
import { post, type PostAnswer } from "./post.ts";
import type { ResolveResult } from "./resolve.ts";

/** A token ready to attach, or why there is none (a message for the block, never a secret). */
export type TokenResult = { ok: true; token: string } | { ok: false; message: string };

/** What the token client needs from the sidecar. */
export interface TokenDeps {
  /** The sidecar's resolver with its address checks (Gate.resolve). */
  resolve: (host: string, port: number) => Promise<ResolveResult>;
  /** PEM roots upstream certificates are verified against. */
  roots: string[];
  /** Milliseconds since the epoch (tests may move it). */
  now?: () => number;
  /** Each exchange: the credential id and how it ended (metrics). */
  onExchange?: (credential: string, result: "ok" | "error") => void;
  /** The endpoint rotated credential `id`'s refresh token to `value`. */
  onRotated?: (credential: string, value: string) => void;
  timeoutMs?: number;
}

/** How long before its expiry a token is replaced: a tenth of its life, at most a minute. */
function margin(lifetimeMs: number): number {
  return Math.min(60_000, lifetimeMs / 10);
}
/** A token endpoint that gives no expires_in: the token is kept this long. */
const DEFAULT_LIFETIME_MS = 300_000;
/** After a failed exchange, requests are refused without asking again for this long. */
const RETRY_AFTER_MS = 1_000;

interface Entry {
  /** Spec and secrets the entry was obtained with: any change starts afresh. */
  fingerprint: string;
  token?: string;
  renewAt: number;
  inflight?: Promise<TokenResult>;
  failure?: { message: string; until: number };
  /** A refresh token the endpoint rotated to (used instead of the Secret's until that changes). */
  rotated?: string;
  /** The Secret's refresh token when the entry was made (or when our write-back of `rotated` arrived). */
  secretRefresh?: string | undefined;
}

/** What one exchange gives: a token and how long it lives, or why there is none. */
type Minted =
  { ok: true; token: string; lifetimeMs: number; refreshToken?: string } | { ok: false; message: string };

/** The minted tokens of one sidecar, per credential id. */
export class MintedTokens {
  #deps: TokenDeps;
  #entries = new Map<string, Entry>();
  #now: () => number;

  constructor(deps: TokenDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** Forgets every token (a new policy was applied). */
  clear(): void {
    this.#entries.clear();
  }

  /** Credential `id`'s OAuth2 access token (see #mint). */
  oauth2(
    id: string,
    spec: OAuth2Spec,
    clientSecret: string,
    refreshToken?: string,
  ): TokenResult | Promise<TokenResult> {
    // A provider that rotates refresh tokens on use invalidates the Secret's after the first
    // exchange: the one it rotated to is used from then on. The Secret's changing to it (our own
    // write-back arriving) keeps the token; its changing to anything else starts afresh.
    const existing = this.#entries.get(id);
    if (existing !== undefined) {
      if (refreshToken !== undefined && refreshToken === existing.rotated)
        existing.secretRefresh = refreshToken;
      else if (refreshToken !== existing.secretRefresh) this.#entries.delete(id);
    }
    const result = this.#mint(id, [spec, clientSecret], (entry) =>
      this.#oauth2Exchange(spec, clientSecret, entry.rotated ?? refreshToken),
    );
    const entry = this.#entries.get(id);
    if (entry !== undefined && !("secretRefresh" in entry)) entry.secretRefresh = refreshToken;
    return result;
  }

  /** Credential `id`'s GitHub App installation token (see #mint). */
  githubApp(id: string, spec: GitHubAppSpec, privateKeyPem: string): TokenResult | Promise<TokenResult> {
    return this.#mint(id, [spec, privateKeyPem], () => this.#githubExchange(spec, privateKeyPem));
  }

  /**
   * The current token for credential `id`: at once when a fresh one is held, else the one
   * exchange every concurrent caller shares. `inputs` (spec and secrets) key the entry: any
   * change starts afresh.
   */
  #mint(
    id: string,
    inputs: unknown[],
    exchange: (entry: Entry) => Promise<Minted>,
  ): TokenResult | Promise<TokenResult> {
    const fingerprint = createHash("sha256").update(JSON.stringify(inputs)).digest("hex");
    let entry = this.#entries.get(id);
    if (entry?.fingerprint !== fingerprint) {
      entry = { fingerprint, renewAt: 0 };
      this.#entries.set(id, entry);
    }
    const now = this.#now();
    if (entry.token !== undefined && now < entry.renewAt) return { ok: true, token: entry.token };
    if (entry.inflight) return entry.inflight;
    if (entry.failure && now < entry.failure.until) return { ok: false, message: entry.failure.message };
    const current = entry;
    current.inflight = exchange(current).then((result) => {
      current.inflight = undefined;
      this.#deps.onExchange?.(id, result.ok ? "ok" : "error");
      if (!result.ok) {
        current.failure = { message: result.message, until: this.#now() + RETRY_AFTER_MS };
        return result;
      }
      current.failure = undefined;
      current.token = result.token;
      if (result.refreshToken !== undefined) {
        current.rotated = result.refreshToken;
        this.#deps.onRotated?.(id, result.refreshToken);
      }
      current.renewAt = this.#now() + result.lifetimeMs - margin(result.lifetimeMs);
      return { ok: true, token: result.token };
    });
    return current.inflight;
  }

  async #oauth2Exchange(
    spec: OAuth2Spec,
    clientSecret: string,
    refreshToken: string | undefined,
  ): Promise<Minted> {
    const form = new URLSearchParams();
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
    if (spec.grant === "refreshToken") {
      form.set("grant_type", "refresh_token");
      form.set("refresh_token", refreshToken ?? "");
    } else form.set("grant_type", "client_credentials");
    if (spec.scopes !== undefined) form.set("scope", spec.scopes.join(" "));
    if (spec.audience !== undefined) form.set("audience", spec.audience);
    if (spec.clientAuth === "body") {
      form.set("client_id", spec.clientId);
      form.set("client_secret", clientSecret);
    } else {
      // RFC 6749 §2.3.1: each part form-encoded, then Basic.
      const pair = `${formEncode(spec.clientId)}:${formEncode(clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(pair).toString("base64")}`;
    }
    const where = `token endpoint ${new URL(spec.tokenUrl).host}`;
    const answer = await this.#post(spec.tokenUrl, form.toString(), headers);
    if (!answer.ok) return { ok: false, message: `${where}: ${answer.message}` };
    let body: { access_token?: unknown; expires_in?: unknown; error?: unknown; refresh_token?: unknown };
    try {
      body = JSON.parse(answer.body) as typeof body;
    } catch {
      return { ok: false, message: `${where} answered ${answer.status} without JSON` };
    }
    if (answer.status !== 200 || typeof body.access_token !== "string" || body.access_token === "") {
      const code =
        typeof body.error === "string" && /^[\x20-\x7e]{1,64}$/.test(body.error) ? ` (${body.error})` : "";
      return { ok: false, message: `${where} answered ${answer.status}${code} without an access token` };
    }
    const seconds = typeof body.expires_in === "number" ? body.expires_in : Number(body.expires_in);
    const lifetimeMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_LIFETIME_MS;
    const rotated =
      spec.grant === "refreshToken" && typeof body.refresh_token === "string" && body.refresh_token !== ""
        ? { refreshToken: body.refresh_token }
        : {};
    return { ok: true, token: body.access_token, lifetimeMs, ...rotated };
  }

  /**
   * A GitHub App installation token: a JWT (RS256; issued a minute in the past against clock
   * skew, valid nine minutes) exchanged at the installation's access_tokens endpoint, optionally
   * narrowed to repositories and permissions.
   */
  async #githubExchange(spec: GitHubAppSpec, privateKeyPem: string): Promise<Minted> {
    let jwt: string;
    try {
      const key = createPrivateKey(privateKeyPem);
      const now = Math.floor(this.#now() / 1000);
      const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString("base64url");
      const unsigned = `${part({ alg: "RS256", typ: "JWT" })}.${part({ iat: now - 60, exp: now + 540, iss: spec.appId })}`;
      jwt = `${unsigned}.${sign("RSA-SHA256", Buffer.from(unsigned), key).toString("base64url")}`;
    } catch {
      return {
        ok: false,
        message: "the App's private key in the Secret cannot sign an RS256 token (a PEM RSA key is needed)",
      };
    }
    const url = `${spec.apiUrl}/app/installations/${String(spec.installationId)}/access_tokens`;
    const scoping = {
      ...(spec.repositories ? { repositories: spec.repositories } : {}),
      ...(spec.permissions ? { permissions: spec.permissions } : {}),
    };
    const where = `GitHub App token endpoint ${new URL(spec.apiUrl).host}`;
    const answer = await this.#post(url, JSON.stringify(scoping), {
      authorization: `Bearer ${jwt}`,
      accept: "application/vnd.github+json",
      "content-type": "application/json",
      "user-agent": "airlock-sidecar",
      "x-github-api-version": "2022-11-28",
    });
    if (!answer.ok) return { ok: false, message: `${where}: ${answer.message}` };
    let body: { token?: unknown; expires_at?: unknown };
    try {
      body = JSON.parse(answer.body) as typeof body;
    } catch {
      return { ok: false, message: `${where} answered ${String(answer.status)} without JSON` };
    }
    if (answer.status !== 201 || typeof body.token !== "string" || body.token === "")
      return { ok: false, message: `${where} answered ${String(answer.status)} without a token` };
    const expires = typeof body.expires_at === "string" ? Date.parse(body.expires_at) : NaN;
    const lifetimeMs =
      Number.isFinite(expires) && expires > this.#now() ? expires - this.#now() : DEFAULT_LIFETIME_MS;
    return { ok: true, token: body.token, lifetimeMs };
  }

  #post(target: string, body: string, headers: Record<string, string>): Promise<PostAnswer> {
    return post(this.#deps, target, body, headers, this.#deps.timeoutMs ?? 10_000);
  }
}

/** application/x-www-form-urlencoded for one value (RFC 6749 Appendix B). */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
