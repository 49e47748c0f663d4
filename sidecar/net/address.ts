// The address classifier every dial passes (THREATS.md, "Destinations"). The sidecar resolves a
// name itself, checks every address here, and dials only an address that passed: DNS rebinding and
// alternative spellings are beaten by classifying the parsed bits, never the text.
import { isIP } from "node:net";

/** Why an address is refused. Stable strings: they appear in logs, metrics and CR status. */
export type AddressCategory =
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "metadata"
  | "multicast"
  | "reserved"
  | "unspecified"
  | "documentation"
  | "benchmarking"
  | "teredo"
  | "invalid";

/** Verdict of the classifier alone; `embedded` names the IPv4 address an IPv6 form carried. */
export type AddressClass =
  { allowed: true } | { allowed: false; category: AddressCategory; embedded?: string };

/** A CIDR block as JSON-safe data: `address` is the canonical network address, no host bits set. */
export type Cidr = { readonly family: 4 | 6; readonly address: string; readonly prefix: number };

/** Verdict of an {@link AddressPolicy}: the classifier's, overridden by `--allow-address`. */
export type AddressVerdict =
  { allowed: true } | { allowed: false; category: AddressCategory; message: string };

/** The check the proxy runs on every address it is about to dial. */
export type AddressPolicy = { check(ip: string): AddressVerdict };

type Parsed = { family: 4 | 6; value: bigint };

const WIDTH = { 4: 32, 6: 128 } as const;

/** Parses an IP as Node's `dns` and `net` spell it; anything else (`127.1`, `0x7f.1`, `[::1]`) is null. */
function parseIp(text: string): Parsed | null {
  if (text.length > 128 || isIP(text) === 0) return null;
  const zone = text.indexOf("%");
  if (zone !== -1) {
    // A zone only scopes link-local and multicast routes; the address alone decides the class.
    if (!/^[0-9A-Za-z.:-]{1,64}$/.test(text.slice(zone + 1))) return null;
    const value = parseIpv6(text.slice(0, zone));
    return value === null ? null : { family: 6, value };
  }
  if (text.includes(":")) {
    const value = parseIpv6(text);
    return value === null ? null : { family: 6, value };
  }
  const value = parseIpv4(text);
  return value === null ? null : { family: 4, value };
}

function parseIpv4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    // Decimal only, no leading zeros: inet_aton would read "010" as octal 8.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6(text: string): bigint | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (half: string | undefined): bigint[] | null => {
    if (half === undefined || half === "") return [];
    const out: bigint[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (/^[0-9A-Fa-f]{1,4}$/.test(part)) {
        out.push(BigInt(`0x${part}`));
      } else if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (v4 === null) return null;
        out.push(v4 >> 16n, v4 & 0xffffn);
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 2 && halves[0]?.includes(".")) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  let value = 0n;
  for (const group of [...head, ...Array<bigint>(missing).fill(0n), ...tail]) value = (value << 16n) | group;
  return value;
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
}

/** RFC 5952 text: lowercase, the longest run of two or more zero groups (the first on a tie) as `::`. */
function formatIpv6(value: bigint): string {
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => (value >> shift) & 0xffffn);
  let best = { start: -1, length: 1 };
  let run = 0;
  for (const [i, group] of groups.entries()) {
    run = group === 0n ? run + 1 : 0;
    if (run > best.length) best = { start: i - run + 1, length: run };
  }
  const hex = groups.map((group) => group.toString(16));
  if (best.start === -1) return hex.join(":");
  const head = hex.slice(0, best.start).join(":");
  const tail = hex.slice(best.start + best.length).join(":");
  return `${head}::${tail}`;
}

function inBlock(value: bigint, family: 4 | 6, network: bigint, prefix: number): boolean {
  const shift = BigInt(WIDTH[family] - prefix);
  return value >> shift === network >> shift;
}

type Block = { network: bigint; prefix: number; category: AddressCategory };

function blocks(rows: [string, AddressCategory][]): Block[] {
  return rows.map(([text, category]) => {
    const parsed = parseCidr(text);
    const network = parsed.ok ? parseIp(parsed.value.address) : null;
    // A typo in these tables must stop the process at start-up, not open a range.
    if (!parsed.ok || network === null) throw new Error(`address table: bad block ${text}`);
    return { network: network.value, prefix: parsed.value.prefix, category };
  });
}

