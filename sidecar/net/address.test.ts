import { expect } from "chai";
import { BlockList } from "node:net";
import {
  cidrContains,
  classifyAddress,
  createAddressPolicy,
  parseCidr,
  type AddressCategory,
  type AddressClass,
  type Cidr,
} from "./address.ts";

type Row = { name: string; ip: string; want: AddressClass };

const allowed: AddressClass = { allowed: true };
const forbidden = (category: AddressCategory, embedded?: string): AddressClass =>
  embedded === undefined ? { allowed: false, category } : { allowed: false, category, embedded };

const row = (name: string, ip: string, want: AddressClass): Row => ({ name, ip, want });

/** Rows for one range: its first and last address inside, and public addresses just outside it. */
function edges(
  range: string,
  category: AddressCategory,
  first: string,
  last: string,
  ...outside: string[]
): Row[] {
  return [
    row(`${range}: first address is ${category}`, first, forbidden(category)),
    row(`${range}: last address is ${category}`, last, forbidden(category)),
    ...outside.map((ip) => row(`${range}: neighbour ${ip} is public`, ip, allowed)),
  ];
}

const IPV4_RANGES: Row[] = [
  ...edges("0.0.0.0/8", "unspecified", "0.0.0.0", "0.255.255.255", "1.0.0.0"),
  ...edges("10.0.0.0/8", "private", "10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0"),
  ...edges("100.64.0.0/10", "cgnat", "100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0"),
  ...edges("127.0.0.0/8", "loopback", "127.0.0.0", "127.255.255.255", "126.255.255.255", "128.0.0.0"),
  ...edges(
    "169.254.0.0/16",
    "link-local",
    "169.254.0.0",
    "169.254.255.255",
    "169.253.255.255",
    "169.255.0.0",
  ),
  ...edges("172.16.0.0/12", "private", "172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0"),
  ...edges("192.0.0.0/24", "reserved", "192.0.0.0", "192.0.0.255", "191.255.255.255", "192.0.1.0"),
  ...edges("192.0.2.0/24", "documentation", "192.0.2.0", "192.0.2.255", "192.0.1.255", "192.0.3.0"),
  ...edges("192.88.99.0/24", "reserved", "192.88.99.0", "192.88.99.255", "192.88.98.255", "192.88.100.0"),
  ...edges("192.168.0.0/16", "private", "192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0"),
  ...edges("198.18.0.0/15", "benchmarking", "198.18.0.0", "198.19.255.255", "198.17.255.255", "198.20.0.0"),
  ...edges("198.51.100.0/24", "documentation", "198.51.100.0", "198.51.100.255", "198.51.99.255"),
  row("198.51.100.0/24: neighbour 198.51.101.0 is public", "198.51.101.0", allowed),
  ...edges("203.0.113.0/24", "documentation", "203.0.113.0", "203.0.113.255", "203.0.112.255", "203.0.114.0"),
  ...edges("224.0.0.0/4", "multicast", "224.0.0.0", "239.255.255.255", "223.255.255.255"),
  ...edges("240.0.0.0/4", "reserved", "240.0.0.0", "255.255.255.255"),
  row("a public IPv4 address is allowed", "8.8.8.8", allowed),
];

