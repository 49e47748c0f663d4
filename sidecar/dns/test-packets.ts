// Test support: hand-built DNS packets, byte by byte, for what no well-behaved client would send.
import { TYPE, type ParsedQuery } from "./codec.ts";

/** Part of a packet: plain numbers or bytes. */
export type Bytes = number[] | Uint8Array;

/** Concatenates parts into one packet. */
export const packet = (...parts: Bytes[]): Uint8Array => Uint8Array.from(parts.flatMap((part) => [...part]));

/** A big-endian 16-bit field. */
export const u16 = (value: number): number[] => [(value >> 8) & 0xff, value & 0xff];

/** A 12-byte header; defaults: ID 0x1234, RD set, one question, no records. */
export const header = (o: {
  id?: number;
  flags?: number;
  qd?: number;
  an?: number;
  ns?: number;
  ar?: number;
}) => [
  ...u16(o.id ?? 0x1234),
  ...u16(o.flags ?? 0x0100),
  ...u16(o.qd ?? 1),
  ...u16(o.an ?? 0),
  ...u16(o.ns ?? 0),
  ...u16(o.ar ?? 0),
];

/** One length-prefixed label (the text's char codes, unchecked). */
export const label = (text: string): number[] => [text.length, ...Array.from(text, (ch) => ch.charCodeAt(0))];

/** An uncompressed name ending in the root byte. */
export const wireName = (...labels: string[]): number[] => [...labels.flatMap(label), 0];

/** QTYPE and QCLASS (IN by default). */
export const typeClass = (type: number, qclass = 1): number[] => [...u16(type), ...u16(qclass)];

/** An OPT record with the root owner. */
export const opt = (
  udpSize: number,
  o: { version?: number; dnssecOk?: boolean; options?: number[] } = {},
) => [
  0,
  ...u16(TYPE.OPT),
  ...u16(udpSize),
  0,
  o.version ?? 0,
  o.dnssecOk === true ? 0x80 : 0,
  0,
  ...u16(o.options?.length ?? 0),
  ...(o.options ?? []),
];

/** The question `api.example.com IN A`. */
export const exampleQuestion = [...wireName("api", "example", "com"), ...typeClass(TYPE.A)];

/** A parse result without the echoed wire bytes, for whole-value comparison. */
export function summary(parsed: ParsedQuery): object {
  if (parsed.kind === "drop") return parsed;
  const question =
    parsed.question === undefined
      ? undefined
      : { name: parsed.question.name, type: parsed.question.type, qclass: parsed.question.qclass };
  if (parsed.kind === "query") return { kind: "query", question, edns: parsed.edns };
  return { kind: "reject", rcode: parsed.rcode, reason: parsed.reason, question, edns: parsed.edns };
}