// Exact metadata endpoints come first so they win over the wider range around them.
const IPV4_BLOCKS = blocks([
  ["169.254.169.254/32", "metadata"], // AWS, GCP, Azure, OpenStack instance metadata
  ["100.100.100.200/32", "metadata"], // Alibaba Cloud
  ["168.63.129.16/32", "metadata"], // Azure WireServer: a public address, hence listed alone
  ["0.0.0.0/8", "unspecified"], // "this network"; Linux dials 0.0.0.0 to the local host
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "cgnat"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "reserved"], // IETF protocol assignments
  ["192.0.2.0/24", "documentation"],
  ["192.88.99.0/24", "reserved"], // deprecated 6to4 relay anycast
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"], // includes the limited broadcast 255.255.255.255
]);

const IPV6_BLOCKS = blocks([
  ["fd00:ec2::254/128", "metadata"], // AWS instance metadata over IPv6
  ["fe80::/10", "link-local"],
  ["fec0::/10", "private"], // deprecated site-local, still routed as private by some stacks
  ["fc00::/7", "private"], // unique local
  ["ff00::/8", "multicast"],
  ["100::/64", "reserved"], // discard-only
  ["2001::/32", "teredo"], // the client address is obfuscated and NAT-dependent: refuse outright
  ["2001:2::/48", "benchmarking"],
  ["2001:10::/28", "reserved"], // ORCHID
  ["2001:20::/28", "reserved"], // ORCHIDv2
  ["2001:db8::/32", "documentation"],
  ["3fff::/20", "documentation"],
]);

function classifyIpv4(value: bigint): AddressClass {
  for (const { network, prefix, category } of IPV4_BLOCKS) {
    if (inBlock(value, 4, network, prefix)) return { allowed: false, category };
  }
  return { allowed: true };
}

type Embedded = { v4: bigint; alternative: boolean };

/** The IPv4 addresses an IPv6 form carries; null when it is not an embedding form. */
function embeddedIpv4(value: bigint): Embedded[] | null {
  const low32 = { v4: value & 0xffffffffn, alternative: false };
  if (value >> 32n === 0xffffn) return [low32]; // ::ffff:0:0/96 mapped
  if (value >> 32n === 0xffff0000n) return [low32]; // ::ffff:0:0:0/96 translated
  if (value >> 32n === 0n) return [low32]; // ::/96 compatible (:: and ::1 are caught earlier)
  if (value >> 32n === 0x64ff9b0000000000000000n) return [low32]; // NAT64 well-known, /96 only
  if (value >> 80n === 0x64ff9b0001n) {
    // RFC 8215 local-use NAT64 may translate to private IPv4, in whichever RFC 6052 layout the
    // operator chose; read every layout a /48 allows so a crafted middle cannot hide 127.0.0.1.
    const at48 = (((value >> 64n) & 0xffffn) << 16n) | ((value >> 40n) & 0xffffn);
    const at56 = (((value >> 64n) & 0xffn) << 24n) | ((value >> 32n) & 0xffffffn);
    const at64 = (value >> 24n) & 0xffffffffn;
    return [low32, ...[at48, at56, at64].map((v4) => ({ v4, alternative: true }))];
  }
  if (value >> 112n === 0x2002n) return [{ v4: (value >> 80n) & 0xffffffffn, alternative: false }]; // 6to4
  return null;
}

function classifyIpv6(value: bigint): AddressClass {
  if (value === 0n) return { allowed: false, category: "unspecified" };
  if (value === 1n) return { allowed: false, category: "loopback" };
  const embedded = embeddedIpv4(value);
  if (embedded !== null) {
    for (const { v4, alternative } of embedded) {
      // Every ordinary /96 address reads as 0.x.x.x under the other layouts, and 0.0.0.0/8 is
      // never forwarded as a destination (RFC 1812 §5.3.7): only the /96 reading may refuse it.
      if (alternative && v4 >> 24n === 0n) continue;
      const verdict = classifyIpv4(v4);
      if (!verdict.allowed) return { ...verdict, embedded: formatIpv4(v4) };
    }
    return { allowed: true };
  }
  for (const { network, prefix, category } of IPV6_BLOCKS) {
    if (inBlock(value, 6, network, prefix)) return { allowed: false, category };
  }
  // Only 2000::/3 is allocated for global unicast; the rest of the space is reserved by IANA.
  if (value >> 125n !== 1n) return { allowed: false, category: "reserved" };
  return { allowed: true };
}

/**
 * Classifies one IP address as `dns.lookup` or `net.isIP` spell it. Never throws: anything that
 * is not such an address is `invalid`, and `invalid` is forbidden.
 */
