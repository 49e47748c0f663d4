// X.509 certificate building on the DER encoder (docs/decisions.md: no X.509 library), shared by
// the sidecar's interception CA (ca.ts) and the operator's webhook PKI
// (operator/kube/bootstrap-pki.ts). Neutral: it imports nothing else from sidecar/ or operator/.
import { createHash, randomBytes, sign, type KeyObject } from "node:crypto";
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

/** The DER Name `O=Airlock, CN=commonName`. */
export function distinguishedName(commonName: string): Buffer {
  return sequence(
    set(sequence(oid("2.5.4.10"), utf8String("Airlock"))),
    set(sequence(oid("2.5.4.3"), utf8String(commonName))),
  );
}

/** One DER Extension: `id`, marked critical when `critical`, with the DER `value`. */
function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** SHA-1 of the key's whole SPKI, for subject and authority key identifiers. */
function keyIdentifier(publicKey: KeyObject): Buffer {
  // RFC 5280 §4.2.1.2 method 1 needs the raw key bits; hashing the whole SPKI is an accepted variant.
  return createHash("sha1")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest();
}

/** The extensions of a CA certificate: CA, keyCertSign | cRLSign, and its key identifier. */
function caExtensions(publicKey: KeyObject): Buffer[] {
  return [
    extension("2.5.29.19", true, sequence(boolean(true), unsignedInteger(Buffer.from([0])))),
    extension("2.5.29.15", true, tlv(0x03, Buffer.from([0x01, 0x06]))), // keyCertSign | cRLSign
    extension("2.5.29.14", false, octetString(keyIdentifier(publicKey))),
  ];
}

/**
 * The extensions of a TLS server certificate issued by the CA with `issuerKey`: not a CA,
 * digitalSignature, serverAuth, `altNames` (DER GeneralNames: 0x82 DNS names, 0x87 IPs) and
 * the issuer's key identifier.
 */
function serverExtensions(altNames: Buffer[], issuerKey: KeyObject): Buffer[] {
  return [
    extension("2.5.29.19", true, sequence()),
    extension("2.5.29.15", true, tlv(0x03, Buffer.from([0x07, 0x80]))), // digitalSignature
    extension("2.5.29.37", false, sequence(oid("1.3.6.1.5.5.7.3.1"))), // serverAuth
    extension("2.5.29.17", false, sequence(...altNames)),
    extension("2.5.29.35", false, sequence(tlv(0x80, keyIdentifier(issuerKey)))),
  ];
}

/** A DNS name as a DER GeneralName (dNSName). */
export function dnsAltName(name: string): Buffer {
  return tlv(0x82, Buffer.from(name, "ascii"));
}

/** What an X.509 v3 certificate is built from (ECDSA P-256 keys, signed with SHA-256). */
interface CertificateFields {
  subject: Buffer;
  issuer: Buffer;
  subjectKey: KeyObject;
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}

/** The DER of a new certificate for `fields`, with a random positive 128-bit serial. */
function issueCertificate(fields: CertificateFields): Buffer {
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
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(sign("sha256", tbs, fields.signingKey)));
}

/** `der` as a PEM CERTIFICATE block (64-character lines, trailing newline). */
export function certificatePem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** A CA: its Name and key pair (the private key signs what it issues). */
export interface Issuer {
  name: Buffer;
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** The DER of `ca`'s self-signed CA certificate (caExtensions), valid from `notBefore` to `notAfter`. */
export function caCertificate(ca: Issuer, notBefore: Date, notAfter: Date): Buffer {
  return issueCertificate({
    subject: ca.name,
    issuer: ca.name,
    subjectKey: ca.publicKey,
    signingKey: ca.privateKey,
    notBefore,
    notAfter,
    extensions: caExtensions(ca.publicKey),
  });
}

/**
 * The DER of a TLS server certificate `ca` issues for `subjectKey` (serverExtensions with
 * `altNames`), named `commonName`, valid from `notBefore` to `notAfter`.
 */
export function serverCertificate(
  ca: Issuer,
  leaf: { commonName: string; subjectKey: KeyObject; altNames: Buffer[] },
  notBefore: Date,
  notAfter: Date,
): Buffer {
  return issueCertificate({
    subject: distinguishedName(leaf.commonName),
    issuer: ca.name,
    subjectKey: leaf.subjectKey,
    signingKey: ca.privateKey,
    notBefore,
    notAfter,
    extensions: serverExtensions(leaf.altNames, ca.publicKey),
  });
}
