// The key material the operator makes for itself (no hand steps, DESIGN.md §4): the Ed25519
// bundle-signing key, and the admission webhook's serving CA and certificate. Pure: node:crypto
// only, no I/O. Certificates are built with the X.509 builder the sidecar's CA uses
// (sidecar/tls/x509.ts; docs/decisions.md: no X.509 library) and read back with X509Certificate.
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { tlv } from "../../sidecar/tls/der.ts";
import * as x509 from "../../sidecar/tls/x509.ts";

const DAY = 24 * 3600_000;
/** How long the webhook CA and serving certificate are valid. */
export const WEBHOOK_CERT_LIFETIME_MS = 365 * DAY;
/** They are both re-issued when less than this much of the certificate's life is left. */
export const WEBHOOK_CERT_RENEW_BEFORE_MS = 30 * DAY;
/** The Service the webhook is reached through in a cluster (the chart creates it). */
export const WEBHOOK_SERVICE = "airlock-webhook";

/** A freshly generated Ed25519 bundle-signing key pair, as PEM (PKCS#8 and SPKI). */
export interface SigningKeyPem {
  privatePem: string;
  publicPem: string;
}

/** Generates a new Ed25519 bundle-signing key. */
export function generateSigningKey(): SigningKeyPem {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** The webhook's TLS material as stored in Secret `airlock-webhook-tls` (all PEM). */
export interface WebhookTlsPem {
  /** The CA certificate(s) the API server must trust: the current CA, then the previous one while valid. */
  caCrt: string;
  /** The serving certificate (leaf only). */
  tlsCrt: string;
  /** The serving certificate's private key (PKCS#8). */
  tlsKey: string;
}

/** The DNS names (and IPs) the serving certificate must cover. */
export interface WebhookNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/**
 * The names a webhook in `namespace` is reached by: the Service's `.svc` and `.svc.cluster.local`
 * names, plus the host of `webhookUrl` (a DNS name or an IP) when the operator is given one.
 */
export function webhookNames(namespace: string, webhookUrl?: string): WebhookNames {
  const dnsNames = [
    `${WEBHOOK_SERVICE}.${namespace}.svc`,
    `${WEBHOOK_SERVICE}.${namespace}.svc.cluster.local`,
  ];
  const ipAddresses: string[] = [];
  if (webhookUrl !== undefined) {
    const host = new URL(webhookUrl).hostname.replace(/^\[(.*)\]$/, "$1");
    if (isIP(host) !== 0) ipAddresses.push(host);
    else if (!dnsNames.includes(host.toLowerCase())) dnsNames.push(host.toLowerCase());
  }
  return { dnsNames, ipAddresses };
}

/** The 4 or 16 bytes of an IP address in text form. */
export function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  if (isIP(ip) !== 6) throw new Error(`not an IP address: ${ip}`);
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (v4 !== undefined) {
    const b = v4.split(".").map(Number);
    text =
      text.slice(0, -v4.length) +
      `${(((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16)}:${(((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/**
 * Issues a new webhook CA (ECDSA P-256) and a serving certificate for `names`, both valid for
 * WEBHOOK_CERT_LIFETIME_MS from `now`. `previousCaCrt` (the CA(s) in use until now) is kept after
 * the new CA in `caCrt` while its first certificate is still valid, so API servers that still see
 * the old serving certificate keep trusting it during the switch. The CA key is discarded.
 */
export function issueWebhookTls(
  names: WebhookNames,
  now = Date.now(),
  previousCaCrt?: string,
): WebhookTlsPem {
  const ca: x509.Issuer = {
    ...generateKeyPairSync("ec", { namedCurve: "P-256" }),
    name: x509.distinguishedName(`Airlock webhook CA ${randomBytes(4).toString("hex")}`),
  };
  const leaf = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const notBefore = new Date(now - 3600_000);
  const notAfter = new Date(now + WEBHOOK_CERT_LIFETIME_MS);
  const caCert = x509.certificatePem(x509.caCertificate(ca, notBefore, notAfter));
  const altNames = [
    ...names.dnsNames.map(x509.dnsAltName),
    ...names.ipAddresses.map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  const tlsCrt = x509.certificatePem(
    x509.serverCertificate(
      ca,
      { commonName: names.dnsNames[0] ?? "airlock-webhook", subjectKey: leaf.publicKey, altNames },
      notBefore,
      notAfter,
    ),
  );
  const kept = (previousCaCrt === undefined ? [] : pemCertificates(previousCaCrt))
    .slice(0, 1)
    .filter((pem) => certificateValidAt(pem, now));
  return {
    caCrt: [caCert, ...kept].join(""),
    tlsCrt,
    tlsKey: leaf.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

/** The PEM certificate blocks in `text`, in order. */
export function pemCertificates(text: string): string[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => `${block}\n`,
  );
}

function certificateValidAt(pem: string, now: number): boolean {
  try {
    const cert = new X509Certificate(pem);
    return cert.validToDate.getTime() > now && cert.validFromDate.getTime() <= now;
  } catch {
    return false;
  }
}

/**
 * Why `tls` must be (re-)issued for `names` at `now`, or undefined when it is fine: absent or
 * unreadable, a name not covered, the key not matching, not signed by the first CA in ca.crt,
 * or less than WEBHOOK_CERT_RENEW_BEFORE_MS of validity left.
 */
export function webhookTlsProblem(
  tls: Partial<WebhookTlsPem> | undefined,
  names: WebhookNames,
  now = Date.now(),
): string | undefined {
  if (tls?.caCrt === undefined || tls.tlsCrt === undefined || tls.tlsKey === undefined)
    return "absent or incomplete";
  try {
    const cert = new X509Certificate(tls.tlsCrt);
    const ca = new X509Certificate(pemCertificates(tls.caCrt)[0] ?? "");
    if (!cert.verify(ca.publicKey)) return "tls.crt is not signed by the CA in ca.crt";
    if (!cert.checkPrivateKey(createPrivateKey(tls.tlsKey))) return "tls.key does not match tls.crt";
    for (const name of names.dnsNames)
      if (cert.checkHost(name, { subject: "never", wildcards: false }) === undefined)
        return `the certificate does not cover ${name}`;
    for (const ip of names.ipAddresses)
      if (cert.checkIP(ip) === undefined) return `the certificate does not cover ${ip}`;
    const expires = Math.min(cert.validToDate.getTime(), ca.validToDate.getTime());
    if (expires - now < WEBHOOK_CERT_RENEW_BEFORE_MS)
      return `the certificate expires ${new Date(expires).toISOString()}`;
    return undefined;
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}
