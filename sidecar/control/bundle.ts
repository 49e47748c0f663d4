// The signed bundle the operator pushes to a sidecar: a compiled policy with a generation,
// serialised canonically and signed with Ed25519. The agent shares the pod's network and can reach
// the control port, but cannot forge a signature: only the operator holds the private key.
import { createPublicKey, KeyObject, sign, verify } from "node:crypto";
import { canonicalJson, type CompiledPolicy } from "../policy/index.ts";

/** What is signed. */
export interface BundlePayload {
  apiVersion: "airlock.dev/v1alpha1";
  kind: "PolicyBundle";
  /** Strictly increasing per sidecar: an older or equal generation is refused (no replay). */
  generation: number;
  /** The sidecar process this bundle was signed for (from its /v1/status): no replay across restarts. */
  bootId: string;
  /** When the operator signed it (RFC 3339); informational. */
  issuedAt: string;
  policy: CompiledPolicy;
}

/** What travels: the exact signed bytes (base64) and the signature over them. */
export interface SignedBundle {
  payload: string;
  signature: string;
}

/** Signs a payload with the operator's Ed25519 private key. */
export function signBundle(payload: BundlePayload, privateKey: KeyObject): SignedBundle {
  const bytes = Buffer.from(canonicalJson(payload), "utf8");
  return { payload: bytes.toString("base64"), signature: sign(null, bytes, privateKey).toString("base64") };
}

/** Why a bundle was refused before it was even loaded (stable; reported back to the operator). */
export type BundleRejection = "Malformed" | "Unsigned" | "BadSignature" | "WrongBoot" | "StaleGeneration";

/** The sidecar's answer to a push (the body of POST /v1/bundle): applied, or refused with why. */
export type PushAnswer =
  | { result: "ACK"; generation: number; hash: string }
  | {
      result: "NACK";
      reason: BundleRejection | "LoadFailed";
      message: string;
      errors?: { path: string; message: string }[];
      /** What stays applied. */
      generation: number;
      hash: string | null;
    };

/**
 * Checks shape and signature, then returns the payload. `publicKey` is the operator's key, or
 * several (during a key rotation): a signature by any one of them is valid. The policy inside is
 * not validated here: `Gate.apply` does that, so a bundle can be signed yet still fail to load.
 */
export function openBundle(
  body: unknown,
  publicKey: KeyObject | readonly KeyObject[],
): { ok: true; value: BundlePayload } | { ok: false; reason: BundleRejection; message: string } {
  const fail = (reason: BundleRejection, message: string) => ({ ok: false as const, reason, message });
  if (typeof body !== "object" || body === null) return fail("Malformed", "expected a JSON object");
  const { payload, signature } = body as Partial<Record<keyof SignedBundle, unknown>>;
  if (typeof payload !== "string") return fail("Malformed", "payload must be a base64 string");
  if (typeof signature !== "string" || signature === "")
    return fail("Unsigned", "the bundle carries no signature");
  const bytes = Buffer.from(payload, "base64");
  const sig = Buffer.from(signature, "base64");
  const keys = publicKey instanceof KeyObject ? [publicKey] : publicKey;
  const valid = sig.length === 64 && keys.some((key) => verifies(bytes, key, sig));
  if (!valid) return fail("BadSignature", "the signature does not verify with the operator's key");
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    return fail("Malformed", "the signed payload is not JSON");
  }
  const p = parsed as Partial<BundlePayload>;
  if (p.apiVersion !== "airlock.dev/v1alpha1" || p.kind !== "PolicyBundle")
    return fail("Malformed", "expected apiVersion airlock.dev/v1alpha1, kind PolicyBundle");
  if (typeof p.generation !== "number" || !Number.isSafeInteger(p.generation) || p.generation < 1)
    return fail("Malformed", "generation must be a positive integer");
  if (typeof p.bootId !== "string") return fail("Malformed", "bootId must be a string");
  return { ok: true, value: parsed as BundlePayload };
}

function verifies(bytes: Buffer, key: KeyObject, sig: Buffer): boolean {
  try {
    return verify(null, bytes, key, sig);
  } catch {
    return false;
  }
}

/** Reads an Ed25519 public key from PEM (SPKI); throws with a clear message otherwise. */
export function readPublicKey(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== "ed25519")
    throw new Error(`expected an Ed25519 public key, got ${String(key.asymmetricKeyType)}`);
  return key;
}

const PUBLIC_KEY_PEM = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

/**
 * Reads one or more concatenated Ed25519 public keys (PEM, SPKI), as the operator hands them out
 * during a key rotation. Throws, naming the key by its position, when there is none or one is not
 * an Ed25519 public key.
 */
export function readPublicKeys(pem: string): KeyObject[] {
  const blocks = pem.match(PUBLIC_KEY_PEM) ?? [];
  if (blocks.length === 0) throw new Error("no PEM public key (-----BEGIN PUBLIC KEY-----) found");
  return blocks.map((block, i) => {
    try {
      return readPublicKey(block);
    } catch (err) {
      throw new Error(`key ${String(i + 1)} of ${String(blocks.length)}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  });
}
