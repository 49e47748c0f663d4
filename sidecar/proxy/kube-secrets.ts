// Credential values from the Kubernetes API, read with the sidecar's own token. Each Secret the
// applied policy references is watched by name (RBAC grants get/watch on exactly those names), so
// a rotated value is used on the next request without a restart. Values live only in memory.
import type { Logger } from "pino";
import { KubeApi, KubeApiError, type KubeApiConfig, type WatchHandle } from "./kube-api.ts";
import type { SecretLookup, SecretRef, SecretSource } from "./secrets.ts";

interface Watched {
  /** undefined: not seen yet; null: the Secret does not exist. */
  data: Map<string, Buffer> | null | undefined;
  watch?: WatchHandle;
  stopped: boolean;
  retry?: NodeJS.Timeout;
}

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/** A SecretSource over API watches; `track` sets which Secrets are watched. */
export class KubeSecrets implements SecretSource {
  #api: KubeApi;
  #log: Logger;
  #watched = new Map<string, Watched>();

  constructor(config: KubeApiConfig, log: Logger) {
    this.#api = new KubeApi(config);
    this.#log = log;
  }

  /** Watches exactly `refs` (starting new watches, stopping ones no longer referenced). */
  track(refs: SecretRef[]): void {
    const wanted = new Set(refs.map((r) => `${r.namespace}/${r.name}`));
    for (const [key, watched] of this.#watched) {
      if (!wanted.has(key)) {
        this.#stop(watched);
        this.#watched.delete(key);
      }
    }
    for (const ref of refs) {
      const key = `${ref.namespace}/${ref.name}`;
      if (this.#watched.has(key)) continue;
      const watched: Watched = { data: undefined, stopped: false };
      this.#watched.set(key, watched);
      this.#start(ref, watched, RETRY_MIN_MS);
    }
  }

  /** Stops every watch and closes the connections. */
  close(): void {
    for (const watched of this.#watched.values()) this.#stop(watched);
    this.#watched.clear();
    this.#api.close();
  }

  /** True once every tracked Secret has been seen (present or absent) at least once. */
  get synced(): boolean {
    return [...this.#watched.values()].every((w) => w.data !== undefined);
  }

  get(namespace: string, name: string, key: string): SecretLookup {
    const data = this.#watched.get(`${namespace}/${name}`)?.data;
    if (!data) return { ok: false, reason: "SecretMissing" };
    const value = data.get(key);
    return value ? { ok: true, value } : { ok: false, reason: "KeyMissing" };
  }

  /**
   * Sets `key` of Secret `namespace/name` to `value`: read, change, replace with the read's
   * resourceVersion (one retry on a conflict). Needs `update` on that Secret; the message of a
   * failure is the API's status, never data.
   */
  async update(
    namespace: string,
    name: string,
    key: string,
    value: string,
  ): Promise<{ ok: true } | { ok: false; message: string }> {
    for (let attempt = 0; ; attempt++) {
      try {
        const path = secretPath(namespace, name);
        const secret = (await this.#api.request("GET", path)) as { data?: Record<string, string> };
        secret.data = { ...(secret.data ?? {}), [key]: Buffer.from(value).toString("base64") };
        await this.#api.request("PUT", path, secret);
        return { ok: true };
      } catch (err) {
        const code = err instanceof KubeApiError ? err.code : 0;
        if (code === 409 && attempt === 0) continue;
        return { ok: false, message: `the API answered ${code > 0 ? String(code) : "an error"}` };
      }
    }
  }

  #stop(watched: Watched): void {
    watched.stopped = true;
    clearTimeout(watched.retry);
    watched.watch?.abort();
  }

  #start(ref: SecretRef, watched: Watched, delay: number): void {
    const path = `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/secrets`;
    let sawEvent = false;
    const restart = (err: unknown): void => {
      if (watched.stopped) return;
      if (err !== null && err !== undefined) {
        // Never the value: the error of a watch carries status, not data.
        this.#log.warn(
          {
            secret: `${ref.namespace}/${ref.name}`,
            err: err instanceof Error ? err.message : JSON.stringify(err),
          },
          "secret watch failed; retrying",
        );
      }
      const next = sawEvent ? RETRY_MIN_MS : Math.min(delay * 2, RETRY_MAX_MS);
      watched.retry = setTimeout(() => {
        this.#start(ref, watched, next);
      }, next);
    };
    // Learn the current state first (a missing Secret is then known, not guessed), then follow
    // changes; a watch without resourceVersion replays the current object, which is harmless.
    this.#api
      .request("GET", secretPath(ref.namespace, ref.name))
      .then(
        (secret) => {
          watched.data = decode(secret);
        },
        (err: unknown) => {
          if (err instanceof KubeApiError && err.code === 404) watched.data = null;
          else throw err;
        },
      )
      .then(() => {
        if (watched.stopped) return;
        watched.watch = this.#api.watch(
          path,
          { fieldSelector: `metadata.name=${ref.name}` },
          (phase, object) => {
            sawEvent = true;
            if (phase === "DELETED") watched.data = null;
            else if (phase === "ADDED" || phase === "MODIFIED") watched.data = decode(object);
          },
          restart,
        );
      }, restart);
  }
}

/** The API path of Secret `namespace/name`. */
function secretPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
}

function decode(object: unknown): Map<string, Buffer> {
  const data = (object as { data?: Record<string, unknown> } | null)?.data ?? {};
  const out = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(data)) {
    if (typeof value === "string") out.set(key, Buffer.from(value, "base64"));
  }
  return out;
}
