// A deliberately small DNS codec (RFC 1035, RFC 6891 EDNS0): it parses exactly the queries a stub
// resolver sends — one question, an optional OPT record — and builds the few responses the
// responder gives. Pure: bytes in, bytes out, no sockets; never throws on any input.

/** Response codes the responder sends; BADVERS (16) is carried partly in the OPT record. */
export type Rcode = "NOERROR" | "FORMERR" | "SERVFAIL" | "NXDOMAIN" | "NOTIMP" | "REFUSED" | "BADVERS";

/** Why a packet is answered with an error: stable strings, they appear in logs. */
export type RejectReason =
  | "UnsupportedOpcode"
  | "QuestionCount"
  | "UnexpectedRecords"
  | "CompressedName"
  | "BadLabel"
  | "NameTooLong"
  | "Truncated"
  | "BadOpt"
  | "TrailingBytes"
  | "UnsupportedClass"
  | "BadEdnsVersion";

/** Why a packet gets no answer at all: no header to echo, or a response (answering one could loop). */
export type DropReason = "ShortHeader" | "NotAQuery";

/** Query header fields a response echoes. */
export interface Header {
  id: number;
  opcode: number;
  recursionDesired: boolean;
  checkingDisabled: boolean;
}

/**
 * The one question. `name` is lower-case ASCII without the trailing dot, bytes other than printable
 * ASCII escaped as `\DDD` and `.`/`\` inside a label as `\.`/`\\`; `wire` is echoed verbatim.
 */
export interface Question {
  name: string;
  type: number;
  qclass: number;
  wire: Uint8Array;
}

/** The query's EDNS0 OPT record: the UDP payload size it advertises, version and DO bit. */
export interface Edns {
  udpSize: number;
  version: number;
  dnssecOk: boolean;
}

/** A parsed packet: a query to answer, a query to refuse with `rcode`, or something to drop. */
export type ParsedQuery =
  | { kind: "query"; header: Header; question: Question; edns: Edns | undefined }
  | {
      kind: "reject";
      header: Header;
      rcode: Rcode;
      reason: RejectReason;
      question: Question | undefined;
      edns: Edns | undefined;
    }
  | { kind: "drop"; reason: DropReason };

/** One address record of an answer; `data` is the 4 or 16 address bytes. */
export interface AnswerRecord {
  type: typeof TYPE.A | typeof TYPE.AAAA;
  ttl: number;
  data: Uint8Array;
}

/** What {@link buildResponse} encodes: the query's echoed parts, the rcode and the answers. */
export interface ResponseSpec {
  header: Header;
  question: Question | undefined;
  edns: Edns | undefined;
  rcode: Rcode;
  answers?: readonly AnswerRecord[];
}

/** Record types the responder names; every other type is just a number. */
export const TYPE = { A: 1, NS: 2, CNAME: 5, MX: 15, TXT: 16, AAAA: 28, OPT: 41, ANY: 255 } as const;

/** The Internet class, the only one answered. */
export const CLASS_IN = 1;

/** Without EDNS0 a UDP response holds 512 bytes; with it, at most 1232 (no IP fragmentation). */
export const UDP_PLAIN_LIMIT = 512;
export const UDP_EDNS_LIMIT = 1232;

/** Largest DNS message over TCP: the 2-byte length prefix bounds it. */
export const TCP_LIMIT = 65535;

const RCODE_VALUE: Record<Rcode, number> = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
};

const HEADER_LENGTH = 12;
const MAX_NAME_WIRE = 255; // RFC 1035 §2.3.4: 253 characters of text plus the length octets
const OPT_LENGTH = 11;

type NameResult = { ok: true; name: string; end: number } | { ok: false; reason: RejectReason };

