import { expect } from "chai";
import { capturedPort, encodedAddress } from "./port-address.ts";

describe("port-address: the original port in the capture rules' loopback address", () => {
  describe("encodedAddress", () => {
    const table = [
      { port: 80, want: "127.0.0.80" },
      { port: 443, want: "127.0.1.187" },
      { port: 256, want: "127.0.1.0" },
      { port: 8443, want: "127.0.32.251" },
      { port: 65535, want: "127.0.255.255" },
    ];
    for (const { port, want } of table)
      it(`${port} → ${want}`, () => {
        expect(encodedAddress(port)).to.equal(want);
      });
  });

  describe("capturedPort", () => {
    const table = [
      { name: "443 is 127.0.1.187", local: "127.0.1.187", want: 443 },
      { name: "80 is 127.0.0.80", local: "127.0.0.80", want: 80 },
      { name: "IPv4-mapped form of a dual-stack listener", local: "::ffff:127.0.32.251", want: 8443 },
      { name: "highest port", local: "127.0.255.255", want: 65535 },
      { name: "127.0.0.1 is where REDIRECT lands: unknown", local: "127.0.0.1", want: undefined },
      { name: "127.0.0.0 would be port 0: unknown", local: "127.0.0.0", want: undefined },
      { name: "::1 (IPv6 has one loopback address): unknown", local: "::1", want: undefined },
      { name: "outside 127.0.0.0/16: unknown", local: "127.1.1.187", want: undefined },
      { name: "a pod address: unknown", local: "10.0.0.5", want: undefined },
      { name: "octet out of range: unknown", local: "127.0.300.1", want: undefined },
      { name: "past 65535: unknown", local: "127.0.256.0", want: undefined },
      { name: "a port, not an address: unknown", local: "443", want: undefined },
      { name: "trailing text: unknown", local: "127.0.1.187:443", want: undefined },
      { name: "another IPv6 prefix: unknown", local: "::fffe:127.0.1.187", want: undefined },
      { name: "empty: unknown", local: "", want: undefined },
      { name: "no address: unknown", local: undefined, want: undefined },
    ];
    for (const row of table)
      it(row.name, () => {
        expect(capturedPort(row.local)).to.equal(row.want);
      });
  });

  it("every port 2..65535 round-trips, plain and IPv4-mapped, each to its own address", () => {
    const seen = new Set<string>();
    for (let port = 2; port <= 65535; port++) {
      const address = encodedAddress(port);
      if (capturedPort(address) !== port) expect.fail(`${port} → ${address} → ${capturedPort(address)}`);
      if (capturedPort(`::ffff:${address}`) !== port) expect.fail(`${port} → ::ffff:${address}`);
      seen.add(address);
    }
    expect(seen.size).to.equal(65534);
  });

  it("port 1 encodes as 127.0.0.1, which reads back as unknown (so capture options refuse it)", () => {
    expect(encodedAddress(1)).to.equal("127.0.0.1");
    expect(capturedPort(encodedAddress(1))).to.equal(undefined);
  });
});
