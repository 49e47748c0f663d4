// The sidecar's interception CA: an ECDSA P-256 key generated at start and held only in memory,
// and leaf certificates for exactly the names the sidecar intercepts.
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import * as x509 from "./x509.ts";

const HOUR = 3600_000;
const LEAF_LIFETIME = 7 * 24 * HOUR;
const CA_LIFETIME = 365 * 24 * HOUR;
/** A leaf is re-issued when less than this much of its life is left. */
const LEAF_RENEW_BEFORE = 24 * HOUR;
const LEAF_CACHE_SIZE = 1024;

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
  #ca: x509.Issuer;
  #leafPublic: KeyObject;
  #leafKeyPem: string;
  #leaves = new Map<string, Leaf>();
  #issued = 0;

  constructor() {
    this.#ca = {
      ...generateKeyPairSync("ec", { namedCurve: "P-256" }),
      name: x509.distinguishedName(`Airlock sidecar CA ${randomBytes(4).toString("hex")}`),
    };
    // One key for every leaf: issuing then costs a signature, not a key generation.
    const leaf = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.#leafPublic = leaf.publicKey;
    this.#leafKeyPem = leaf.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const now = Date.now();
    this.certificatePem = x509.certificatePem(
      x509.caCertificate(this.#ca, new Date(now - HOUR), new Date(now + CA_LIFETIME)),
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
    const der = x509.serverCertificate(
      this.#ca,
      { commonName: hostname, subjectKey: this.#leafPublic, altNames: [x509.dnsAltName(hostname)] },
      new Date(now - HOUR),
      new Date(now + LEAF_LIFETIME),
    );
    this.#issued++;
    const leafPem = x509.certificatePem(der);
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
