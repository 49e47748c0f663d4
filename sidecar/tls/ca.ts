// The sidecar's interception CA: an ECDSA P-256 key generated at start and held only in memory,
// and leaf certificates for exactly the names the sidecar intercepts.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import {
  bitString,
  boolean,
  explicit,
  octetString,
  oid,
  sequence,
  set,
  time,
  tlv,
  unsignedInteger,
  utf8String,
} from "./der.ts";

const ECDSA_WITH_SHA256 = sequence(oid("1.2.840.10045.4.3.2"));
const HOUR = 3600_000;
const LEAF_LIFETIME = 7 * 24 * HOUR;
const CA_LIFETIME = 365 * 24 * HOUR;
/** A leaf is re-issued when less than this much of its life is left. */
const LEAF_RENEW_BEFORE = 24 * HOUR;
const LEAF_CACHE_SIZE = 1024;

function name(commonName: string): Buffer {
  return sequence(
    set(sequence(oid("2.5.4.10"), utf8String("Airlock"))),
    set(sequence(oid("2.5.4.3"), utf8String(commonName))),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

function keyIdentifier(publicKey: KeyObject): Buffer {
  // RFC 5280 §4.2.1.2 method 1 needs the raw key bits; hashing the whole SPKI is an accepted variant.
  return createHash("sha1")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest();
}

interface CertificateFields {
  subject: Buffer;
  issuer: Buffer;
  subjectKey: KeyObject;
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}

function issue(fields: CertificateFields): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const tbs = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))),
    unsignedInteger(serial),
    ECDSA_WITH_SHA256,
    fields.issuer,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.subjectKey.export({ type: "spki", format: "der" }),
    explicit(3, sequence(...fields.extensions)),
  );
  const signature = sign("sha256", tbs, fields.signingKey);
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(signature));
}

function pem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

interface Leaf {
  context: SecureContext;
  pem: string;
  renewAt: number;
}

/**
 * An in-memory CA. The private keys never leave this object: no file, no env, no log.
 * `certificatePem` is the public CA certificate agents must trust.
 */
export class CertificateAuthority {
  /** PEM of the CA certificate (public). */
  readonly certificatePem: string;
  #caKey: KeyObject;
  #caPublic: KeyObject;
  #caName: Buffer;
  #leafPublic: KeyObject;
  #leafKeyPem: string;
  #leaves = new Map<string, Leaf>();
  #issued = 0;

  constructor() {
    const ca = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.#caKey = ca.privateKey;
    this.#caPublic = ca.publicKey;
    this.#caName = name(`Airlock sidecar CA ${randomBytes(4).toString("hex")}`);
    // One key for every leaf: issuing then costs a signature, not a key generation.
    const leaf = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.#leafPublic = leaf.publicKey;
    this.#leafKeyPem = leaf.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const now = Date.now();
    const caKeyId = keyIdentifier(this.#caPublic);
    this.certificatePem = pem(
      issue({
        subject: this.#caName,
        issuer: this.#caName,
        subjectKey: this.#caPublic,
        signingKey: this.#caKey,
        notBefore: new Date(now - HOUR),
        notAfter: new Date(now + CA_LIFETIME),
        extensions: [
          extension("2.5.29.19", true, sequence(boolean(true), unsignedInteger(Buffer.from([0])))),
          // keyCertSign | cRLSign
          extension("2.5.29.15", true, tlv(0x03, Buffer.from([0x01, 0x06]))),
          extension("2.5.29.14", false, octetString(caKeyId)),
        ],
      }),
    );
  }

  /** How many leaf certificates this CA has signed (for airlock_tls_certificates_issued_total). */
  get issuedCount(): number {
    return this.#issued;
  }

  /** A TLS server context for exactly `hostname` (a canonical DNS name), cached until near expiry. */
  contextFor(hostname: string): SecureContext {
    return this.#leaf(hostname).context;
  }

  /** Key and certificate chain for a server of its own named `hostname` (the control port); memory only. */
  serverCredentials(hostname: string): { key: string; cert: string } {
    return { key: this.#leafKeyPem, cert: this.#leaf(hostname).pem + this.certificatePem };
  }

  /** The PEM of the leaf for `hostname` (public data; for tests and diagnostics). */
  leafPemFor(hostname: string): string {
    return this.#leaf(hostname).pem;
  }

  #leaf(hostname: string): Leaf {
    const now = Date.now();
    const cached = this.#leaves.get(hostname);
    if (cached && cached.renewAt > now) {
      // Map order doubles as LRU order.
      this.#leaves.delete(hostname);
      this.#leaves.set(hostname, cached);
      return cached;
    }
    const der = issue({
      subject: name(hostname),
      issuer: this.#caName,
      subjectKey: this.#leafPublic,
      signingKey: this.#caKey,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + LEAF_LIFETIME),
      extensions: [
        extension("2.5.29.19", true, sequence()),
        // digitalSignature
        extension("2.5.29.15", true, tlv(0x03, Buffer.from([0x07, 0x80]))),
        extension("2.5.29.37", false, sequence(oid("1.3.6.1.5.5.7.3.1"))),
        extension("2.5.29.17", false, sequence(tlv(0x82, Buffer.from(hostname, "ascii")))),
        extension("2.5.29.35", false, sequence(tlv(0x80, keyIdentifier(this.#caPublic)))),
      ],
    });
    this.#issued++;
    const leafPem = pem(der);
    const context = createSecureContext({
      key: this.#leafKeyPem,
      cert: leafPem + this.certificatePem,
      minVersion: "TLSv1.2",
    });
    const leaf = { context, pem: leafPem, renewAt: now + LEAF_LIFETIME - LEAF_RENEW_BEFORE };
    this.#leaves.set(hostname, leaf);
    if (this.#leaves.size > LEAF_CACHE_SIZE) {
      const oldest = this.#leaves.keys().next();
      if (oldest.done !== true) this.#leaves.delete(oldest.value);
    }
    return leaf;
  }
}
