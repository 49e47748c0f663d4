// Properties of normalizePath: any request-target is normalised without throwing, and a normalised
// target is a fixed point, so every spelling of a resource meets the path rules as one string.
import { expect } from "chai";
import fc from "fast-check";
import { assertProperty, PROPERTY_TIMEOUT_MS } from "../../test/helpers/property.ts";
import { compilePathPattern, normalizePath, pathMatches } from "./path.ts";

// Segment material: dot segments plain and escaped, escapes of unreserved and reserved bytes in
// both cases, broken escapes, and the characters a target must not carry.
const SEGMENT_TOKENS = [
  "a", "B", "0", "~", "-", "_", ".", "..", "%2e", "%2E", "%2e%2E", "%2E.", ".%2e", "%41", "%61",
  "%7e", "%7E", "%2f", "%2F", "%25", "%3f", "%23", "%5c", "%20", "%ff", "%00", "%", "%4", "%zz",
  "%%", ";", "=", "&", "+", ":", "@", "!", "$", "'", "*", "\\", "#", " ", "\t", "\u0000", "\u007f",
  "\u00e9",
]; // prettier-ignore

// Most targets should be accepted, or idempotence would only ever be checked on the few that are.
const REFUSED = new Set(["%00", "%", "%4", "%zz", "%%", "\\", "#", " ", "\t", "\u0000", "\u007f", "\u00e9"]);
const ACCEPTED_TOKENS = SEGMENT_TOKENS.filter((token) => !REFUSED.has(token));

const segment = fc
  .oneof(
    { arbitrary: fc.array(fc.constantFrom(...ACCEPTED_TOKENS), { maxLength: 4 }), weight: 4 },
    { arbitrary: fc.array(fc.constantFrom(...SEGMENT_TOKENS), { maxLength: 4 }), weight: 1 },
  )
  .map((parts) => parts.join(""));

const query = fc.oneof(
  fc.constant(""),
  fc
    .array(fc.constantFrom("?", "a=b", "&", "%2e", "..", "/", "?", "%zz", "#"), { maxLength: 5 })
    .map((parts) => `?${parts.join("")}`),
);

/** Request-targets as agents send them: dot segments, escapes, empty segments, queries. */
const urlishTarget = fc
  .tuple(fc.array(segment, { maxLength: 10 }), fc.boolean(), query)
  .map(([segments, slash, q]) => `/${segments.join("/")}${slash ? "/" : ""}${q}`);

// Sizes are explicit: fast-check's default "small" size would stop every string at 10 characters.
const arbitraryString = fc.oneof(
  fc.string(),
  fc.string().map((s) => `/${s}`),
  fc.string({ maxLength: 1000, size: "large" }).map((s) => `/${s}`),
  fc.string({ unit: "binary", maxLength: 1000, size: "large" }).map((s) => `/${s}`),
  fc.string({ unit: "binary", maxLength: 300 }),
);

function checkTarget(target: string): void {
  const result = normalizePath(target);
  if (!result.ok) {
    expect(result.message).to.be.a("string").and.not.equal("");
    return;
  }
  expect(result.path.startsWith("/"), JSON.stringify(target)).to.equal(true);
  const again = normalizePath(result.query === "" ? result.path : `${result.path}?${result.query}`);
  expect(again, JSON.stringify(target)).to.deep.equal(result);
}

describe("normalizePath: properties", function () {
  this.timeout(PROPERTY_TIMEOUT_MS);

  it("never throws and is idempotent on arbitrary strings", function () {
    assertProperty(fc.property(arbitraryString, checkTarget));
  });

  it("never throws and is idempotent on URL-ish targets (escapes, dot segments, case)", function () {
    assertProperty(fc.property(urlishTarget, checkTarget));
  });

  it("never throws on values that are not strings (targets come from untyped input)", function () {
    assertProperty(
      fc.property(fc.anything(), (value) => {
        expect(normalizePath(value as string).ok).to.be.a("boolean");
      }),
    );
  });
});

/** The meaning of a pattern as a regular expression: `**` any characters, `*` any but '/'. */
function reference(pattern: string): RegExp {
  const body = pattern
    .split("**")
    .map((part) =>
      part
        .split("*")
        .map((literal) => literal.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join("[^/]*"),
    )
    .join(".*");
  return new RegExp(`^${body}$`, "s");
}

// Patterns and paths from a small alphabet, so that they often nearly match: every shape
// pathMatches takes a shortcut for (literal, prefix + "**", prefix + "*") and the general one.
const PATTERN_PARTS = ["/", "a", "b", "/a", "/b", "*", "**", "/*", "/**", "-"];
const pattern = fc
  .array(fc.constantFrom(...PATTERN_PARTS), { maxLength: 8 })
  .map((parts) => `/${parts.join("")}`);
const path = fc
  .array(fc.constantFrom("/", "a", "b", "-", "/a", "/b"), { maxLength: 12 })
  .map((parts) => `/${parts.join("")}`);

describe("pathMatches: properties", function () {
  this.timeout(PROPERTY_TIMEOUT_MS);

  it("agrees with the pattern's meaning as a regular expression, whatever shortcut it takes", function () {
    assertProperty(
      fc.property(pattern, path, (source, target) => {
        const compiled = compilePathPattern(source);
        if (!compiled.ok) return; // refused patterns (e.g. "***") never reach pathMatches
        expect(pathMatches(compiled.value, target), `${source} vs ${target}`).to.equal(
          reference(source).test(target),
        );
      }),
    );
  });
});
