// A minimal DER encoder: just the ASN.1 types an X.509 v3 certificate needs. Node can sign and
// export keys but cannot build certificates, and the libraries that can pull in global polyfills;
// forty lines of DER are easier to audit (docs/decisions.md).

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A TLV with the given tag byte around already-encoded content. */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

/** SEQUENCE of encoded elements. */
export const sequence = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
/** SET of encoded elements. */
export const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
/** Context-specific constructed tag [n] (explicit tagging). */
export const explicit = (n: number, item: Buffer): Buffer => tlv(0xa0 | n, item);
/** OCTET STRING. */
export const octetString = (bytes: Buffer): Buffer => tlv(0x04, bytes);
/** BIT STRING with no unused bits. */
export const bitString = (bytes: Buffer): Buffer => tlv(0x03, Buffer.from([0]), bytes);
/** BOOLEAN. */
export const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0]));
/** UTF8String. */
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, "utf8"));

/** A non-negative INTEGER from big-endian magnitude bytes (a leading zero is added when needed). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const needsPad = (trimmed[0] ?? 0) >= 0x80;
  return tlv(0x02, needsPad ? Buffer.from([0]) : Buffer.alloc(0), trimmed);
}

/** OBJECT IDENTIFIER from dotted text. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const bytes: number[] = [first * 40 + second];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift((n & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime before 2050, GeneralizedTime after, as RFC 5280 §4.1.2.5 requires. */
export function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}
