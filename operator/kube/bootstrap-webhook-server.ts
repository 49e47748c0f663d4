// Hands what the Bootstrapper learns to the admission webhook server: it starts the server once
// both the serving certificate and the bundle public keys are known (before that nothing listens,
// and the API server's calls fail closed), replaces the certificate on rotation (setTls, no
// restart), and puts the current public keys into the injector's config, so pods injected from
// then on carry them (AIRLOCK_BUNDLE_KEYS).
import type { Logger } from "pino";
import type { InjectionConfig } from "../inject/types.ts";
import { startWebhookServer, type WebhookServer, type WebhookServerOptions } from "../webhook/server.ts";
import type { WebhookTlsPem } from "./bootstrap-pki.ts";

/** Where to serve, and the injection settings other than the keys. */
export interface WebhookHandoffOptions {
  listen: { host: string; port: number };
  injection: Omit<InjectionConfig, "bundlePublicKeys">;
  log?: Logger;
  /** Called once the server listens, with its port. */
  onListening?(port: number): void;
  /** The server to start (default startWebhookServer; injectable for tests). */
  start?: (options: WebhookServerOptions) => Promise<WebhookServer>;
}

/** The callbacks for runOperator (onBundleKeys, onWebhookTls) and the server's lifetime. */
export interface WebhookHandoff {
  onBundleKeys: (publicKeysPem: string) => void;
  onWebhookTls: (tls: WebhookTlsPem) => void;
  /** The injector config the server uses (its bundlePublicKeys is kept current). */
  readonly injection: InjectionConfig;
  /** Resolves with the server once it listens. */
  readonly listening: Promise<WebhookServer>;
  /** Closes the server if it started. */
  close(): Promise<void>;
}

/** Creates the handoff; nothing listens until both keys and certificate have arrived. */
export function webhookHandoff(options: WebhookHandoffOptions): WebhookHandoff {
  const injection: InjectionConfig = { ...options.injection, bundlePublicKeys: "" };
  let tls: { cert: string; key: string } | undefined;
  let server: Promise<WebhookServer> | undefined;
  let closed = false;
  let resolveListening: (server: WebhookServer) => void = () => undefined;
  const listening = new Promise<WebhookServer>((resolve) => {
    resolveListening = resolve;
  });
  const maybeStart = (): void => {
    if (server !== undefined || closed || tls === undefined || injection.bundlePublicKeys === "") return;
    const start = options.start ?? startWebhookServer;
    server = start({
      listen: options.listen,
      tls,
      injection,
      ...(options.log ? { log: options.log } : {}),
    });
    server.then(
      (s) => {
        options.log?.info({ port: s.port }, "webhook serving");
        options.onListening?.(s.port);
        resolveListening(s);
      },
      (err: unknown) => {
        options.log?.error({ err: (err as Error).message }, "webhook server failed to start");
      },
    );
  };
  return {
    injection,
    listening,
    onBundleKeys: (pem) => {
      // The server reads this object per request: pods admitted from now on carry the new keys.
      injection.bundlePublicKeys = pem;
      maybeStart();
    },
    onWebhookTls: (next) => {
      tls = { cert: next.tlsCrt, key: next.tlsKey };
      if (server === undefined) maybeStart();
      else
        void server.then((s) => {
          if (tls !== undefined) s.setTls(tls);
          options.log?.info("webhook serving certificate replaced");
        });
    },
    close: async () => {
      closed = true;
      const s = await server?.catch(() => undefined);
      await s?.close();
    },
  };
}
