// The operator's own keys and certificate, with no hand steps (DESIGN.md §4). Every replica runs
// one Bootstrapper: the leader creates, rotates and renews Secrets `airlock-signing-key` and
// `airlock-webhook-tls` and keeps the webhook configurations' caBundle in step; the others only
// read the Secrets. Either way the result is handed on (`onSigningKeys` → the reconciler and the
// injector's bundlePublicKeys; `onWebhookTls` → the webhook server's setTls). A pass runs on a
// timer, when leadership is gained, and when a Secret in the namespace changes (metadata watch).
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { WebhookNames, WebhookTlsPem } from "./bootstrap-pki.ts";
import {
  apiMessage,
  ensureSigningKeys,
  ensureWebhookTls,
  readSigningKeys,
  readWebhookTls,
  type SigningKeys,
} from "./bootstrap-secrets.ts";
import { syncWebhookConfigurations, type WebhookConfigurationsBuilder } from "./bootstrap-webhooks.ts";
import { watchMetadata } from "./metadata-watch.ts";
import { NO_OWNER, type Owner } from "./owner.ts";
import type { Health, Problem } from "./preflight-health.ts";
import { SIGNING_KEY_SECRET, WEBHOOK_TLS_SECRET } from "./preflight.ts";

/** How the Bootstrapper is set up. */
export interface BootstrapOptions {
  config: KubeConfig;
  /** The operator's namespace (where the Lease and the Secrets live). */
  namespace: string;
  /** The owner of the Secrets it creates (default none). */
  owner?: Owner;
  /** Given with --signing-key: used as is, no Secret is read or written. */
  signingKey?: KeyObject;
  /** Set when the webhook is served: the names its certificate covers, and how to build configurations. */
  webhook?: {
    names: WebhookNames;
    /** Undefined: the operator does not know how it is reached, so it creates no configuration. */
    configurations?: WebhookConfigurationsBuilder;
  };
  /** Whether this replica leads now. */
  leading(): boolean;
  health: Health;
  log?: Logger;
  /** Time between passes (default 10 s). */
  intervalMs?: number;
  /** Called with the keys whenever they change (first time included). */
  onSigningKeys(keys: SigningKeys): void;
  /** Called with the TLS material whenever it changes (first time included). */
  onWebhookTls?(tls: WebhookTlsPem): void;
}

const REWATCH_MS = 1000;

function fingerprint(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\0")).digest("hex");
}

/** Keeps the signing key and webhook TLS present and handed on. `start()`, `kick()`, `stop()`. */
export class Bootstrapper {
  readonly #options: BootstrapOptions;
  readonly #core: CoreV1Api;
  #keysSeen = "";
  #tlsSeen = "";
  readonly #owner: Owner;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #unwatch: (() => void) | undefined;

  constructor(options: BootstrapOptions) {
    this.#options = options;
    this.#owner = options.owner ?? NO_OWNER;
    this.#core = options.config.makeApiClient(CoreV1Api);
  }

  /** Starts: a pass now, then on the timer and on changes to the Secrets. */
  start(): void {
    // Not ready until the first pass has found (or made) what it needs.
    this.#options.health.report("bootstrap", this.#waiting());
    this.#watch();
    this.kick();
  }

