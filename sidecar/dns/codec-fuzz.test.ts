import { expect } from "chai";
import { TYPE, buildQuery, buildResponse, parseQuery } from "./codec.ts";
import { readHeader } from "./test-clients.ts";
import { header, packet } from "./test-packets.ts";

describe("dns codec: fuzz (never throws)", () => {
  // A seeded generator keeps failures reproducible.
  let seed = 0x2545f491;
  const random = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const check = (bytes: Uint8Array): void => {
    const parsed = parseQuery(bytes);
    if (parsed.kind === "drop") return;
    const response = buildResponse({ ...parsed, rcode: "REFUSED" }, 512);
    expect(readHeader(response).id).to.equal(parsed.header.id);
    expect(response.length).to.be.at.most(512);
  };

  it("random packets of 0–600 bytes", () => {
    for (let i = 0; i < 20_000; i++) {
      check(Uint8Array.from({ length: Math.floor(random() * 600) }, () => Math.floor(random() * 256)));
    }
  });

  it("random packets behind a plausible query header", () => {
    for (let i = 0; i < 20_000; i++) {
      const body = Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256));
      check(packet(header({ ar: Math.floor(random() * 2) }), body));
    }
  });

  it("every truncation and single-byte mutation of a valid EDNS query", () => {
    const valid = buildQuery({ id: 1, name: "api.example.com", type: TYPE.AAAA, edns: { udpSize: 1232 } });
    for (let end = 0; end <= valid.length; end++) check(valid.subarray(0, end));
    for (let at = 0; at < valid.length; at++) {
      for (let value = 0; value < 256; value++) {
        const mutated = Uint8Array.from(valid);
        mutated[at] = value;
        check(mutated);
      }
    }
  });
});
