import { expect } from "chai";
import { base64Slices, encodedForms } from "./scrub-forms.ts";
import { REDACTED, scrubPatterns, scrubText } from "./scrub.ts";

// What a reflecting upstream could do to the string it received, and how the agent would undo it.
// A form is covered when, after scrubbing, undoing the encoding no longer yields the value.
const toHex = (s: string): string => Buffer.from(s).toString("hex");
const encodings: { name: string; encode: (s: string) => string; decode: (s: string) => string }[] = [
  { name: "raw", encode: (s) => s, decode: (s) => s },
  {
    name: "URL-encoded",
    encode: (s) => encodeURIComponent(s),
    decode: (s) => decodeURIComponent(s.replace(/%(?![0-9a-f]{2})/gi, "")),
  },
  {
    name: "every byte percent-encoded, upper case",
    encode: (s) => toHex(s).replace(/../g, (h) => `%${h.toUpperCase()}`),
    decode: (s) => Buffer.from(s.replace(/[^0-9a-f]/gi, ""), "hex").toString("latin1"),
  },
  {
    name: "base64",
    encode: (s) => Buffer.from(s).toString("base64"),
    decode: (s) => Buffer.from(s, "base64").toString("latin1"),
  },
  {
    name: "base64url",
    encode: (s) => Buffer.from(s).toString("base64url"),
    decode: (s) => Buffer.from(s, "base64url").toString("latin1"),
  },
  {
    name: "hex, lower case",
    encode: toHex,
    decode: (s) => Buffer.from(s.replace(/[^0-9a-f]/gi, ""), "hex").toString("latin1"),
  },
  {
    name: "hex, upper case",
    encode: (s) => toHex(s).toUpperCase(),
    decode: (s) => Buffer.from(s.replace(/[^0-9a-f]/gi, ""), "hex").toString("latin1"),
  },
  {
    name: "JSON \\u escapes of every character",
    encode: (s) => s.replace(/[^]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`),
    decode: (s) => s.replace(/\\u([0-9a-f]{4})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
  },
  {
    name: "JSON string with escaped slashes",
    encode: (s) => JSON.stringify(s).slice(1, -1).replace(/\//g, "\\/"),
    decode: (s) => s.replace(/\\\//g, "/"),
  },
];

describe("scrub forms: every encoding of what was sent", function () {
  const values = [
    "k3y-Value/with+chars=0123",
    "0123456789abcdef0123456789abcdef01234567", // hex-like: comes back upper-cased too
  ];
  for (const value of values) {
    const sent = [value, `Bearer ${value}`];
    const patterns = scrubPatterns(encodedForms(sent));
    for (const e of encodings) {
      // The value alone, and inside longer strings at every byte alignment (base64 groups of 3).
      for (const prefix of ["", "x", "xy", "Authorization: Bearer ", '{"h":"']) {
        it(`${e.name}, ${value.slice(0, 6)}…, after ${JSON.stringify(prefix)}`, function () {
          const reflected = `<<${e.encode(`${prefix}${value}\u0000tail`)}>>`;
          expect(e.decode(reflected), "the encoding is undone by the agent").to.include(value);
          const { text, count } = scrubText(reflected, patterns);
          expect(count, "scrubbed").to.be.greaterThan(0);
          expect(e.decode(text.split(REDACTED).join(""))).not.to.include(value);
        });
      }
    }
    it(`an upper-cased hex-like value is scrubbed: ${value.slice(0, 6)}…`, function () {
      const { text } = scrubText(`id=${value.toUpperCase()}`, patterns);
      expect(text.toLowerCase()).not.to.include(value.toLowerCase());
    });
  }

  it("base64Slices keeps only the characters the bytes alone decide", function () {
    // "abc" at alignment 0 is "YWJj"; after one byte only its last two characters are fixed.
    const slices = base64Slices(Buffer.from("abc"));
    expect(slices[0]).to.equal("YWJj");
    for (const prefix of ["\u0000", "Z", "\u00ff"]) {
      const encoded = Buffer.from(`${prefix}abc`, "latin1").toString("base64");
      expect(encoded).to.include(slices[2] ?? "?");
    }
  });

  it("short derived forms are dropped so unrelated text is not redacted", function () {
    const forms = encodedForms(["abcd"]).map((b) => b.toString());
    expect(forms).to.include("abcd");
    for (const form of forms) expect(form.length).to.be.at.least(4);
  });
});
