import { expect } from "chai";
import { sha256Hex } from "./sha256.ts";

describe("sha256", () => {
  const cases: { name: string; input: string | Uint8Array; want: string }[] = [
    {
      name: "empty string",
      input: "",
      want: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    },
    { name: "abc", input: "abc", want: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    {
      name: "two-block message (FIPS 180-4 example)",
      input: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      want: "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    },
    {
      name: "55 bytes (padding fits one block exactly)",
      input: "a".repeat(55),
      want: "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
    },
    {
      name: "56 bytes (padding spills into a second block)",
      input: "a".repeat(56),
      want: "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
    },
    {
      name: "one million 'a'",
      input: "a".repeat(1_000_000),
      want: "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
    },
    {
      name: "UTF-8 string is hashed as its bytes",
      input: "é",
      want: sha256Hex(new Uint8Array([0xc3, 0xa9])),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(sha256Hex(c.input)).to.equal(c.want);
    });
  }
});
