import { expect } from "chai";
import { isLocalAddress } from "./local-address.ts";

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