const F = "ffff:ffff:ffff:ffff:ffff";
const IPV6_RANGES: Row[] = [
  row(":: is unspecified", "::", forbidden("unspecified")),
  row("::1 is loopback", "::1", forbidden("loopback")),
  ...edges("fe80::/10", "link-local", "fe80::", `febf:ffff:ffff:${F}`),
  row("fe80::/10: below is reserved (not 2000::/3)", `fe7f:ffff:ffff:${F}`, forbidden("reserved")),
  row("fe80::/10: neighbour above is site-local", "fec0::", forbidden("private")),
  ...edges("fec0::/10 (site-local)", "private", "fec0::", `feff:ffff:ffff:${F}`),
  row("fec0::/10: neighbour above is multicast", "ff00::", forbidden("multicast")),
  ...edges("fc00::/7", "private", "fc00::", `fdff:ffff:ffff:${F}`),
  row("fc00::/7: below is reserved (not 2000::/3)", `fbff:ffff:ffff:${F}`, forbidden("reserved")),
  row("fc00::/7: above is reserved (not 2000::/3)", "fe00::", forbidden("reserved")),
  ...edges("ff00::/8", "multicast", "ff00::", `ffff:ffff:ffff:${F}`),
  row("ff00::/8: neighbour below is site-local", `feff:ffff:ffff:${F}`, forbidden("private")),
  ...edges("100::/64 (discard)", "reserved", "100::", "100::ffff:ffff:ffff:ffff"),
  row("100::/64: above is reserved (not 2000::/3)", "100:0:0:1::", forbidden("reserved")),
  ...edges("2001::/32 (Teredo)", "teredo", "2001::", `2001:0:ffff:${F}`, `2000:ffff:ffff:${F}`, "2001:1::"),
  ...edges("2001:2::/48", "benchmarking", "2001:2::", `2001:2:0:${F}`, `2001:1:ffff:${F}`, "2001:2:1::"),
  ...edges("2001:10::/28 (ORCHID)", "reserved", "2001:10::", `2001:1f:ffff:${F}`, `2001:f:ffff:${F}`),
  ...edges("2001:20::/28 (ORCHIDv2)", "reserved", "2001:20::", `2001:2f:ffff:${F}`, "2001:30::"),
  ...edges(
    "2001:db8::/32",
    "documentation",
    "2001:db8::",
    `2001:db8:ffff:${F}`,
    `2001:db7:ffff:${F}`,
    "2001:db9::",
  ),
  ...edges(
    "3fff::/20",
    "documentation",
    "3fff::",
    `3fff:fff:ffff:${F}`,
    `3ffe:ffff:ffff:${F}`,
    "3fff:1000::",
  ),
  row("below 2000::/3 is reserved", `1fff:ffff:ffff:${F}`, forbidden("reserved")),
  row("2000::/3 first address is allowed", "2000::", allowed),
  row("2000::/3 last address is allowed", `3fff:ffff:ffff:${F}`, allowed),
  row("above 2000::/3 is reserved", "4000::", forbidden("reserved")),
  row("a public IPv6 address is allowed", "2606:4700:4700::1111", allowed),
];

const METADATA: Row[] = [
  row("AWS/GCP/Azure metadata", "169.254.169.254", forbidden("metadata")),
  row("below metadata is link-local", "169.254.169.253", forbidden("link-local")),
  row("above metadata is link-local", "169.254.169.255", forbidden("link-local")),
  row("Alibaba metadata", "100.100.100.200", forbidden("metadata")),
  row("beside Alibaba metadata is cgnat", "100.100.100.201", forbidden("cgnat")),
  row("Azure WireServer", "168.63.129.16", forbidden("metadata")),
  row("below Azure WireServer is public", "168.63.129.15", allowed),
  row("above Azure WireServer is public", "168.63.129.17", allowed),
  row("AWS IPv6 metadata", "fd00:ec2::254", forbidden("metadata")),
  row("beside AWS IPv6 metadata is private", "fd00:ec2::253", forbidden("private")),
];

const EMBEDDED: Row[] = [
  row("mapped loopback", "::ffff:127.0.0.1", forbidden("loopback", "127.0.0.1")),
  row("mapped loopback in hex", "::ffff:7f00:1", forbidden("loopback", "127.0.0.1")),
  row("mapped metadata", "::ffff:169.254.169.254", forbidden("metadata", "169.254.169.254")),
  row("mapped 0.0.0.0", "::ffff:0.0.0.0", forbidden("unspecified", "0.0.0.0")),
  row("mapped public", "::ffff:8.8.8.8", allowed),
  row("just below the mapped prefix", "::fffe:ffff:ffff", forbidden("reserved")),
  row("compatible private", "::10.0.0.1", forbidden("private", "10.0.0.1")),
  row("compatible loopback", "::127.0.0.2", forbidden("loopback", "127.0.0.2")),
  row("compatible ::2 embeds 0.0.0.2", "::2", forbidden("unspecified", "0.0.0.2")),
  row("compatible public", "::8.8.8.8", allowed),
  row("translated loopback", "::ffff:0:127.0.0.1", forbidden("loopback", "127.0.0.1")),
  row("translated public", "::ffff:0:8.8.8.8", allowed),
  row("NAT64 loopback", "64:ff9b::7f00:1", forbidden("loopback", "127.0.0.1")),
  row("NAT64 metadata", "64:ff9b::169.254.169.254", forbidden("metadata", "169.254.169.254")),
  row("NAT64 public", "64:ff9b::8.8.8.8", allowed),
  row("NAT64 /32 outside the /96 is reserved", "64:ff9b::1:0:0", forbidden("reserved")),
  row("local NAT64 private", "64:ff9b:1::10.0.0.1", forbidden("private", "10.0.0.1")),
  row("local NAT64 public", "64:ff9b:1::8.8.8.8", allowed),
  row(
    "local NAT64: loopback in the /48 layout",
    "64:ff9b:1:7f00:0:100:808:808",
    forbidden("loopback", "127.0.0.1"),
  ),
  row("local NAT64: private in the /64 layout", "64:ff9b:1:0:a:0:100:0", forbidden("private", "10.0.0.1")),
  row("beside local NAT64 is reserved", "64:ff9b:2::8.8.8.8", forbidden("reserved")),
  row("6to4 loopback", "2002:7f00:1::", forbidden("loopback", "127.0.0.1")),
  row("6to4 private", "2002:c0a8:101::1", forbidden("private", "192.168.1.1")),
  row("6to4 metadata", "2002:a9fe:a9fe::", forbidden("metadata", "169.254.169.254")),
  row("6to4 public", "2002:808:808::1", allowed),
  row("below 6to4 is public", `2001:ffff:ffff:${F}`, allowed),
  row("above 6to4 is public", "2003::", allowed),
  row("Teredo is refused whatever it embeds", "2001:0:4136:e378:8000:63bf:3fff:fdd2", forbidden("teredo")),
];

