// Removes every occurrence of an injected credential (in each encoding of what the sidecar sent,
// see scrub-forms.ts) from what flows back to the agent: status line, header names and values,
// and the streamed body. Matching ignores ASCII case: hex and hex-like values come back in either.
import { Transform, type TransformCallback } from "node:stream";

/** The replacement written where a credential stood. */
export const REDACTED = "[airlock:redacted]";
const REDACTED_BYTES = Buffer.from(REDACTED);

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

/** Replaces every occurrence of any pattern in `text`; returns the new text and how many were replaced. */
export function scrubText(text: string, patterns: Buffer[]): { text: string; count: number } {
  const { output, count } = scrubBuffer(Buffer.from(text, "latin1"), patterns, Infinity);
  return count === 0 ? { text, count } : { text: output.toString("latin1"), count };
}

/**
 * Scans `buf` for patterns, replacing those that start before `limit`. Returns the output for
 * [0, consumed) and how far it got; bytes from `consumed` on still need more input to decide.
 */
function scrubBuffer(
  buf: Buffer,
  patterns: Buffer[],
  limit: number,
): { output: Buffer; consumed: number; count: number } {
  const parts: Buffer[] = [];
  const folded = asciiLower(buf);
  let position = 0;
  let count = 0;
  for (;;) {
    let best = -1;
    let bestPattern: Buffer | undefined;
    for (const pattern of patterns) {
      const at = folded.indexOf(pattern, position);
      if (at !== -1 && (best === -1 || at < best)) {
        best = at;
        bestPattern = pattern;
      }
    }
    if (bestPattern === undefined || best >= limit) break;
    parts.push(buf.subarray(position, best), REDACTED_BYTES);
    position = best + bestPattern.length;
    count++;
  }
  const consumed = Math.max(position, Math.min(limit, buf.length));
  parts.push(buf.subarray(position, consumed));
  return { output: Buffer.concat(parts), consumed, count };
}

/**
 * A streaming scrubber. It holds back the last (longest pattern − 1) bytes of each chunk so an
 * occurrence split across chunks is still found; `onScrub` is told how many it replaced.
 */
export class ScrubStream extends Transform {
  #patterns: Buffer[];
  #keep: number;
  #carry: Buffer = Buffer.alloc(0);
  #onScrub: (count: number) => void;

  constructor(patterns: Buffer[], onScrub: (count: number) => void) {
    super();
    this.#patterns = patterns;
    this.#keep = Math.max(0, ...patterns.map((p) => p.length - 1));
    this.#onScrub = onScrub;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const buf = this.#carry.length > 0 ? Buffer.concat([this.#carry, chunk]) : chunk;
    const { output, consumed, count } = scrubBuffer(buf, this.#patterns, buf.length - this.#keep);
    this.#carry = Buffer.from(buf.subarray(consumed));
    if (count > 0) this.#onScrub(count);
    callback(null, output.length > 0 ? output : undefined);
  }

  override _flush(callback: TransformCallback): void {
    const { output, count } = scrubBuffer(this.#carry, this.#patterns, Infinity);
    if (count > 0) this.#onScrub(count);
    callback(null, output.length > 0 ? output : undefined);
  }
}
