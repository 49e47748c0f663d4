import { expect } from "chai";
import fc from "fast-check";
import { assertProperty, PROPERTY_TIMEOUT_MS } from "../../test/helpers/property.ts";
import { canonicalJson, canonicalSha256Hex, policyHash } from "./canonical-json.ts";
import { sha256Hex } from "./sha256.ts";
import type { CompiledPolicy } from "./types.ts";

describe("canonicalJson", () => {
  const cases: { name: string; value: unknown; want: string }[] = [
    {
      name: "keys sorted at every depth",
      value: { b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } },
      want: '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}',
    },
    { name: "undefined values omitted", value: { a: undefined, b: "x" }, want: '{"b":"x"}' },
    { name: "strings escaped as JSON", value: { 'k"': "line\nbreak" }, want: '{"k\\"":"line\\nbreak"}' },
    { name: "array order kept", value: [3, 1, 2], want: "[3,1,2]" },
    { name: "booleans and numbers", value: [true, false, 0, -1.5], want: "[true,false,0,-1.5]" },
    {
      name: "non-finite numbers become null",
      value: [Number.NaN, Number.POSITIVE_INFINITY],
      want: "[null,null]",
    },
    { name: "empty object and array", value: { a: {}, b: [] }, want: '{"a":{},"b":[]}' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(canonicalJson(c.value)).to.equal(c.want);
    });
  }

  it("does not depend on key insertion order", () => {
    expect(canonicalJson({ x: 1, y: { b: 2, a: 1 } })).to.equal(canonicalJson({ y: { a: 1, b: 2 }, x: 1 }));
  });
});

describe("policyHash", () => {
  const body: Omit<CompiledPolicy, "hash"> = {
    apiVersion: "airlock.dev/v1alpha1",
    kind: "CompiledPolicy",
    mode: "Enforce",
    policies: [],
    rules: [],
    credentials: {},
    conflicts: [],
  };

  it("is sha256: + hex of the canonical JSON without hash", () => {
    expect(policyHash(body)).to.equal(`sha256:${sha256Hex(canonicalJson(body))}`);
  });

  it("ignores an existing hash field", () => {
    expect(policyHash({ ...body, hash: "sha256:whatever" })).to.equal(policyHash(body));
  });
});

describe("canonicalSha256Hex (streamed)", () => {
  it("equals sha256 of canonicalJson, for ASCII, multi-byte and astral text at block edges", () => {
    const values: unknown[] = [
      {},
      [],
      { b: "é", a: ["日本", "😀", "x".repeat(55)] },
      { long: "y".repeat(1000), k: [1, 2, { z: "€".repeat(64) }] },
      ...[0, 1, 54, 55, 56, 63, 64, 65, 119, 120].map((n) => ({ s: "a".repeat(n) })),
    ];
    for (const value of values) expect(canonicalSha256Hex(value)).to.equal(sha256Hex(canonicalJson(value)));
  });
});

/** The definition, written the plainest way: keys in UTF-16 code unit order, JSON.stringify for the rest. */
function reference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`;
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${reference(record[key])}`).join(",")}}`;
}

describe("canonicalJson: properties", function () {
  this.timeout(PROPERTY_TIMEOUT_MS);

  it("is the plain definition, for any JSON (any Unicode, lone surrogates too); its hash streams the same bytes", function () {
    // Strings of any UTF-16 code units (lone surrogates included), and of real-world Unicode.
    const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));
    const json = fc.oneof(
      fc.jsonValue({ stringUnit: codeUnit, maxDepth: 4 }),
      fc.jsonValue({ stringUnit: "grapheme", maxDepth: 4 }),
    );
    assertProperty(
      fc.property(json, (value) => {
        const text = canonicalJson(value);
        expect(text).to.equal(reference(value));
        expect(canonicalSha256Hex(value)).to.equal(sha256Hex(text));
      }),
      { scale: 0.1 },
    );
  });
});