  /** Runs a pass soon (after the current one, if one is running). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running = this.#pass().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      } else if (!this.#stopped) {
        this.#timer = setTimeout(() => {
          this.kick();
        }, this.#options.intervalMs ?? 10_000);
      }
    });
  }

  /** Stops the timer and the watch; waits for a running pass. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#unwatch?.();
    await this.#running;
  }

  async #pass(): Promise<void> {
    const problems: Problem[] = [];
    const fail = (key: string, what: string, err: unknown): void => {
      problems.push({ key: `bootstrap/${key}`, message: `${what}: ${apiMessage(err)}`, blocking: false });
    };
    await this.#signingKeys().catch((err: unknown) => {
      fail("signing-key", `cannot bootstrap Secret ${this.#options.namespace}/${SIGNING_KEY_SECRET}`, err);
    });
    if (this.#options.webhook !== undefined) {
      const tls = await this.#webhookTls(this.#options.webhook.names).catch((err: unknown) => {
        fail("webhook-tls", `cannot bootstrap Secret ${this.#options.namespace}/${WEBHOOK_TLS_SECRET}`, err);
        return undefined;
      });
      if (tls !== undefined && this.#options.leading())
        await this.#webhookConfigurations(tls.caCrt, this.#options.webhook.configurations).catch(
          (err: unknown) => {
            fail("webhook-configurations", "cannot keep the webhook configurations' caBundle in step", err);
          },
        );
    }
    const failed = new Set(problems.map((p) => p.key));
    problems.push(...this.#waiting().filter((p) => !failed.has(p.key)));
    this.#options.health.report("bootstrap", problems);
  }

  /** Problems of a replica still waiting for the leader to create what it reads. */
  #waiting(): Problem[] {
    const ns = this.#options.namespace;
    const waiting: Problem[] = [];
    if (this.#keysSeen === "")
      waiting.push({
        key: "bootstrap/signing-key",
        message: `Secret ${ns}/${SIGNING_KEY_SECRET} is not there yet (the leader creates it)`,
        blocking: false,
      });
    if (this.#options.webhook !== undefined && this.#tlsSeen === "")
      waiting.push({
        key: "bootstrap/webhook-tls",
        message: `Secret ${ns}/${WEBHOOK_TLS_SECRET} is not there yet (the leader creates it)`,
        blocking: false,
      });
    return waiting;
  }

  async #signingKeys(): Promise<void> {
    const { signingKey, namespace, log } = this.#options;
    let keys: SigningKeys | undefined;
    if (signingKey !== undefined) {
      const publicPem = createPublicKey(signingKey).export({ type: "spki", format: "pem" }).toString();
      keys = { privateKey: signingKey, publicKeysPem: publicPem };
    } else if (this.#options.leading()) {
      const ensured = await ensureSigningKeys(this.#core, namespace, await this.#owner());
      keys = ensured.keys;
      if (ensured.action === "created")
        log?.info(
          { secret: `${namespace}/${SIGNING_KEY_SECRET}` },
          "created a new Ed25519 bundle-signing key",
        );
      if (ensured.action === "rotated")
        log?.info(
          {
            secret: `${namespace}/${SIGNING_KEY_SECRET}`,
            publicKeys: keys.publicKeysPem.split("BEGIN").length - 1,
          },
          "took a signing-key rotation step",
        );
    } else keys = await readSigningKeys(this.#core, namespace);
    if (keys === undefined) return;
    const seen = fingerprint(
      keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      keys.publicKeysPem,
    );
    if (seen === this.#keysSeen) return;
    this.#keysSeen = seen;
    this.#options.onSigningKeys(keys);
  }

  async #webhookTls(names: WebhookNames): Promise<WebhookTlsPem | undefined> {
    const { namespace, log } = this.#options;
    let tls: WebhookTlsPem | undefined;
    if (this.#options.leading()) {
      const ensured = await ensureWebhookTls(this.#core, namespace, names, Date.now(), await this.#owner());
      tls = ensured.tls;
      if (ensured.action !== "unchanged")
        log?.info(
          { secret: `${namespace}/${WEBHOOK_TLS_SECRET}`, names: [...names.dnsNames, ...names.ipAddresses] },
          ensured.action === "created"
            ? "created the webhook CA and serving certificate"
            : `renewed the webhook CA and serving certificate (${ensured.reason ?? "changed"})`,
        );
    } else tls = await readWebhookTls(this.#core, namespace);
    if (tls === undefined) return undefined;
    const seen = fingerprint(tls.caCrt, tls.tlsCrt, tls.tlsKey);
    if (seen !== this.#tlsSeen) {
      this.#tlsSeen = seen;
      this.#options.onWebhookTls?.(tls);
    }
    return tls;
  }

  async #webhookConfigurations(
    caCrt: string,
    build: WebhookConfigurationsBuilder | undefined,
  ): Promise<void> {
    const { config, namespace, webhook } = this.#options;
    if (webhook === undefined) return;
    const actions = await syncWebhookConfigurations(config, caCrt, build, {
      namespace,
      names: webhook.names,
    });
    for (const [name, action] of Object.entries(actions))
      if (action !== "unchanged" && action !== "absent")
        this.#options.log?.info({ webhookConfiguration: name }, `webhook configuration ${name}: ${action}`);
  }

  /** A metadata watch on the namespace's Secrets: a change to ours runs a pass at once. */
  #watch(): void {
    if (this.#options.signingKey !== undefined && this.#options.webhook === undefined) return;
    const path = `/api/v1/namespaces/${this.#options.namespace}/secrets`;
    let current: { abort(): void } | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const start = (): void => {
      if (this.#stopped) return;
      const again = (): void => {
        if (!this.#stopped) timer = setTimeout(start, REWATCH_MS);
      };
      watchMetadata(
        this.#options.config,
        path,
        (_type, object) => {
          const name = object.metadata?.name;
          if (name === SIGNING_KEY_SECRET || name === WEBHOOK_TLS_SECRET) this.kick();
        },
        again,
      ).then((w) => {
        current = w;
        if (this.#stopped) w.abort();
      }, again);
    };
    start();
    this.#unwatch = () => {
      current?.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }
}
