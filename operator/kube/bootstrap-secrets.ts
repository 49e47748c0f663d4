// The two Secrets the operator keeps in its own namespace: `airlock-signing-key` (the Ed25519
// bundle-signing key, and during a rotation the staged next key) and `airlock-webhook-tls` (the
// webhook's CA and serving certificate). The leader creates, rotates and renews them; every replica
// reads them. Writes are optimistic (resourceVersion): two writers never both win.
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { ApiException, V1Secret, type CoreV1Api, type V1OwnerReference } from "@kubernetes/client-node";
import {
  generateSigningKey,
  issueWebhookTls,
  webhookTlsProblem,
  type WebhookNames,
  type WebhookTlsPem,
} from "./bootstrap-pki.ts";
import { owned } from "./owner.ts";
import { SIGNING_KEY_SECRET, WEBHOOK_TLS_SECRET } from "./preflight.ts";

/** Annotate `airlock-signing-key` with this (any value) to take one rotation step. */
export const ROTATE_ANNOTATION = "airlock.dev/rotate";
/** Data keys of `airlock-signing-key`. */
export const SIGNING_KEYS = {
  private: "private.pem",
  public: "public.pem",
  nextPrivate: "next-private.pem",
  nextPublic: "next-public.pem",
} as const;
const LABELS = { "app.kubernetes.io/name": "airlock", "app.kubernetes.io/managed-by": "airlock-operator" };

/** The signing key in use and every public key sidecars must accept now. */
export interface SigningKeys {
  /** Signs bundles. */
  privateKey: KeyObject;
  /** PEM of the current public key, then the staged next one (if any): AIRLOCK_BUNDLE_KEYS. */
  publicKeysPem: string;
}

/** A Secret that is there but cannot be used: reported, never overwritten. */
export class UnusableSecretError extends Error {}

function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

/** A short description of an API error: `HTTP 403: secrets is forbidden: …`, not the whole body. */
export function apiMessage(err: unknown): string {
  if (!(err instanceof ApiException)) return err instanceof Error ? err.message : String(err);
  const body: unknown = err.body;
  let message = typeof body === "string" ? body : "";
  try {
    const parsed = JSON.parse(message) as { message?: unknown };
    if (typeof parsed.message === "string") message = parsed.message;
  } catch {
    // not JSON: keep the text
  }
  return `HTTP ${err.code}: ${message.slice(0, 300)}`;
}

const decode = (data: Record<string, string> | undefined, key: string): string | undefined =>
  data?.[key] === undefined ? undefined : Buffer.from(data[key], "base64").toString("utf8");
const encode = (values: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v, "utf8").toString("base64")]));

function publicPemOf(key: KeyObject): string {
  return createPublicKey(key).export({ type: "spki", format: "pem" }).toString();
}

