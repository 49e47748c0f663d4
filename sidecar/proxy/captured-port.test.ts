import { expect } from "chai";
import { capturedPort, isLocalAddress } from "./boundary.ts";

describe("capturedPort: the original port from the capture rules' address encoding", function () {
  const table = [
    { name: "443 is 127.0.1.187", local: "127.0.1.187", want: 443 },
    { name: "80 is 127.0.0.80", local: "127.0.0.80", want: 80 },
    { name: "IPv4-mapped form of a dual-stack listener", local: "::ffff:127.0.32.251", want: 8443 },
    { name: "highest port", local: "127.0.255.255", want: 65535 },
    { name: "127.0.0.1 is where REDIRECT lands: unknown", local: "127.0.0.1", want: undefined },
    { name: "::1 (IPv6 has one loopback address): unknown", local: "::1", want: undefined },
    { name: "outside 127.0.0.0/16: unknown", local: "127.1.1.187", want: undefined },
    { name: "a pod address: unknown", local: "10.0.0.5", want: undefined },
    { name: "octet out of range: unknown", local: "127.0.300.1", want: undefined },
    { name: "no address: unknown", local: undefined, want: undefined },
  ];
  for (const row of table) {
    it(row.name, function () {
      expect(capturedPort(row.local)).to.equal(row.want);
    });
  }
});

describe("isLocalAddress: captured traffic comes from this pod", function () {
  it("loopback in both families and mapped form", function () {
    expect(isLocalAddress("127.0.0.1")).to.equal(true);
    expect(isLocalAddress("::ffff:127.0.0.1")).to.equal(true);
    expect(isLocalAddress("::1")).to.equal(true);
  });
  it("an address no interface here holds", function () {
    expect(isLocalAddress("203.0.113.9")).to.equal(false);
    expect(isLocalAddress(undefined)).to.equal(false);
  });
});
