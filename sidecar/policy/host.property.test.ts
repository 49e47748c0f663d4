// Properties of canonicalHost: every host an agent can send is canonicalised without throwing, and
// a canonical result is a fixed point, so a name or IP compared against policy is compared once.
import { expect } from "chai";
import fc from "fast-check";
import { assertProperty, PROPERTY_TIMEOUT_MS } from "../../test/helpers/property.ts";
import { canonicalHost, type CanonicalHost } from "./host.ts";

// Fragments hosts are made of, plus the characters that must never pass as part of a name.
const HOST_TOKENS = [
  "a", "Z", "0", "9", "-", ".", "..", "_", "xn--", "0x", "0X", "ff", "FF", "077", "4294967295",
  "256", ":", "::", "[", "]", "%", "%2e", "%41", "@", "/", "\\", "?", "#", " ", "\t", "\u0000",
  "\u00e9", "\u0130", "\u212a", "ffff:", "::ffff:", "1.2.3.4",
]; // prettier-ignore

function randomCase(text: string, flips: readonly boolean[]): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    out += flips[i % flips.length] === true ? text.charAt(i).toUpperCase() : text.charAt(i);
  }
  return out;
}

const dnsName = fc
  .tuple(fc.domain(), fc.array(fc.boolean(), { minLength: 1 }), fc.boolean())
  .map(([name, flips, dot]) => `${randomCase(name, flips)}${dot ? "." : ""}`);

const numericIPv4 = fc.oneof(
  fc.nat({ max: 2 ** 33 }).map(String),
  fc.nat({ max: 2 ** 33 }).map((n) => `0x${n.toString(16)}`),
  fc.nat({ max: 2 ** 33 }).map((n) => `0${n.toString(8)}`),
  fc.tuple(fc.nat({ max: 300 }), fc.nat({ max: 2 ** 24 })).map(([a, b]) => `${a}.${b}`),
);

const ipLiteral = fc.oneof(
  fc.ipV4(),
  fc.ipV4Extended(),
  numericIPv4,
  fc
    .tuple(fc.oneof(fc.ipV4(), fc.ipV4Extended(), numericIPv4), fc.boolean())
    .map(([ip, dot]) => ip + (dot ? "." : "")),
  fc.ipV6().map((ip) => `[${ip}]`),
  fc.ipV6(),
  fc.ipV4().map((ip) => `[::ffff:${ip}]`),
  fc
    .tuple(fc.ipV6(), fc.array(fc.boolean(), { minLength: 1 }))
    .map(([ip, flips]) => `[${randomCase(ip, flips)}]`),
);

/** Names around the limits: labels up to 64 characters, names past 253. */
const longName = fc
  .array(fc.string({ unit: fc.constantFrom("a", "Z", "0", "-"), minLength: 1, maxLength: 64, size: "max" }), {
    minLength: 1,
    maxLength: 6,
  })
  .map((labels) => labels.join("."));

const tokenSoup = fc.array(fc.constantFrom(...HOST_TOKENS), { maxLength: 12 }).map((parts) => parts.join(""));

/** Hosts as a URL, Host header, SNI or CONNECT target may spell them, valid or almost valid. */
const urlishHost = fc.oneof(dnsName, ipLiteral, longName, tokenSoup, fc.stringMatching(/^[\w.:[\]-]{0,40}$/));

// Sizes are explicit: fast-check's default "small" size would stop every string at 10 characters.
const arbitraryString = fc.oneof(
  fc.string(),
  fc.string({ maxLength: 300, size: "large" }),
  fc.string({ unit: "binary", maxLength: 300, size: "large" }),
);

/** What canonicalising a canonical result again must return: the same result. */
function recanonicalised(result: CanonicalHost): CanonicalHost[] {
  if (result.kind === "name") return [canonicalHost(result.name)];
  if (result.kind === "ip" && result.family === 6)
    return [canonicalHost(result.address), canonicalHost(`[${result.address}]`)];
  if (result.kind === "ip") return [canonicalHost(result.address)];
  return [];
}

function checkHost(raw: string): void {
  const result = canonicalHost(raw);
  if (result.kind === "invalid") expect(result.message).to.be.a("string").and.not.equal("");
  for (const again of recanonicalised(result)) expect(again, JSON.stringify(raw)).to.deep.equal(result);
}

describe("canonicalHost: properties", function () {
  this.timeout(PROPERTY_TIMEOUT_MS);

  it("never throws and is idempotent on arbitrary strings", function () {
    assertProperty(fc.property(arbitraryString, checkHost));
  });

  it("never throws and is idempotent on URL-ish hosts (IPv4/IPv6 spellings, case, trailing dots)", function () {
    assertProperty(fc.property(urlishHost, checkHost));
  });

  it("never throws on values that are not strings (hosts come from untyped JSON)", function () {
    assertProperty(
      fc.property(fc.anything(), (value) => {
        expect(canonicalHost(value as string).kind).to.be.oneOf(["name", "ip", "invalid"]);
      }),
    );
  });
});
