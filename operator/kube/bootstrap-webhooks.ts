// Keeps the `caBundle` of the `airlock-injector` (mutating) and `airlock-validator` (validating)
// webhook configurations equal to the CA in Secret `airlock-webhook-tls`. One owner, no fight:
// a configuration the operator created (its managed-by label) is kept as the operator builds it;
// one someone else owns (e.g. a Helm chart) gets its caBundle patched and nothing else.
import { createHash } from "node:crypto";
import {
  AdmissionregistrationV1Api,
  ApiException,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from "@kubernetes/client-node";
import { WEBHOOK_SERVICE, type WebhookNames } from "./bootstrap-pki.ts";
import { MUTATING_WEBHOOK, VALIDATING_WEBHOOK } from "./preflight.ts";

/** The label marking a configuration the operator created and therefore owns. */
export const MANAGED_BY = { key: "app.kubernetes.io/managed-by", value: "airlock-operator" } as const;
const SPEC_HASH = "airlock.dev/webhooks-hash";
/** On a configuration the operator created: the namespace of the operator that owns it. */
const OWNER_NAMESPACE = "airlock.dev/operator-namespace";

/** Who the operator is: its namespace and the names its serving certificate covers. */
export interface WebhookIdentity {
  namespace: string;
  names: WebhookNames;
}

/** A webhook configuration as plain JSON (either kind): what the operator reads and writes of it. */
export interface WebhookConfigurationObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  webhooks?: { name?: string; clientConfig?: ClientConfig }[];
}

interface ClientConfig {
  caBundle?: string;
  url?: string;
  service?: { namespace?: string; name?: string };
}

/** Whether a webhook's clientConfig reaches this operator: its Service, or a URL on a name it serves. */
export function routesTo(clientConfig: ClientConfig | undefined, who: WebhookIdentity): boolean {
  const service = clientConfig?.service;
  if (service !== undefined) return service.namespace === who.namespace && service.name === WEBHOOK_SERVICE;
  if (clientConfig?.url === undefined) return false;
  try {
    const host = new URL(clientConfig.url).hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
    return who.names.dnsNames.includes(host) || who.names.ipAddresses.includes(host);
  } catch {
    return false;
  }
}

/**
 * Builds the two configurations the operator creates when it owns them, for the CA PEM `caCrt`
 * (operator/webhook's `webhookConfigurations`, bound to a Service reference or a URL).
 */
export type WebhookConfigurationsBuilder = (caCrt: string) => {
  mutating: WebhookConfigurationObject;
  validating: WebhookConfigurationObject;
};

/** What one sync did to each configuration. */
export type WebhookSyncAction = "created" | "updated" | "caBundle patched" | "unchanged" | "absent";

function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

function hashOf(webhooks: unknown): string {
  return createHash("sha256").update(JSON.stringify(webhooks)).digest("hex").slice(0, 16);
}

/**
 * JSON Patch setting the caBundle of every webhook that routes to this operator (each guarded by
 * a test of its name); [] when they all match. Webhooks routed elsewhere are not touched.
 */
export function caBundlePatch(
  existing: WebhookConfigurationObject,
  caBundle: string,
  who: WebhookIdentity,
): object[] {
  return (existing.webhooks ?? []).flatMap((hook, i) =>
    hook.clientConfig?.caBundle === caBundle || !routesTo(hook.clientConfig, who)
      ? []
      : [
          { op: "test", path: `/webhooks/${String(i)}/name`, value: hook.name },
          { op: "add", path: `/webhooks/${String(i)}/clientConfig/caBundle`, value: caBundle },
        ],
  );
}

type Kind = "mutating" | "validating";

/** Reads, creates and JSON-patches one kind of configuration (client-node per kind). */
function kindApi(api: AdmissionregistrationV1Api, kind: Kind) {
  const json = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);
  if (kind === "mutating")
    return {
      name: MUTATING_WEBHOOK,
      read: async (name: string) =>
        (await api.readMutatingWebhookConfiguration({ name })) as WebhookConfigurationObject,
      create: (body: WebhookConfigurationObject) =>
        api.createMutatingWebhookConfiguration({ body: body as never }),
      patch: (name: string, body: object[]) => api.patchMutatingWebhookConfiguration({ name, body }, json),
    };
  return {
    name: VALIDATING_WEBHOOK,
    read: async (name: string) =>
      (await api.readValidatingWebhookConfiguration({ name })) as WebhookConfigurationObject,
    create: (body: WebhookConfigurationObject) =>
      api.createValidatingWebhookConfiguration({ body: body as never }),
    patch: (name: string, body: object[]) => api.patchValidatingWebhookConfiguration({ name, body }, json),
  };
}

async function syncOne(
  api: AdmissionregistrationV1Api,
  kind: Kind,
  caCrt: string,
  build: WebhookConfigurationsBuilder | undefined,
  who: WebhookIdentity,
): Promise<WebhookSyncAction> {
  const caBundle = Buffer.from(caCrt, "utf8").toString("base64");
  const k = kindApi(api, kind);
  let existing: WebhookConfigurationObject | undefined;
  try {
    existing = await k.read(k.name);
  } catch (err) {
    if (!isStatus(err, 404)) throw err;
  }
  const desired = build?.(caCrt)[kind];
  const hash = desired === undefined ? undefined : hashOf(desired.webhooks);
  if (existing === undefined) {
    if (desired === undefined) return "absent";
    const metadata = desired.metadata ?? {};
    await k.create({
      ...desired,
      metadata: {
        ...metadata,
        name: k.name,
        labels: { ...metadata.labels, [MANAGED_BY.key]: MANAGED_BY.value },
        annotations: { ...metadata.annotations, [SPEC_HASH]: hash ?? "", [OWNER_NAMESPACE]: who.namespace },
      },
    });
    return "created";
  }
  const ours =
    existing.metadata?.labels?.[MANAGED_BY.key] === MANAGED_BY.value &&
    existing.metadata.annotations?.[OWNER_NAMESPACE] === who.namespace;
  if (ours && desired !== undefined && existing.metadata?.annotations?.[SPEC_HASH] !== hash) {
    await k.patch(k.name, [
      { op: "replace", path: "/webhooks", value: desired.webhooks ?? [] },
      {
        op: "add",
        path: "/metadata/annotations",
        value: { ...existing.metadata?.annotations, [SPEC_HASH]: hash },
      },
    ]);
    return "updated";
  }
  const patch = caBundlePatch(existing, caBundle, who);
  if (patch.length === 0) return "unchanged";
  await k.patch(k.name, patch);
  return "caBundle patched";
}

/**
 * Brings both configurations in step with the CA PEM `caCrt`: creates an absent one when `build`
 * is given (the operator knows how it is reached: a Service in a cluster, or --webhook-url), fully
 * updates one it created (label and owner namespace) whose webhooks changed, else patches only the
 * caBundle of the webhooks that route to it (routesTo). Returns what it did to each.
 */
export async function syncWebhookConfigurations(
  config: KubeConfig,
  caCrt: string,
  build: WebhookConfigurationsBuilder | undefined,
  who: WebhookIdentity,
): Promise<Record<string, WebhookSyncAction>> {
  const api = config.makeApiClient(AdmissionregistrationV1Api);
  return {
    [MUTATING_WEBHOOK]: await syncOne(api, "mutating", caCrt, build, who),
    [VALIDATING_WEBHOOK]: await syncOne(api, "validating", caCrt, build, who),
  };
}
