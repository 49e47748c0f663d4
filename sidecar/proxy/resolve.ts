// Name resolution for dialling: the sidecar resolves every name itself (pins first, like curl's
// --resolve), checks every address with the address policy, and dials only what it checked.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { AddressPolicy } from "../net/address.ts";

/** One checked address to dial. */
export interface DialAddress {
  address: string;
  family: 4 | 6;
}

/** Checked addresses to dial, never none: a name without one is a failure, not an empty success. */
export type Addresses = readonly [DialAddress, ...DialAddress[]];

/** The result of resolving and checking a name. */
export type ResolveResult =
  { ok: true; addresses: Addresses } | { ok: false; kind: "forbidden" | "unresolvable"; message: string };

/** A name-to-addresses function (injectable for the DNS responder and tests). */
export type LookupFn = (name: string) => Promise<string[]>;

const systemLookup: LookupFn = async (name) =>
  (await lookup(name, { all: true, order: "verbatim" })).map((entry) => entry.address);

/** Resolves names with pins first, then `lookupFn`; refuses when any address is forbidden. */
export class Resolver {
  #pins: Map<string, string[]>;
  #policy: AddressPolicy;
  #lookup: LookupFn;
  #timeoutMs: number;

  constructor(options: {
    pins?: Map<string, string[]>;
    addressPolicy: AddressPolicy;
    lookup?: LookupFn;
    timeoutMs?: number;
  }) {
    this.#pins = options.pins ?? new Map<string, string[]>();
    this.#policy = options.addressPolicy;
    this.#lookup = options.lookup ?? systemLookup;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /** Checks a literal address (an IP-literal target) without resolving anything. */
  checkAddress(address: string): ResolveResult {
    const verdict = this.#policy.check(address);
    if (!verdict.allowed) return { ok: false, kind: "forbidden", message: verdict.message };
    return { ok: true, addresses: [dialAddress(address)] };
  }

  /**
   * Resolves `name` (canonical, lower-case). Every address must pass the address policy: a name
   * that resolves to any forbidden address is refused whole, so a mixed answer cannot be raced.
   */
  async resolve(name: string): Promise<ResolveResult> {
    let addresses = this.#pins.get(name);
    if (!addresses) {
      try {
        addresses = await withTimeout(this.#lookup(name), this.#timeoutMs);
      } catch (err) {
        const code = (err as { code?: string }).code ?? "error";
        return { ok: false, kind: "unresolvable", message: `${name} could not be resolved (${code})` };
      }
    }
    const [first, ...rest] = addresses;
    if (first === undefined) return { ok: false, kind: "unresolvable", message: `${name} has no addresses` };
    for (const address of addresses) {
      const verdict = this.#policy.check(address);
      if (!verdict.allowed)
        return { ok: false, kind: "forbidden", message: `${name} resolves to ${verdict.message}` };
    }
    return { ok: true, addresses: [dialAddress(first), ...rest.map(dialAddress)] };
  }
}

function dialAddress(address: string): DialAddress {
  return { address, family: isIP(address) === 6 ? 6 : 4 };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(Object.assign(new Error("lookup timed out"), { code: "ETIMEOUT" }));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