const SPELLINGS: Row[] = [
  row("zone id on link-local", "fe80::1%eth0", forbidden("link-local")),
  row("numeric zone id", "fe80::1%1", forbidden("link-local")),
  row("zone id on multicast", "ff02::1%eth0", forbidden("multicast")),
  row("zone id on a public address changes nothing", "2606:4700::1111%eth0", allowed),
  row("uppercase link-local", "FE80::1", forbidden("link-local")),
  row("uppercase mapped", "::FFFF:A9FE:A9FE", forbidden("metadata", "169.254.169.254")),
  row("uppercase documentation", "2001:DB8::1", forbidden("documentation")),
  row("loopback written out", "0:0:0:0:0:0:0:1", forbidden("loopback")),
  row("loopback zero-padded", "0000:0000:0000:0000:0000:0000:0000:0001", forbidden("loopback")),
  row("mapped written out", "0:0:0:0:0:ffff:7f00:1", forbidden("loopback", "127.0.0.1")),
  row("mapped written out with a quad", "0:0:0:0:0:ffff:127.0.0.1", forbidden("loopback", "127.0.0.1")),
  row("trailing :: compresses one group", "fe80:0:0:0:0:0:0::", forbidden("link-local")),
  row("leading :: compresses seven groups", "::ffff", forbidden("unspecified", "0.0.255.255")),
];

const INVALID: [string, string[]][] = [
  ["not an address", ["", "localhost", "1.2.3.4/32", "[::1]", "a".repeat(10_000)]],
  ["inet_aton spellings", ["127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.000.000.001"]],
  ["bad IPv4", ["256.0.0.1", "1.2.3", "1.2.3.4.5", "１２７.0.0.1", "127.0.0.1%eth0"]],
  ["whitespace", [" 127.0.0.1", "127.0.0.1 ", "127.0.0.1\n", "::1 "]],
  ["bad IPv6", ["::1::", ":::1", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "12345::1", "g::1", "1.2.3.4::"]],
  ["bad embedded quad", ["::ffff:1.2.3.04", "::ffff:1.2.3", "::1.2.3.4:1"]],
  ["bad zone ids", ["fe80::1%", "fe80::1%eth 0", "fe80::1%eth0%1", `fe80::1%${"x".repeat(100)}`]],
];