/** Reads an uncompressed name at `offset`: queries have nothing earlier a pointer could point at. */
function readName(packet: Uint8Array, offset: number): NameResult {
  const labels: string[] = [];
  let at = offset;
  for (;;) {
    const length = packet[at];
    if (length === undefined) return { ok: false, reason: "Truncated" };
    if ((length & 0xc0) === 0xc0) return { ok: false, reason: "CompressedName" };
    if (length > 63) return { ok: false, reason: "BadLabel" }; // 0x40/0x80: extended, reserved
    if (at + 1 + length - offset > MAX_NAME_WIRE) return { ok: false, reason: "NameTooLong" };
    if (length === 0) return { ok: true, name: labels.join("."), end: at + 1 };
    if (at + 1 + length > packet.length) return { ok: false, reason: "Truncated" };
    labels.push(labelText(packet.subarray(at + 1, at + 1 + length)));
    at += 1 + length;
  }
}

/** One label as unambiguous lower-case text: a label holding "." must not read as two labels. */
function labelText(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) {
    if (byte === 0x2e || byte === 0x5c) text += `\\${String.fromCharCode(byte)}`;
    else if (byte >= 0x41 && byte <= 0x5a) text += String.fromCharCode(byte + 0x20);
    else if (byte > 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += `\\${String(byte).padStart(3, "0")}`;
  }
  return text;
}

function u16(packet: Uint8Array, at: number): number {
  return ((packet[at] ?? 0) << 8) | (packet[at + 1] ?? 0);
}

type OptResult = { ok: true; edns: Edns; end: number } | { ok: false; reason: RejectReason };

/** Reads the one additional record a query may carry; only OPT with the root owner is accepted. */
function readOpt(packet: Uint8Array, at: number): OptResult {
  if (at + OPT_LENGTH > packet.length) return { ok: false, reason: "Truncated" };
  if (packet[at] !== 0 || u16(packet, at + 1) !== TYPE.OPT) return { ok: false, reason: "BadOpt" };
  const udpSize = u16(packet, at + 3);
  const version = packet[at + 6] ?? 0;
  const dnssecOk = ((packet[at + 7] ?? 0) & 0x80) !== 0;
  const rdLength = u16(packet, at + 9);
  const end = at + OPT_LENGTH + rdLength;
  if (end > packet.length) return { ok: false, reason: "Truncated" };
  // Options are ignored (cookies, padding, client subnet) but must be well-formed TLVs.
  let option = at + OPT_LENGTH;
  while (option < end) {
    if (option + 4 > end) return { ok: false, reason: "BadOpt" };
    option += 4 + u16(packet, option + 2);
    if (option > end) return { ok: false, reason: "BadOpt" };
  }
  return { ok: true, edns: { udpSize, version, dnssecOk }, end };
}

/**
 * Parses a query. Checks, in order: 1. shorter than a header → drop; 2. QR set → drop;
 * 3. opcode not QUERY → NOTIMP; 4. QDCOUNT ≠ 1 → FORMERR; 5. answer or authority records, or more
 * than one additional → FORMERR; 6. the question: a compression pointer, a label type other than
 * plain, more than 255 bytes or running off the end → FORMERR; 7. the additional must be a
 * well-formed OPT → FORMERR; 8. bytes after it → FORMERR; 9. EDNS version ≠ 0 → BADVERS;
 * 10. class ≠ IN → REFUSED. Never throws.
 */