export function classifyAddress(ip: string): AddressClass {
  const parsed = parseIp(ip);
  if (parsed === null) return { allowed: false, category: "invalid" };
  return parsed.family === 4 ? classifyIpv4(parsed.value) : classifyIpv6(parsed.value);
}

/**
 * Parses `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128). Host bits set is an error
 * naming the block the author probably meant, rather than a silently widened or narrowed range.
 */
export function parseCidr(text: string): { ok: true; value: Cidr } | { ok: false; message: string } {
  const quoted = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  if (addressText.includes("%")) {
    return { ok: false, message: `${quoted}: zone ids have no place in a CIDR; drop the "%…" part` };
  }
  const address = parseIp(addressText);
  if (address === null) {
    return {
      ok: false,
      message: `${quoted} is not an IP address or CIDR; write e.g. "10.0.0.0/8" or "fd00::/8"`,
    };
  }
  const width = WIDTH[address.family];
  const prefixText = slash === -1 ? String(width) : text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > width) {
    return { ok: false, message: `${quoted}: the prefix length must be a number from 0 to ${width}` };
  }
  const prefix = Number(prefixText);
  const format = address.family === 4 ? formatIpv4 : formatIpv6;
  const hostBits = (1n << BigInt(width - prefix)) - 1n;
  const network = address.value & ~hostBits;
  if ((address.value & hostBits) !== 0n) {
    const block = `${format(network)}/${prefix}`;
    const single = `${format(address.value)}/${width}`;
    return {
      ok: false,
      message: `${quoted} has host bits set; use "${block}" for the block or "${single}" for the one address`,
    };
  }
  return { ok: true, value: { family: address.family, address: format(network), prefix } };
}

/**
 * Whether `ip` lies in `cidr`. An IPv4 block also holds the IPv4-mapped IPv6 spelling of its
 * addresses (the same socket destination); no other embedding is unwrapped. Invalid `ip` → false.
 */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  // Re-parsed on every call so that a Cidr read back from JSON is held to the same rules.
  const network = parseIp(cidr.address);
  const parsed = parseIp(ip);
  if (network === null || parsed === null || network.family !== cidr.family) return false;
  if (!Number.isInteger(cidr.prefix) || cidr.prefix < 0 || cidr.prefix > WIDTH[cidr.family]) return false;
  if (cidr.family === 4 && parsed.family === 6 && parsed.value >> 32n === 0xffffn) {
    return inBlock(parsed.value & 0xffffffffn, 4, network.value, cidr.prefix);
  }
  return parsed.family === cidr.family && inBlock(parsed.value, cidr.family, network.value, cidr.prefix);
}

/**
 * The address check with the operator's `--allow-address` blocks applied. In order:
 * 1. not an IP address → refused as `invalid`, whatever the allow list says;
 * 2. inside an `allow` block → allowed, even loopback or metadata (the operator named it);
 * 3. otherwise the {@link classifyAddress} verdict, with a message that says how to permit it.
 */
export function createAddressPolicy(allow: readonly Cidr[]): AddressPolicy {
  const blocksAllowed = [...allow];
  // The verdict depends on the address alone: most requests go to a few addresses, checked once.
  const recent = new Map<string, AddressVerdict>();
  const check = (ip: string): AddressVerdict => {
    const known = recent.get(ip);
    if (known !== undefined) return known;
    const verdict = checkNow(ip);
    if (recent.size >= 1024) recent.clear();
    recent.set(ip, verdict);
    return verdict;
  };
  const checkNow = (ip: string): AddressVerdict => {
    const verdict = classifyAddress(ip);
    if (verdict.allowed) return verdict;
    if (verdict.category === "invalid") {
      const quoted = JSON.stringify(ip.length > 64 ? `${ip.slice(0, 64)}…` : ip);
      return {
        allowed: false,
        category: "invalid",
        message: `${quoted} is not an IP address; airlock refuses to dial it`,
      };
    }
    if (blocksAllowed.some((cidr) => cidrContains(cidr, ip))) return { allowed: true };
    // A valid address is only hex digits, dots, colons and a [0-9A-Za-z.:-] zone: safe to echo.
    const what = verdict.embedded === undefined ? ip : `${ip} (embedding ${verdict.embedded})`;
    return {
      allowed: false,
      category: verdict.category,
      message: `${what} is ${verdict.category}; airlock refuses to dial non-public addresses unless --allow-address covers them`,
    };
  };
  return { check };
}
