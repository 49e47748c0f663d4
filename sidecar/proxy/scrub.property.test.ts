// The one-pass scrubber against the obvious one (one indexOf per pattern over a lower-cased copy):
// the same text out and the same count, for whole texts and for a stream cut anywhere, on inputs
// built from pieces of the patterns themselves in either case, so that overlaps, near misses and
// prefixes of one pattern inside another are common.
import { expect } from "chai";
import fc from "fast-check";
import { assertProperty, PROPERTY_TIMEOUT_MS } from "../../test/helpers/property.ts";
import { encodedForms } from "./scrub-forms.ts";
import { asciiLower, REDACTED, Scrubber, scrubPatterns, scrubText } from "./scrub.ts";

/** The scrubber as it was first written: earliest match wins, the first listed (longest) at a tie. */
function reference(input: Buffer, patterns: Buffer[]): { output: Buffer; count: number } {
  const folded = asciiLower(input);
  const parts: Buffer[] = [];
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
    if (bestPattern === undefined) break;
    parts.push(input.subarray(position, best), Buffer.from(REDACTED));
    position = best + bestPattern.length;
    count++;
  }
  parts.push(input.subarray(position));
  return { output: Buffer.concat(parts), count };
}

function streamed(chunks: Buffer[], patterns: Buffer[]): { output: Buffer; count: number } {
  let count = 0;
  const scrubber = new Scrubber(patterns, (n) => (count += n));
  const out: Buffer[] = [];
  for (const chunk of chunks) out.push(Buffer.from(scrubber.push(chunk)));
  out.push(scrubber.end());
  return { output: Buffer.concat(out), count };
}

const VALUES = ["tok123", "s3cr3t-Value/with+chars", "ab", "AbCdEf0123456789", "ké-ü"];

/** `text` with the characters at the positions `flips` marks (cyclically) upper-cased. */
function caseOf(text: string, flips: boolean[]): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    out += flips[i % flips.length] === true ? c.toUpperCase() : c;
  }
  return out;
}

describe("scrub, one pass = one indexOf per pattern (property)", function () {
  this.timeout(PROPERTY_TIMEOUT_MS);

  const input = (forms: Buffer[]) =>
    fc
      .array(
        fc.oneof(
          fc
            .constantFrom(...forms.map((f) => f.toString("latin1")))
            .chain((f) =>
              fc
                .tuple(fc.nat(f.length), fc.nat(f.length))
                .map(([a, b]) => f.slice(Math.min(a, b), Math.max(a, b) + 1)),
            ),
          fc.constantFrom(...forms.map((f) => f.toString("latin1"))),
          fc.string({ maxLength: 4 }),
          // A character above U+00FF is read as its low byte (what latin1 encoding writes).
          fc.constantFrom("Bearer ", " ", "=", "%", "\\u00", "\u00ff", "Z", "\u0161", "\u0162"),
        ),
        { maxLength: 12 },
      )
      .chain((pieces) =>
        fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }).map((flips) => caseOf(pieces.join(""), flips)),
      );

  // The encoded forms of real values, and sets made to overlap: one pattern a prefix, suffix or
  // middle of another, one-byte patterns, a byte above 0x7f.
  const SETS: [string, Buffer[]][] = [
    ...VALUES.map((value): [string, Buffer[]] => [
      JSON.stringify(value),
      scrubPatterns(encodedForms([value, `Bearer ${value}`])),
    ]),
    ["overlapping", scrubPatterns(["abc", "abcdef", "bcd", "cdefg", "Ab", "f", "xyzab", "\u00e9z"])],
    ["one-byte", scrubPatterns(["q", "qq", "q%", "%q%"])],
  ];
  for (const [name, patterns] of SETS) {
    it(`text and stream agree with the reference for ${name}`, function () {
      assertProperty(
        fc.property(input(patterns), fc.array(fc.nat(), { maxLength: 4 }), (text, cuts) => {
          const bytes = Buffer.from(text, "latin1");
          const want = reference(bytes, patterns);
          const got = scrubText(text, patterns);
          expect(got.count).to.equal(want.count);
          expect(Buffer.from(got.text, "latin1").equals(want.output)).to.equal(true);
          const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const chunks = [0, ...at].map((from, i) => bytes.subarray(from, at[i] ?? bytes.length));
          const stream = streamed(chunks, patterns);
          expect(stream.count).to.equal(want.count);
          expect(stream.output.equals(want.output)).to.equal(true);
        }),
      );
    });
  }
});