export function parseQuery(packet: Uint8Array): ParsedQuery {
  if (packet.length < HEADER_LENGTH) return { kind: "drop", reason: "ShortHeader" };
  const flags = u16(packet, 2);
  if ((flags & 0x8000) !== 0) return { kind: "drop", reason: "NotAQuery" };
  const header: Header = {
    id: u16(packet, 0),
    opcode: (flags >> 11) & 0xf,
    recursionDesired: (flags & 0x0100) !== 0,
    checkingDisabled: (flags & 0x0010) !== 0,
  };
  const reject = (rcode: Rcode, reason: RejectReason, question?: Question, edns?: Edns): ParsedQuery => ({
    kind: "reject",
    header,
    rcode,
    reason,
    question,
    edns,
  });
  if (header.opcode !== 0) return reject("NOTIMP", "UnsupportedOpcode");
  if (u16(packet, 4) !== 1) return reject("FORMERR", "QuestionCount");
  const additional = u16(packet, 10);
  if (u16(packet, 6) !== 0 || u16(packet, 8) !== 0 || additional > 1) {
    return reject("FORMERR", "UnexpectedRecords");
  }
  const name = readName(packet, HEADER_LENGTH);
  if (!name.ok) return reject("FORMERR", name.reason);
  if (name.end + 4 > packet.length) return reject("FORMERR", "Truncated");
  const question: Question = {
    name: name.name,
    type: u16(packet, name.end),
    qclass: u16(packet, name.end + 2),
    wire: packet.slice(HEADER_LENGTH, name.end + 4),
  };
  let end = name.end + 4;
  let edns: Edns | undefined;
  if (additional === 1) {
    const opt = readOpt(packet, end);
    if (!opt.ok) return reject("FORMERR", opt.reason, question);
    edns = opt.edns;
    end = opt.end;
  }
  if (end !== packet.length) return reject("FORMERR", "TrailingBytes", question, edns);
  if (edns !== undefined && edns.version !== 0) return reject("BADVERS", "BadEdnsVersion", question, edns);
  if (question.qclass !== CLASS_IN) return reject("REFUSED", "UnsupportedClass", question, edns);
  return { kind: "query", header, question, edns };
}

/** The largest UDP response a query allows: 512, or its EDNS0 size clamped to 512…1232. */
export function udpResponseLimit(edns: Edns | undefined): number {
  if (edns === undefined) return UDP_PLAIN_LIMIT;
  return Math.min(Math.max(edns.udpSize, UDP_PLAIN_LIMIT), UDP_EDNS_LIMIT);
}

/**
 * Encodes a response of at most `maxSize` bytes: ID, opcode, RD and CD echoed, RA set, AA never;
 * the question echoed as received; an OPT record iff the query had one. Answers that do not fit
 * are left out and TC is set. Answers without a question are not encodable and are ignored.
 */
export function buildResponse(spec: ResponseSpec, maxSize: number): Uint8Array {
  const question = spec.question?.wire ?? new Uint8Array(0);
  const answers = spec.question === undefined ? [] : (spec.answers ?? []);
  const fixed = HEADER_LENGTH + question.length + (spec.edns === undefined ? 0 : OPT_LENGTH);
  let size = fixed;
  let fitting = 0;
  for (const answer of answers) {
    const next = size + 12 + answer.data.length;
    if (next > maxSize) break;
    size = next;
    fitting += 1;
  }
  const truncated = fitting < answers.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  const rcode = RCODE_VALUE[spec.rcode];
  let flags = 0x8000 | (spec.header.opcode << 11) | 0x0080 | (rcode & 0xf);
  if (truncated) flags |= 0x0200;
  if (spec.header.recursionDesired) flags |= 0x0100;
  if (spec.header.checkingDisabled) flags |= 0x0010;
  view.setUint16(0, spec.header.id);
  view.setUint16(2, flags);
  view.setUint16(4, spec.question === undefined ? 0 : 1);
  view.setUint16(6, fitting);
  view.setUint16(8, 0);
  view.setUint16(10, spec.edns === undefined ? 0 : 1);
  out.set(question, HEADER_LENGTH);
  let at = HEADER_LENGTH + question.length;
  for (const answer of answers.slice(0, fitting)) {
    view.setUint16(at, 0xc000 | HEADER_LENGTH); // the owner is the question's name
    view.setUint16(at + 2, answer.type);
    view.setUint16(at + 4, CLASS_IN);
    view.setUint32(at + 6, Math.min(Math.max(Math.floor(answer.ttl), 0), 0x7fffffff));
    view.setUint16(at + 10, answer.data.length);
    out.set(answer.data, at + 12);
    at += 12 + answer.data.length;
  }
  if (spec.edns !== undefined) {
    // Owner root (already 0), type OPT, our payload size, extended rcode, version 0, DO echoed.
    view.setUint16(at + 1, TYPE.OPT);
    view.setUint16(at + 3, UDP_EDNS_LIMIT);
    view.setUint8(at + 5, rcode >> 4);
    view.setUint8(at + 7, spec.edns.dnssecOk ? 0x80 : 0);
  }
  return out;
}

