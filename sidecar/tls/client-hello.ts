// Peeks at a TLS ClientHello so the transparent listener can decide on the SNI before a single
// byte reaches an upstream. The bytes come from the agent, the adversary: every length is checked
// against both the bytes we have and the length that encloses it, and nothing here throws on input.

/** What the bytes read so far from a connection are; `length` counts the records that carry the hello. */
export type ClientHelloResult =
  | { state: "need-more" }
  | { state: "not-tls" }
  | { state: "invalid"; message: string }
  | { state: "ok"; sni: string | null; alpn: string[]; length: number };

/** The records carrying a ClientHello must end within this many bytes of the stream. */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

/** The alert description sent before closing a connection whose hello was refused. */
export const TLS_ALERT_HANDSHAKE_FAILURE = 40;

const CONTENT_HANDSHAKE = 22;
const CONTENT_ALERT = 21;
const HANDSHAKE_CLIENT_HELLO = 1;
const RECORD_HEADER = 5;
const MAX_RECORD_PAYLOAD = 16384; // RFC 8446 §5.1: plaintext records carry at most 2^14 bytes
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

/** We ran out of bytes before any declared length did: more may make it whole. */
class Truncated extends Error {}

/** A declared length or value is wrong whatever bytes follow. */
class Malformed extends Error {}

/** A cursor bounded twice: by the bytes received (`data`) and by the enclosing declared length (`end`). */
class Reader {
  private readonly data: Buffer;
  private readonly end: number;
  private pos: number;

  constructor(data: Buffer, pos: number, end: number) {
    this.data = data;
    this.pos = pos;
    this.end = end;
  }

  get remaining(): boolean {
    return this.pos < this.end;
  }

  private advance(n: number, what: string): number {
    const start = this.pos;
    if (start + n > this.end) throw new Malformed(`${what} overruns its enclosing length`);
    if (start + n > this.data.length) throw new Truncated();
    this.pos = start + n;
    return start;
  }

  u8(what: string): number {
    return this.data.readUInt8(this.advance(1, what));
  }

  u16(what: string): number {
    return this.data.readUInt16BE(this.advance(2, what));
  }

  bytes(n: number, what: string): Buffer {
    const start = this.advance(n, what);
    return this.data.subarray(start, start + n);
  }

  /** Every byte up to `end`; the caller holds a reader made by `vector` for exactly these. */
  rest(what: string): Buffer {
    return this.bytes(this.end - this.pos, what);
  }

  /** A length-prefixed vector as its own reader. Only the declared bound is checked here, so a
   *  malformed inner length is reported even while the vector's tail has not arrived. */
  vector(lengthBytes: 1 | 2, what: string, min: number, max: number): Reader {
    const length = lengthBytes === 1 ? this.u8(what) : this.u16(what);
    if (length < min || length > max) throw new Malformed(`${what} length ${length} outside ${min}..${max}`);
    if (this.pos + length > this.end) throw new Malformed(`${what} overruns its enclosing length`);
    const inner = new Reader(this.data, this.pos, this.pos + length);
    this.pos += length;
    return inner;
  }

  done(what: string): void {
    if (this.pos !== this.end) throw new Malformed(`${this.end - this.pos} stray bytes after ${what}`);
  }
}

function readServerName(ext: Reader): string {
  const list = ext.vector(2, "server_name list", 1, 0xffff);
  ext.done("server_name list");
  const type = list.u8("server_name type");
  // Only host_name (0) exists; accepting another type, or a second entry, would leave the
  // policy to guess which name the upstream will act on.
  if (type !== 0) throw new Malformed(`server_name type ${type} is not host_name`);
  const name = list.vector(2, "host_name", 1, 0xffff).rest("host_name");
  if (list.remaining) throw new Malformed("server_name lists more than one name");
  // latin1 keeps every byte as one code unit, so the caller's canonicaliser sees exactly what was sent.
  return name.toString("latin1");
}

function readAlpn(ext: Reader): string[] {
  const list = ext.vector(2, "ALPN list", 2, 0xffff);
  ext.done("ALPN list");
  const protocols: string[] = [];
  while (list.remaining)
    protocols.push(list.vector(1, "ALPN protocol", 1, 255).rest("ALPN protocol").toString("latin1"));
  return protocols;
}

/** Walks the ClientHello body (RFC 8446 §4.1.2, compatible with TLS 1.0–1.2 hellos). */
function readHello(body: Reader): { sni: string | null; alpn: string[] } {
  const version = body.u16("legacy_version");
  if (version < 0x0301 || version > 0x0304) throw new Malformed(`legacy_version 0x${version.toString(16)}`);
  body.bytes(32, "random");
  body.vector(1, "legacy_session_id", 0, 32).rest("legacy_session_id");
  const suites = body.vector(2, "cipher_suites", 2, 0xfffe);
  const suitesBytes = suites.rest("cipher_suites");
  if (suitesBytes.length % 2 !== 0) throw new Malformed("cipher_suites length is odd");
  body.vector(1, "legacy_compression_methods", 1, 255).rest("legacy_compression_methods");
  const result: { sni: string | null; alpn: string[] } = { sni: null, alpn: [] };
  if (!body.remaining) return result; // a TLS 1.0–1.2 hello may carry no extensions at all
  const extensions = body.vector(2, "extensions", 0, 0xffff);
  body.done("extensions");
  const seen = new Set<number>();
  while (extensions.remaining) {
    const type = extensions.u16("extension type");
    const data = extensions.vector(2, `extension ${type}`, 0, 0xffff);
    // RFC 8446 §4.2 forbids repeats; two server_names would be two answers to one question.
    if (seen.has(type)) throw new Malformed(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) result.sni = readServerName(data);
    else if (type === EXT_ALPN) result.alpn = readAlpn(data);
  }
  return result;
}

