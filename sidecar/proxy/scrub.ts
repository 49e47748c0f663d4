// Removes every occurrence of an injected credential (in each encoding of what the sidecar sent,
// see scrub-forms.ts) from what flows back to the agent: status line, header names and values,
// and the streamed body. Matching ignores ASCII case: hex and hex-like values come back in either.
/** The replacement written where a credential stood. */
export const REDACTED = "[airlock:redacted]";
const REDACTED_BYTES = Buffer.from(REDACTED);
const EMPTY = Buffer.alloc(0);

/**
 * Byte patterns to remove, ASCII lower-cased (matching ignores case), de-duplicated, longest
 * first so a longer encoding wins over a substring of it.
 */
export function scrubPatterns(forms: (string | Buffer)[]): Buffer[] {
  const unique = new Map<string, Buffer>();
  for (const form of forms) {
    const bytes = asciiLower(typeof form === "string" ? Buffer.from(form) : form);
    if (bytes.length > 0) unique.set(bytes.toString("hex"), bytes);
  }
  return [...unique.values()].sort((a, b) => b.length - a.length);
}

/** A copy of `buf` with A–Z turned into a–z and every other byte kept (same length). */
export function asciiLower(buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  for (let i = 0; i < out.length; i++) {
    const byte = out[i] as number;
    if (byte >= 0x41 && byte <= 0x5a) out[i] = byte + 0x20;
  }
  return out;
}

/** ASCII case folding as a table: A–Z to a–z, every other byte to itself. */
const FOLD = new Uint8Array(256).map((_, byte) => (byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte));

/**
 * The patterns of one set arranged for a single pass over the input: at each position only the
 * patterns whose first two (folded) bytes are there are compared, longest first. Built once per
 * pattern set (the gate keeps one set per credential value) and cached by identity, so a set must
 * not change once used.
 */
interface Matcher {
  /** For a folded first byte, the patterns starting with it, longest first (in set order). */
  byFirst: (Buffer[] | undefined)[];
  /** Bit (b0 << 8 | b1) set when some pattern of two bytes or more starts with folded b0 b1. */
  pairs: Uint8Array;
  /** Folded first bytes of one-byte patterns. */
  single: Uint8Array;
  longest: number;
}

const matchers = new WeakMap<Buffer[], Matcher>();

function matcherFor(patterns: Buffer[]): Matcher {
  const cached = matchers.get(patterns);
  if (cached) return cached;
  const byFirst: (Buffer[] | undefined)[] = new Array<Buffer[] | undefined>(256).fill(undefined);
  const pairs = new Uint8Array(65536);
  const single = new Uint8Array(256);
  let longest = 0;
  // Patterns are folded (scrubPatterns); a byte A–Z in one never matches, as before.
  for (const pattern of patterns) {
    if (pattern.length === 0) continue;
    const first = pattern[0] as number;
    (byFirst[first] ??= []).push(pattern);
    if (pattern.length === 1) single[first] = 1;
    else pairs[(first << 8) | (pattern[1] as number)] = 1;
    longest = Math.max(longest, pattern.length);
  }
  const matcher = { byFirst, pairs, single, longest };
  matchers.set(patterns, matcher);
  return matcher;
}

/**
 * The first occurrence of any pattern starting in [from, limit) of `buf`: its start and pattern
 * (the longest of those starting there, as the list is ordered), or undefined. The input's ASCII
 * case is folded here (the patterns are folded already). Most positions are passed over after
 * one lookup of their first two bytes.
 */
function firstMatch(
  m: Matcher,
  buf: Uint8Array,
  from: number,
  limit: number,
): { start: number; pattern: Buffer } | undefined {
  const length = buf.length;
  const end = Math.min(limit, length);
  const { byFirst, pairs, single } = m;
  for (let i = from; i < end; i++) {
    const b0 = FOLD[buf[i] as number] as number;
    if (single[b0] === 0) {
      if (i + 1 >= length) continue;
      if (pairs[(b0 << 8) | (FOLD[buf[i + 1] as number] as number)] === 0) continue;
    }
    const candidates = byFirst[b0];
    if (candidates === undefined) continue;
    for (const pattern of candidates) {
      const n = pattern.length;
      if (i + n > length) continue;
      let j = 1;
      while (j < n && FOLD[buf[i + j] as number] === pattern[j]) j++;
      if (j === n) return { start: i, pattern };
    }
  }
  return undefined;
}