describe("classifyAddress", () => {
  const groups: [string, Row[]][] = [
    ["IPv4 ranges", IPV4_RANGES],
    ["IPv6 ranges", IPV6_RANGES],
    ["metadata", METADATA],
    ["IPv4 embedded in IPv6", EMBEDDED],
    ["spellings", SPELLINGS],
  ];
  for (const [group, rows] of groups) {
    describe(group, () => {
      for (const row of rows) {
        it(row.name, () => {
          expect(classifyAddress(row.ip)).to.deep.equal(row.want);
        });
      }
    });
  }

  it("agrees with node:net BlockList on 20,000 random IPv4 and non-embedding IPv6 addresses", () => {
    // An independent implementation of prefix matching, fed the ranges as the brief states them.
    const list = new BlockList();
    const v4 =
      "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24 \
      192.0.2.0/24 192.88.99.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24 224.0.0.0/3";
    for (const block of v4.split(/\s+/))
      list.addSubnet(block.split("/")[0] ?? "", Number(block.split("/")[1]), "ipv4");
    list.addAddress("168.63.129.16");
    for (const block of [
      "2001::/32",
      "2001:2::/48",
      "2001:10::/28",
      "2001:20::/28",
      "2001:db8::/32",
      "3fff::/20",
    ]) {
      list.addSubnet(block.split("/")[0] ?? "", Number(block.split("/")[1]), "ipv6");
    }
    const byte = (): number => Math.floor(Math.random() * 256);
    for (let i = 0; i < 10_000; i++) {
      // Half the samples share a first octet with a forbidden range, to land near its edges.
      const first = i % 2 === 0 ? [0, 10, 100, 127, 169, 172, 192, 198, 203, 224, 240][i % 11] : byte();
      const ip = [first, byte(), byte(), byte()].join(".");
      expect(classifyAddress(ip).allowed, ip).to.equal(!list.check(ip, "ipv4"));
      const hex = (): string => Math.floor(Math.random() * 0x10000).toString(16);
      const head = ["2001", "2001", "2400", "3fff"][i % 4] ?? "2001";
      const second = ["0", "2", "1" + hex().slice(0, 1), "db8", hex()][i % 5] ?? "0";
      const v6 = [head, second, ...Array.from({ length: 6 }, hex)].join(":");
      expect(classifyAddress(v6).allowed, v6).to.equal(!list.check(v6, "ipv6"));
      const canonical = new URL(`http://[${v6}]/`).hostname.slice(1, -1);
      expect(classifyAddress(canonical.toUpperCase()), canonical).to.deep.equal(classifyAddress(v6));
    }
  });

  describe("invalid input is forbidden, never thrown", () => {
    for (const [name, inputs] of INVALID) {
      it(name, () => {
        for (const ip of inputs)
          expect(classifyAddress(ip), JSON.stringify(ip)).to.deep.equal(forbidden("invalid"));
      });
    }
  });
});

describe("parseCidr", () => {
  const good: [string, Cidr][] = [
    ["10.0.0.0/8", { family: 4, address: "10.0.0.0", prefix: 8 }],
    ["8.8.8.8", { family: 4, address: "8.8.8.8", prefix: 32 }],
    ["0.0.0.0/0", { family: 4, address: "0.0.0.0", prefix: 0 }],
    ["::1/128", { family: 6, address: "::1", prefix: 128 }],
    ["::1", { family: 6, address: "::1", prefix: 128 }],
    ["::/0", { family: 6, address: "::", prefix: 0 }],
    ["2001:DB8:0:0::/32", { family: 6, address: "2001:db8::", prefix: 32 }],
    ["::ffff:10.0.0.0/104", { family: 6, address: "::ffff:a00:0", prefix: 104 }],
  ];
  for (const [text, want] of good) {
    it(`accepts ${text}`, () => {
      expect(parseCidr(text)).to.deep.equal({ ok: true, value: want });
    });
  }

  const bad: [string, string, string][] = [
    ["host bits set (IPv4)", "10.0.0.1/8", `use "10.0.0.0/8" for the block or "10.0.0.1/32"`],
    ["host bits set (IPv6)", "fd00::1/8", `use "fd00::/8" for the block or "fd00::1/128"`],
    ["prefix too long", "10.0.0.0/33", "from 0 to 32"],
    ["IPv6 prefix too long", "::/129", "from 0 to 128"],
    ["negative prefix", "10.0.0.0/-1", "from 0 to 32"],
    ["empty prefix", "10.0.0.0/", "from 0 to 32"],
    ["leading zero prefix", "10.0.0.0/08", "from 0 to 32"],
    ["two slashes", "10.0.0.0/8/8", "from 0 to 32"],
    ["no address", "/8", "is not an IP address or CIDR"],
    ["short IPv4", "10.0.0/8", "is not an IP address or CIDR"],
    ["a name", "example.com/8", "is not an IP address or CIDR"],
    ["trailing space", "10.0.0.0/8 ", "from 0 to 32"],
    ["zone id", "fe80::%eth0/64", "zone ids have no place"],
  ];
  for (const [name, text, fragment] of bad) {
    it(`rejects ${name}: ${JSON.stringify(text)}`, () => {
      const result = parseCidr(text);
      expect(result.ok).to.equal(false);
      if (!result.ok) expect(result.message).to.include(fragment);
    });
  }
});