/** Checks the header bytes of one record that have arrived; a message, or null when they are fine. */
function recordProblem(header: Buffer, index: number): string | null {
  const [type, major, minor] = header;
  if (type !== undefined && type !== CONTENT_HANDSHAKE) return `record ${index} has content type ${type}`;
  if (major !== undefined && major !== 3) return `record ${index} has version major ${major}`;
  if (minor !== undefined && (minor < 1 || minor > 4)) return `record ${index} has version 3.${minor}`;
  if (header.length < RECORD_HEADER) return null;
  const length = header.readUInt16BE(3);
  if (length === 0) return `record ${index} is empty`; // RFC 8446 §5.1: no zero-length handshake fragments
  if (length > MAX_RECORD_PAYLOAD) return `record ${index} declares ${length} bytes, over 2^14`;
  return null;
}

/**
 * Reads the ClientHello from the start of a connection. `need-more` means `buf` is a valid prefix;
 * it is never returned once 64 KiB have been buffered. `not-tls` means the first byte is not 22.
 */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  if (buf.length === 0) return { state: "need-more" };
  if (buf[0] !== CONTENT_HANDSHAKE) return { state: "not-tls" };
  const invalid = (message: string): ClientHelloResult => ({ state: "invalid", message });

  // 1. Gather handshake fragments record by record until the records promise the whole hello.
  const fragments: Buffer[] = [];
  let offset = 0; // start of the next record
  let promised = 0; // handshake bytes the records seen so far declare
  let helloEnd: number | undefined; // 4 + the hello's 24-bit length, once known
  for (let index = 0; ; index++) {
    // Checked before waiting for more, so 64 KiB buffered always yields an answer.
    if (offset + RECORD_HEADER >= MAX_CLIENT_HELLO_BYTES) return invalid("ClientHello exceeds 64 KiB");
    if (offset >= buf.length) break;
    const header = buf.subarray(offset, offset + RECORD_HEADER);
    const problem = recordProblem(header, index);
    if (problem !== null) return invalid(problem);
    if (header.length < RECORD_HEADER) break;
    const length = header.readUInt16BE(3);
    if (offset + RECORD_HEADER + length > MAX_CLIENT_HELLO_BYTES)
      return invalid("ClientHello exceeds 64 KiB");
    fragments.push(buf.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + length));
    offset += RECORD_HEADER + length;
    promised += length;
    if (helloEnd === undefined && promised >= 4) {
      // Each record holds at least one byte, so this concatenation runs at most once, on ≤ 4 records.
      const start = Buffer.concat(fragments);
      if (start.length >= 4) helloEnd = 4 + start.readUIntBE(1, 3);
    }
    if (helloEnd !== undefined) {
      if (helloEnd + RECORD_HEADER > MAX_CLIENT_HELLO_BYTES) return invalid("ClientHello exceeds 64 KiB");
      // Nothing may share the hello's last record: a later message would ride past the check.
      if (promised > helloEnd) return invalid("bytes follow the ClientHello in its record");
      if (promised === helloEnd) break;
    }
  }

  // 2. Parse what has arrived; a read past the received bytes but within every length is a prefix.
  const handshake = Buffer.concat(fragments);
  const type = handshake[0];
  if (type !== undefined && type !== HANDSHAKE_CLIENT_HELLO)
    return invalid(`handshake type ${type} is not ClientHello`);
  if (handshake.length < 4 || helloEnd === undefined) return { state: "need-more" };
  try {
    const hello = readHello(new Reader(handshake, 4, helloEnd));
    if (handshake.length < helloEnd || offset > buf.length) return { state: "need-more" };
    return { state: "ok", sni: hello.sni, alpn: hello.alpn, length: offset };
  } catch (error) {
    if (error instanceof Truncated) return { state: "need-more" };
    if (error instanceof Malformed) return invalid(error.message);
    throw error;
  }
}

/**
 * Whether the bytes so far open an HTTP/1.x request: 1–20 uppercase letters then a space.
 * `need-more` while they are all uppercase letters and too few to tell (the empty buffer included).
 */
export function sniffHttp(buf: Buffer): "http" | "not-http" | "need-more" {
  for (let i = 0; i <= 20; i++) {
    const byte = buf[i];
    if (byte === undefined) return "need-more";
    if (byte === 0x20) return i > 0 ? "http" : "not-http";
    if (byte < 0x41 || byte > 0x5a || i === 20) return "not-http";
  }
  return "not-http";
}

/** True only once `buf` surely opens an HTTP/1.x request; false on a short prefix (see `sniffHttp`). */
export function looksLikeHttp(buf: Buffer): boolean {
  return sniffHttp(buf) === "http";
}

/** A fatal alert record (TLS 1.2 record version, which every TLS version accepts before keys exist). */
export function tlsAlert(description: number): Buffer {
  if (!Number.isInteger(description) || description < 0 || description > 255) {
    throw new RangeError(`TLS alert description must be a byte, got ${description}`);
  }
  return Buffer.from([CONTENT_ALERT, 3, 3, 0, 2, 2, description]);
}