/** Reads the keys out of `airlock-signing-key`'s data; throws UnusableSecretError with the reason. */
export function signingKeysFrom(data: Record<string, string> | undefined): SigningKeys {
  const privatePem = decode(data, SIGNING_KEYS.private);
  if (privatePem === undefined) throw new UnusableSecretError(`it has no ${SIGNING_KEYS.private}`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privatePem);
  } catch (err) {
    throw new UnusableSecretError(`${SIGNING_KEYS.private}: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== "ed25519")
    throw new UnusableSecretError(`${SIGNING_KEYS.private} is not an Ed25519 key`);
  let publicKeysPem = publicPemOf(privateKey);
  const nextPrivate = decode(data, SIGNING_KEYS.nextPrivate);
  if (nextPrivate !== undefined) {
    try {
      publicKeysPem += publicPemOf(createPrivateKey(nextPrivate));
    } catch (err) {
      throw new UnusableSecretError(`${SIGNING_KEYS.nextPrivate}: ${(err as Error).message}`);
    }
  }
  return { privateKey, publicKeysPem };
}

/**
 * One rotation step on the Secret's decoded data: with no staged key, stage a new one
 * (`next-*.pem`; still signing with the current key); with one staged, promote it (it signs from
 * now on and the old key is dropped).
 */
export function rotateSigningKeyData(data: Record<string, string>): Record<string, string> {
  const nextPrivate = data[SIGNING_KEYS.nextPrivate];
  const nextPublic = data[SIGNING_KEYS.nextPublic];
  if (nextPrivate !== undefined) {
    return {
      [SIGNING_KEYS.private]: nextPrivate,
      [SIGNING_KEYS.public]: nextPublic ?? publicPemOf(createPrivateKey(nextPrivate)),
    };
  }
  const next = generateSigningKey();
  return { ...data, [SIGNING_KEYS.nextPrivate]: next.privatePem, [SIGNING_KEYS.nextPublic]: next.publicPem };
}

function decodeAll(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
}

async function readSecret(core: CoreV1Api, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ namespace, name });
  } catch (err) {
    if (isStatus(err, 404)) return undefined;
    throw err;
  }
}

/** What a leader's pass did, for the log. */
export type SecretAction = "created" | "rotated" | "renewed" | "unchanged";

/** Every replica: the keys in `airlock-signing-key`, or undefined while it does not exist. */
export async function readSigningKeys(core: CoreV1Api, namespace: string): Promise<SigningKeys | undefined> {
  const secret = await readSecret(core, namespace, SIGNING_KEY_SECRET);
  return secret === undefined ? undefined : signingKeysFrom(secret.data);
}

/**
 * The leader: creates `airlock-signing-key` with a new key when absent, takes one rotation step
 * when it carries ROTATE_ANNOTATION (removing it in the same write), and returns the keys.
 */
export async function ensureSigningKeys(
  core: CoreV1Api,
  namespace: string,
  owners: V1OwnerReference[] = [],
): Promise<{ keys: SigningKeys; action: SecretAction }> {
  const secret = await readSecret(core, namespace, SIGNING_KEY_SECRET);
  if (secret === undefined) {
    const key = generateSigningKey();
    const body = Object.assign(new V1Secret(), {
      metadata: owned({ name: SIGNING_KEY_SECRET, namespace, labels: LABELS }, owners),
      type: "Opaque",
      data: encode({ [SIGNING_KEYS.private]: key.privatePem, [SIGNING_KEYS.public]: key.publicPem }),
    });
    const created = await core.createNamespacedSecret({ namespace, body });
    return { keys: signingKeysFrom(created.data), action: "created" };
  }
  const keys = signingKeysFrom(secret.data);
  const annotations = secret.metadata?.annotations ?? {};
  if (annotations[ROTATE_ANNOTATION] === undefined) return { keys, action: "unchanged" };
  const rest = Object.fromEntries(Object.entries(annotations).filter(([k]) => k !== ROTATE_ANNOTATION));
  if (secret.metadata) secret.metadata.annotations = rest;
  secret.data = encode(rotateSigningKeyData(decodeAll(secret.data)));
  const replaced = await core.replaceNamespacedSecret({ namespace, name: SIGNING_KEY_SECRET, body: secret });
  return { keys: signingKeysFrom(replaced.data), action: "rotated" };
}

function tlsFrom(data: Record<string, string> | undefined): Partial<WebhookTlsPem> {
  const tls: Partial<WebhookTlsPem> = {};
  const ca = decode(data, "ca.crt");
  const crt = decode(data, "tls.crt");
  const key = decode(data, "tls.key");
  if (ca !== undefined) tls.caCrt = ca;
  if (crt !== undefined) tls.tlsCrt = crt;
  if (key !== undefined) tls.tlsKey = key;
  return tls;
}

/** Every replica: the webhook TLS in `airlock-webhook-tls`, or undefined while absent or incomplete. */
export async function readWebhookTls(core: CoreV1Api, namespace: string): Promise<WebhookTlsPem | undefined> {
  const secret = await readSecret(core, namespace, WEBHOOK_TLS_SECRET);
  const tls = tlsFrom(secret?.data);
  if (tls.caCrt === undefined || tls.tlsCrt === undefined || tls.tlsKey === undefined) return undefined;
  return { caCrt: tls.caCrt, tlsCrt: tls.tlsCrt, tlsKey: tls.tlsKey };
}

/**
 * The leader: creates `airlock-webhook-tls` (type kubernetes.io/tls plus `ca.crt`) when absent, and
 * re-issues CA and certificate when webhookTlsProblem finds one (near expiry, a name not covered,
 * unreadable), keeping the previous CA in `ca.crt` during the switch. Returns the TLS and why it
 * was renewed, if it was.
 */
export async function ensureWebhookTls(
  core: CoreV1Api,
  namespace: string,
  names: WebhookNames,
  now = Date.now(),
  owners: V1OwnerReference[] = [],
): Promise<{ tls: WebhookTlsPem; action: SecretAction; reason?: string }> {
  const secret = await readSecret(core, namespace, WEBHOOK_TLS_SECRET);
  const current = tlsFrom(secret?.data);
  const reason = webhookTlsProblem(current, names, now);
  if (secret !== undefined && reason === undefined)
    return { tls: current as WebhookTlsPem, action: "unchanged" };
  const tls = issueWebhookTls(names, now, current.caCrt);
  const data = encode({ "ca.crt": tls.caCrt, "tls.crt": tls.tlsCrt, "tls.key": tls.tlsKey });
  if (secret === undefined) {
    const body = Object.assign(new V1Secret(), {
      metadata: owned({ name: WEBHOOK_TLS_SECRET, namespace, labels: LABELS }, owners),
      type: "kubernetes.io/tls",
      data,
    });
    await core.createNamespacedSecret({ namespace, body });
    return { tls, action: "created" };
  }
  if (secret.type !== "kubernetes.io/tls")
    throw new UnusableSecretError(
      `it is of type ${secret.type ?? "Opaque"}, not kubernetes.io/tls; delete it`,
    );
  secret.data = data;
  await core.replaceNamespacedSecret({ namespace, name: WEBHOOK_TLS_SECRET, body: secret });
  return { tls, action: "renewed", ...(reason === undefined ? {} : { reason }) };
}
