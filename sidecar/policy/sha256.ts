// A small SHA-256 (FIPS 180-4) so the policy core can content-hash bundles without node:crypto:
// the core stays pure and runs anywhere. A bundle of 10,000 rules is ~2 MB, hashed on every
// compile and load, so the rounds keep their state in locals rather than arrays.

// Int32: the rounds stay in 32-bit signed integers (V8 small integers, never heap numbers).
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

const H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** One 64-byte block of `bytes` at `offset` into the state `h` (w: the message schedule). */
function block(h: Int32Array, w: Int32Array, bytes: Uint8Array, offset: number): void {
  for (let t = 0, i = offset; t < 16; t++, i += 4)
    w[t] =
      ((bytes[i] as number) << 24) |
      ((bytes[i + 1] as number) << 16) |
      ((bytes[i + 2] as number) << 8) |
      (bytes[i + 3] as number);
  for (let t = 16; t < 64; t++) {
    const w15 = w[t - 15] as number;
    const w2 = w[t - 2] as number;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    w[t] = ((w[t - 16] as number) + s0 + (w[t - 7] as number) + s1) | 0;
  }
  let a = h[0] as number;
  let b = h[1] as number;
  let c = h[2] as number;
  let d = h[3] as number;
  let e = h[4] as number;
  let f = h[5] as number;
  let g = h[6] as number;
  let hh = h[7] as number;
  for (let t = 0; t < 64; t++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (hh + s1 + ch + (K[t] as number) + (w[t] as number)) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + s0 + maj) | 0;
  }
  h[0] = ((h[0] as number) + a) | 0;
  h[1] = ((h[1] as number) + b) | 0;
  h[2] = ((h[2] as number) + c) | 0;
  h[3] = ((h[3] as number) + d) | 0;
  h[4] = ((h[4] as number) + e) | 0;
  h[5] = ((h[5] as number) + f) | 0;
  h[6] = ((h[6] as number) + g) | 0;
  h[7] = ((h[7] as number) + hh) | 0;
}

const ENCODER = new TextEncoder();

/**
 * SHA-256 over text written piece by piece, as UTF-8: what policyHash feeds the canonical JSON of a
 * bundle into, so that the 2 MB string of 10,000 rules is never built, flattened or encoded whole.
 */
export class Sha256Writer {
  readonly #h = Int32Array.from(H0);
  readonly #w = new Int32Array(64);
  readonly #buffer = new Uint8Array(64);
  #used = 0;
  #bytes = 0;

  /** Appends `text` as UTF-8. */
  write(text: string): void {
    // ASCII (all of a bundle's JSON but non-ASCII names) straight into the block buffer.
    const buffer = this.#buffer;
    let used = this.#used;
    let i = 0;
    for (; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) break;
      buffer[used++] = code;
      if (used === 64) {
        block(this.#h, this.#w, buffer, 0);
        used = 0;
      }
    }
    this.#used = used;
    this.#bytes += i;
    // The first non-ASCII character starts the rest, encoded whole (i is at a code point).
    if (i < text.length) for (const byte of ENCODER.encode(text.slice(i))) this.#push(byte);
  }

  #push(byte: number): void {
    this.#buffer[this.#used++] = byte;
    this.#bytes++;
    if (this.#used === 64) {
      block(this.#h, this.#w, this.#buffer, 0);
      this.#used = 0;
    }
  }

  /** The digest of everything written (the writer is spent afterwards). */
  digest(): Uint8Array {
    const bitLength = this.#bytes * 8;
    this.#push(0x80);
    while (this.#used !== 56) this.#push(0);
    const high = Math.floor(bitLength / 0x100000000);
    const low = bitLength >>> 0;
    for (const word of [high, low])
      for (let shift = 24; shift >= 0; shift -= 8) this.#push((word >>> shift) & 0xff);
    return digestBytes(this.#h);
  }
}

function digestBytes(h: Int32Array): Uint8Array {
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) outView.setInt32(i * 4, h[i] ?? 0);
  return out;
}

/** Lower-case hex of a digest. */
export function hex(digest: Uint8Array): string {
  let text = "";
  for (const byte of digest) text += byte.toString(16).padStart(2, "0");
  return text;
}

/** SHA-256 digest of `data` (a string is hashed as its UTF-8 bytes). */
export function sha256(data: string | Uint8Array): Uint8Array {
  const bytes = typeof data === "string" ? ENCODER.encode(data) : data;
  const h = Int32Array.from(H0);
  const w = new Int32Array(64);
  // Whole blocks straight from the input; only the tail is copied, to be padded.
  const whole = bytes.length - (bytes.length % 64);
  for (let offset = 0; offset < whole; offset += 64) block(h, w, bytes, offset);
  // Padding: a 1 bit, zeros, then the bit length as a 64-bit big-endian integer.
  const tail = new Uint8Array(bytes.length - whole + 9 <= 64 ? 64 : 128);
  tail.set(bytes.subarray(whole));
  tail[bytes.length - whole] = 0x80;
  const view = new DataView(tail.buffer);
  const bitLength = bytes.length * 8;
  view.setUint32(tail.length - 8, Math.floor(bitLength / 0x100000000));
  view.setUint32(tail.length - 4, bitLength >>> 0);
  for (let offset = 0; offset < tail.length; offset += 64) block(h, w, tail, offset);

  return digestBytes(h);
}

/** Lower-case hex SHA-256 of `data` (strings as UTF-8). */
export function sha256Hex(data: string | Uint8Array): string {
  return hex(sha256(data));
}