function ipv4Bytes(text: string): Uint8Array | undefined {
  // Decimal without leading zeros only: "010" would be octal to inet_aton.
  if (!/^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(text)) return undefined;
  const octets = text.split(".").map(Number);
  return octets.every((octet) => octet <= 255) ? Uint8Array.from(octets) : undefined;
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address as Node's `dns` spells it; undefined otherwise. */
export function addressBytes(ip: string): Uint8Array | undefined {
  if (!ip.includes(":")) return ipv4Bytes(ip);
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(ip)) return undefined;
  const halves = ip.split("::");
  if (halves.length > 2 || (halves.length === 2 && halves[0]?.includes("."))) return undefined;
  const groups = (half: string | undefined): number[] | undefined => {
    if (half === undefined || half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (/^[0-9A-Fa-f]{1,4}$/.test(part)) out.push(Number.parseInt(part, 16));
      else if (i !== parts.length - 1 || !part.includes(".")) return undefined;
      else {
        const v4 = ipv4Bytes(part);
        if (v4 === undefined) return undefined;
        out.push(u16(v4, 0), u16(v4, 2));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  for (const [i, group] of [...head, ...Array<number>(missing).fill(0), ...tail].entries()) {
    view.setUint16(i * 2, group);
  }
  return out;
}

/** What {@link buildQuery} encodes. `name` is dotted text without escapes; labels above 63 bytes throw. */
export interface QuerySpec {
  id: number;
  name: string;
  type: number;
  qclass?: number;
  opcode?: number;
  recursionDesired?: boolean;
  edns?: { udpSize: number; version?: number; dnssecOk?: boolean };
}

/** Encodes a query as a stub resolver would (the fake upstream and tests use it). */
export function buildQuery(spec: QuerySpec): Uint8Array {
  const labels = spec.name === "" || spec.name === "." ? [] : spec.name.replace(/\.$/, "").split(".");
  const name: number[] = [];
  for (const label of labels) {
    const bytes = Array.from(label, (ch) => ch.charCodeAt(0) & 0xff);
    if (bytes.length > 63) throw new RangeError(`label of ${bytes.length} bytes cannot be encoded`);
    name.push(bytes.length, ...bytes);
  }
  name.push(0);
  const out = new Uint8Array(HEADER_LENGTH + name.length + 4 + (spec.edns ? OPT_LENGTH : 0));
  const view = new DataView(out.buffer);
  view.setUint16(0, spec.id);
  view.setUint16(2, ((spec.opcode ?? 0) << 11) | (spec.recursionDesired === false ? 0 : 0x0100));
  view.setUint16(4, 1);
  view.setUint16(10, spec.edns ? 1 : 0);
  out.set(name, HEADER_LENGTH);
  view.setUint16(HEADER_LENGTH + name.length, spec.type);
  view.setUint16(HEADER_LENGTH + name.length + 2, spec.qclass ?? CLASS_IN);
  if (spec.edns) {
    const at = HEADER_LENGTH + name.length + 4;
    view.setUint16(at + 1, TYPE.OPT);
    view.setUint16(at + 3, spec.edns.udpSize);
    view.setUint8(at + 6, spec.edns.version ?? 0);
    view.setUint8(at + 7, spec.edns.dnssecOk === true ? 0x80 : 0);
  }
  return out;
}
