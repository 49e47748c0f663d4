import { expect } from "chai";
import { canonicalJson, policyHash } from "./canonical-json.ts";
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