describe("cidrContains", () => {
  const cidr = (text: string): Cidr => {
    const result = parseCidr(text);
    if (!result.ok) throw new Error(result.message);
    return result.value;
  };
  const rows: [string, string, string, boolean][] = [
    ["first address", "10.0.0.0/8", "10.0.0.0", true],
    ["last address", "10.0.0.0/8", "10.255.255.255", true],
    ["just outside", "10.0.0.0/8", "11.0.0.0", false],
    ["IPv4 block holds the mapped form", "10.0.0.0/8", "::ffff:10.1.2.3", true],
    ["IPv4 block holds the mapped form in hex", "10.0.0.0/8", "::ffff:a01:203", true],
    ["IPv4 block does not hold the translated form", "10.0.0.0/8", "::ffff:0:10.1.2.3", false],
    ["IPv4 block does not hold NAT64", "10.0.0.0/8", "64:ff9b::10.1.2.3", false],
    ["IPv6 block does not hold plain IPv4", "::ffff:0:0/96", "10.1.2.3", false],
    ["IPv6 block", "fd00:ec2::/32", "fd00:ec2::254", true],
    ["IPv6 block with a zone id", "fe80::/10", "fe80::1%eth0", true],
    ["IPv4 /0 holds all IPv4", "0.0.0.0/0", "203.0.113.9", true],
    ["IPv4 /0 holds no other IPv6", "0.0.0.0/0", "2001:db8::1", false],
    ["invalid address", "0.0.0.0/0", "127.1", false],
  ];
  for (const [name, block, ip, want] of rows) {
    it(`${name}: ${block} ∋ ${ip} is ${want}`, () => {
      expect(cidrContains(cidr(block), ip)).to.equal(want);
    });
  }

  it("a hand-built Cidr that does not parse contains nothing", () => {
    expect(cidrContains({ family: 4, address: "10.0.0.0 ", prefix: 8 }, "10.0.0.1")).to.equal(false);
    expect(cidrContains({ family: 6, address: "10.0.0.0", prefix: 8 }, "10.0.0.1")).to.equal(false);
    expect(cidrContains({ family: 4, address: "10.0.0.0", prefix: 40 }, "10.0.0.1")).to.equal(false);
  });
});

describe("createAddressPolicy", () => {
  const allow = ["127.0.0.0/8", "10.1.0.0/16", "fd00:ec2::254"].map((text) => {
    const result = parseCidr(text);
    if (!result.ok) throw new Error(result.message);
    return result.value;
  });
  const policy = createAddressPolicy(allow);
  const message = (what: string, category: string): string =>
    `${what} is ${category}; airlock refuses to dial non-public addresses unless --allow-address covers them`;

  const rows: { name: string; ip: string; want: ReturnType<typeof policy.check> }[] = [
    { name: "public address", ip: "8.8.8.8", want: { allowed: true } },
    { name: "allow-listed loopback", ip: "127.0.0.1", want: { allowed: true } },
    { name: "allow-listed loopback, mapped", ip: "::ffff:127.0.0.1", want: { allowed: true } },
    { name: "allow-listed IPv6 metadata", ip: "fd00:ec2::254", want: { allowed: true } },
    { name: "allow-listed private block", ip: "10.1.255.255", want: { allowed: true } },
    {
      name: "private outside the allowed block",
      ip: "10.2.0.0",
      want: { allowed: false, category: "private", message: message("10.2.0.0", "private") },
    },
    {
      name: "NAT64 of an allowed address is not unwrapped",
      ip: "64:ff9b::7f00:1",
      want: {
        allowed: false,
        category: "loopback",
        message: message("64:ff9b::7f00:1 (embedding 127.0.0.1)", "loopback"),
      },
    },
    {
      name: "metadata not on the list",
      ip: "169.254.169.254",
      want: { allowed: false, category: "metadata", message: message("169.254.169.254", "metadata") },
    },
    {
      name: "invalid input is never allowed",
      ip: "127.1",
      want: {
        allowed: false,
        category: "invalid",
        message: `"127.1" is not an IP address; airlock refuses to dial it`,
      },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(policy.check(row.ip)).to.deep.equal(row.want);
    });
  }

  it("with no allow list, refuses loopback with the documented message", () => {
    expect(createAddressPolicy([]).check("127.0.0.1")).to.deep.equal({
      allowed: false,
      category: "loopback",
      message: message("127.0.0.1", "loopback"),
    });
  });
});
