// Decision hooks (a rule's `hook`): the platform's own service is asked about each request the
// rule matches, after the policy allowed it and before it leaves. It gets the request's facts (and
// the headers the rule opts in to), and answers {"allow": true|false, "reason"?, "setHeaders"?,
// "removeHeaders"?}. Anything else — an error status, no answer within the timeout, an answer that
// is not that, an edit it may not make — blocks the request (fail closed). Answers may be reused
// for the same facts for the rule's cacheSeconds.
import type { CompiledCredential, HeaderEdits, HookSpec, RequestFacts } from "../policy/index.ts";
import {
  credentialOwnedHeaders,
  lowerNames,
  validateRemoveHeaders,
  validateSetHeaders,
} from "../policy/index.ts";
import { post, type PostDeps } from "./post.ts";
import type { SecretSource } from "./secrets.ts";
import { blockVerdict, type Verdict } from "./verdict.ts";

/** What the request path needs from a hook: go on (with edits), or the block verdict. */
export type HookOutcome = { ok: true; edits?: HeaderEdits } | { ok: false; verdict: Verdict };

/** Answers remembered (all hooks together); the oldest goes first. */
const MAX_CACHED = 10_000;
/** Largest header value sent to a hook. */
const MAX_HEADER_VALUE = 4096;

interface Cached {
  until: number;
  outcome: HookOutcome;
}

/** The hooks of one sidecar. */
export class DecisionHooks {
  #deps: PostDeps & { secrets: () => SecretSource; now?: () => number };
  #cache = new Map<string, Cached>();

  constructor(deps: PostDeps & { secrets: () => SecretSource; now?: () => number }) {
    this.#deps = deps;
  }

  /** Asks the rule's hook about `facts` (or reuses an answer); never throws. */
  async ask(
    hook: HookSpec,
    decided: { outcome: string; policy?: string; rule?: string; credential?: CompiledCredential },
    facts: RequestFacts,
    rawHeaders: string[],
  ): Promise<HookOutcome> {
    const headers: Record<string, string> = {};
    if (hook.includeHeaders !== undefined)
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        const name = (rawHeaders[i] as string).toLowerCase();
        if (hook.includeHeaders.includes(name) && headers[name] === undefined)
          headers[name] = (rawHeaders[i + 1] as string).slice(0, MAX_HEADER_VALUE);
      }
    const question = {
      apiVersion: "airlock.dev/v1alpha1",
      kind: "DecisionRequest",
      request: facts,
      decision: {
        outcome: decided.outcome,
        policy: decided.policy,
        rule: decided.rule,
        ...(decided.credential ? { credential: decided.credential.name } : {}),
      },
      ...(hook.includeHeaders !== undefined ? { headers } : {}),
    };
    const body = JSON.stringify(question);
    const now = this.#deps.now ?? Date.now;
    const key = `${hook.url}\n${body}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined && cached.until > now()) return cached.outcome;
    const outcome = await this.#ask(hook, body, decided);
    // Only answers are reused; a hook that failed is asked again next time.
    const answered = outcome.ok || outcome.verdict.reason === "HookDenied";
    if (hook.cacheSeconds > 0 && answered) {
      this.#cache.delete(key);
      this.#cache.set(key, { until: now() + hook.cacheSeconds * 1000, outcome });
      if (this.#cache.size > MAX_CACHED) {
        const oldest = this.#cache.keys().next().value;
        if (oldest !== undefined) this.#cache.delete(oldest);
      }
    }
    return outcome;
  }

  async #ask(
    hook: HookSpec,
    body: string,
    decided: { policy?: string; credential?: CompiledCredential },
  ): Promise<HookOutcome> {
    const where = `hook ${new URL(hook.url).host}`;
    const unavailable = (message: string): HookOutcome => ({
      ok: false,
      verdict: blockVerdict(
        "HookUnavailable",
        `${where} ${message}; the request is blocked until it answers`,
      ),
    });
    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: "application/json",
    };
    if (hook.tokenSecretRef !== undefined) {
      const namespace = (decided.policy ?? "").split("/")[0] ?? "";
      const token = this.#deps.secrets().get(namespace, hook.tokenSecretRef.name, hook.tokenSecretRef.key);
      if (!token.ok)
        return unavailable(`has no token: Secret ${namespace}/${hook.tokenSecretRef.name} ${token.reason}`);
      headers.authorization = `Bearer ${token.value.toString("utf8").trim()}`;
    }
    const answer = await post(this.#deps, hook.url, body, headers, hook.timeoutMs);
    if (!answer.ok) return unavailable(answer.message);
    if (answer.status !== 200) return unavailable(`answered ${String(answer.status)}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      return unavailable("answered something other than JSON");
    }
    const reply = parsed as {
      allow?: unknown;
      reason?: unknown;
      setHeaders?: unknown;
      removeHeaders?: unknown;
    };
    if (typeof reply.allow !== "boolean") return unavailable('answered without "allow": true or false');
    if (!reply.allow) {
      const reason = typeof reply.reason === "string" ? printable(reply.reason) : "";
      return {
        ok: false,
        verdict: blockVerdict("HookDenied", `${where} denied the request${reason ? `: ${reason}` : ""}`),
      };
    }
    const edits = hookEdits(reply, decided.credential);
    if (typeof edits === "string") return unavailable(`answered an edit it may not make: ${edits}`);
    return edits === undefined ? { ok: true } : { ok: true, edits };
  }
}

/** At most 200 printable ASCII characters of a hook's reason. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "").slice(0, 200);
}

/**
 * The edits of an allowing answer, checked by the same rules as a rule's own setHeaders and
 * removeHeaders and kept off what the credential owns, or why one cannot be made (string).
 */
function hookEdits(
  reply: { setHeaders?: unknown; removeHeaders?: unknown },
  credential: CompiledCredential | undefined,
): HeaderEdits | string | undefined {
  if (reply.setHeaders === undefined && reply.removeHeaders === undefined) return undefined;
  let problem: string | undefined;
  const note = (at: string, message: string): void => {
    problem ??= `${at}: ${message}`;
  };
  const set = reply.setHeaders === undefined ? [] : validateSetHeaders(reply.setHeaders, "setHeaders", note);
  const remove =
    reply.removeHeaders === undefined
      ? []
      : validateRemoveHeaders(reply.removeHeaders, "removeHeaders", note);
  if (set === undefined || remove === undefined) return problem ?? "edits that are not valid";
  const owned = credential ? credentialOwnedHeaders(credential.injection) : new Map<string, string>();
  const taken = [...set.map(({ name }) => name), ...remove].find((name) => owned.has(name.toLowerCase()));
  if (taken !== undefined) return `${taken} belongs to the credential`;
  return { set, remove: lowerNames(remove) };
}