/** Replaces every occurrence of any pattern in `text`; returns the new text and how many were replaced. */
export function scrubText(text: string, patterns: Buffer[]): { text: string; count: number } {
  const { output, count } = scrubBuffer(Buffer.from(text, "latin1"), patterns, Infinity);
  // Most header names and values hold no pattern: the text itself goes back, not a copy.
  return count === 0 ? { text, count } : { text: output.toString("latin1"), count };
}

/** Replaces every occurrence of any pattern in `buf` (a whole payload); the output and the count. */
export function scrubBytes(buf: Buffer, patterns: Buffer[]): { output: Buffer; count: number } {
  const { output, count } = scrubBuffer(buf, patterns, Infinity);
  return { output, count };
}

/**
 * Scans `buf` for patterns, replacing those that start before `limit`. Returns the output for
 * [0, consumed) and how far it got; bytes from `consumed` on still need more input to decide.
 * One pass: at each position the earliest match wins, and of those starting there the longest.
 */
function scrubBuffer(
  buf: Buffer,
  patterns: Buffer[],
  limit: number,
): { output: Buffer; consumed: number; count: number } {
  const m = matcherFor(patterns);
  let parts: Buffer[] | undefined;
  let position = 0;
  let count = 0;
  for (;;) {
    const found = firstMatch(m, buf, position, limit);
    if (found === undefined) break;
    (parts ??= []).push(buf.subarray(position, found.start), REDACTED_BYTES);
    position = found.start + found.pattern.length;
    count++;
  }
  const consumed = Math.max(position, Math.min(limit, buf.length));
  if (parts === undefined) return { output: buf.subarray(0, consumed), consumed, count };
  parts.push(buf.subarray(position, consumed));
  return { output: Buffer.concat(parts), consumed, count };
}

/**
 * Where the bytes that might still become an occurrence begin: the first position from which the
 * rest of `buf` is a proper prefix of some pattern (its folded bytes), or `buf.length` when there
 * is none. Only the last (longest pattern − 1) positions can be such a start.
 */
function partialMatchStart(m: Matcher, buf: Uint8Array): number {
  const length = buf.length;
  for (let i = Math.max(0, length - (m.longest - 1)); i < length; i++) {
    const candidates = m.byFirst[FOLD[buf[i] as number] as number];
    if (candidates === undefined) continue;
    const rest = length - i;
    for (const pattern of candidates) {
      if (pattern.length <= rest) continue;
      let j = 1;
      while (j < rest && FOLD[buf[i + j] as number] === pattern[j]) j++;
      if (j === rest) return i;
    }
  }
  return length;
}

/**
 * A streaming scrubber: feed it a body's chunks in order (`push`), then `end`. Of each chunk it
 * holds back only a tail that could be the start of an occurrence still arriving (the longest such
 * suffix, at most the longest pattern − 1 bytes), so an occurrence split across chunks is found,
 * and everything else — a server-sent event, a line of a streamed reply — goes to the agent at
 * once. A plain object, not a stream: the relay calls it from its own data handler (a Transform
 * per response, piped and watched, cost more than the scrubbing). `onScrub` is told how many it
 * replaced.
 */
export class Scrubber {
  #patterns: Buffer[];
  #matcher: Matcher;
  #carry: Buffer = EMPTY;
  #onScrub: (count: number) => void;

  constructor(patterns: Buffer[], onScrub: (count: number) => void) {
    this.#patterns = patterns;
    this.#matcher = matcherFor(patterns);
    this.#onScrub = onScrub;
  }

  /** The scrubbed bytes of `chunk` that can be sent now (possibly none). */
  push(chunk: Buffer): Buffer {
    const buf = this.#carry.length > 0 ? Buffer.concat([this.#carry, chunk]) : chunk;
    // An occurrence starting before the held tail lies wholly inside `buf` (else its start would
    // begin a partial match, earlier than the tail), so scrubbing up to the tail is final.
    const hold = partialMatchStart(this.#matcher, buf);
    const { output, consumed, count } = scrubBuffer(buf, this.#patterns, hold);
    // A copy: the carry outlives this chunk, which its reader may reuse.
    this.#carry = consumed < buf.length ? Buffer.from(buf.subarray(consumed)) : EMPTY;
    if (count > 0) this.#onScrub(count);
    return output;
  }

  /** What was held back, scrubbed: the body has ended. */
  end(): Buffer {
    const { output, count } = scrubBuffer(this.#carry, this.#patterns, Infinity);
    this.#carry = EMPTY;
    if (count > 0) this.#onScrub(count);
    return output;
  }
}
