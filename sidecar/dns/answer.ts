// What the DNS responder answers, transport aside: one packet in, one decision out (outcome,
// stable reason, response bytes). Denied names are answered here without any lookup, so a name
// the policy refuses never reaches a resolver (THREATS.md); new names under a wildcard rule are
// rationed by the name budget (budget.ts), which bounds, but cannot close, that channel.
import type { AddressPolicy } from "../net/address.ts";
import { createNameBudget, underWildcard, type NameBudgetOptions } from "./budget.ts";
import {
  TCP_LIMIT,
  TYPE,
  addressBytes,
  buildResponse,
  parseQuery,
  udpResponseLimit,
  type AnswerRecord,
  type DropReason,
  type ParsedQuery,
  type Rcode,
  type RejectReason,
} from "./codec.ts";

/** The label values of airlock_dns_queries_total{outcome}. */
export type DnsOutcome = "answered" | "nxdomain" | "nodata" | "refused" | "throttled" | "error";

/** Why a query got its answer; stable strings for logs (codec reasons for malformed packets). */
export type DnsReason =
  | "Answered"
  | "NameNotAllowed"
  | "TypeNotServed"
  | "AddressesForbidden"
  | "UpstreamNoData"
  | "UpstreamNxdomain"
  | "UpstreamFailure"
  | "UpstreamTimeout"
  | "PolicyError"
  | "Overloaded"
  | "NameBudgetExhausted"
  | RejectReason
  | DropReason;

/**
 * Looks up an allowed name's A or AAAA addresses. Throw an error with `code: "ENOTFOUND"` for a
 * name that does not exist; return no addresses for NODATA; any other throw is a failure.
 */
export type ResolveFn = (name: string, type: "A" | "AAAA") => Promise<{ addresses: string[]; ttl?: number }>;

/** One packet's decision; `response` is undefined when the packet is dropped unanswered. */
export interface DnsAnswer {
  outcome: DnsOutcome;
  reason: DnsReason;
  response: Uint8Array | undefined;
  /** The queried name (canonical text) and type, when the packet held a readable question. */
  name?: string;
  qtype?: number;
}

/** What {@link createAnswerer} needs: the policy's name check, a resolver and the address check. */
export interface AnswererOptions {
  isAllowedName: (name: string) => boolean;
  resolve: ResolveFn;
  addressPolicy: AddressPolicy;
  /** A lookup slower than this is answered SERVFAIL (default 5 s, above upstream's 2 × 2 s). */
  resolveTimeoutMs?: number;
  /** Distinct lookups in flight at once; more are answered SERVFAIL (default 256). */
  maxPendingLookups?: number;
  /** The per-pod budget of new names under wildcard rules (budget.ts); defaults when absent. */
  nameBudget?: NameBudgetOptions;
}

/** Answers one packet received over `transport`; never rejects, whatever the bytes. */
export type Answerer = (packet: Uint8Array, transport: "udp" | "tcp") => Promise<DnsAnswer>;

/** Answers are cached by the agent for at most this long, so a policy change is seen quickly. */
export const MAX_TTL_SECONDS = 30;

type Lookup =
  | { kind: "addresses"; addresses: string[]; ttl: number | undefined }
  | { kind: "fail"; reason: "UpstreamNxdomain" | "UpstreamFailure" | "UpstreamTimeout" };

class LookupTimeout extends Error {}

/**
 * Builds the answering function. For a well-formed query, in order:
 * 1. the name is empty (root) or `isAllowedName` says no → NXDOMAIN, nothing forwarded;
 *    `isAllowedName` throwing → SERVFAIL;
 * 2. a type other than A or AAAA → NODATA, nothing forwarded;
 * 3. a name reachable through a wildcard rule and not sent before takes a token of the name budget;
 *    none left → REFUSED ("throttled"), nothing forwarded. Exact names never take one;
 * 4. too many lookups in flight → SERVFAIL; otherwise resolve (identical lookups in flight are
 *    shared): not found → NXDOMAIN; failure or timeout → SERVFAIL;
 * 5. addresses of the wrong family or forbidden by the address policy are dropped; none left → NODATA;
 * 6. answer with TTL min(upstream, 30), truncated (TC) to the transport's size limit.
 * Malformed or unsupported packets are answered with the codec's rcode, or dropped, as "refused".
 */
export function createAnswerer(options: AnswererOptions): Answerer {
  const timeoutMs = options.resolveTimeoutMs ?? 5000;
  const maxPending = options.maxPendingLookups ?? 256;
  const pending = new Map<string, Promise<Lookup>>();
  const budget = createNameBudget(options.nameBudget);

  const lookup = (name: string, type: "A" | "AAAA"): Promise<Lookup> | undefined => {
    const key = `${type} ${name}`;
    const shared = pending.get(key);
    if (shared !== undefined) return shared;
    if (pending.size >= maxPending) return undefined;
    const started = runLookup(options.resolve, name, type, timeoutMs).finally(() => {
      pending.delete(key);
    });
    pending.set(key, started);
    return started;
  };

  return async (packet, transport) => {
    const parsed = safeParse(packet);
    if (parsed.kind === "drop") return { outcome: "refused", reason: parsed.reason, response: undefined };
    const limit = transport === "udp" ? udpResponseLimit(parsed.edns) : TCP_LIMIT;
    const about =
      parsed.question === undefined ? {} : { name: parsed.question.name, qtype: parsed.question.type };
    const reply = (
      outcome: DnsOutcome,
      reason: DnsReason,
      rcode: Rcode,
      answers: AnswerRecord[] = [],
    ): DnsAnswer => ({
      outcome,
      reason,
      ...about,
      response: buildResponse({ ...parsed, rcode, answers }, limit),
    });
    if (parsed.kind === "reject") return reply("refused", parsed.reason, parsed.rcode);

    const { name, type } = parsed.question;
    let allowed: boolean;
    let wildcard: boolean;
    try {
      allowed = name !== "" && options.isAllowedName(name);
      wildcard = allowed && underWildcard(name, options.isAllowedName);
    } catch {
      return reply("error", "PolicyError", "SERVFAIL");
    }
    if (!allowed) return reply("nxdomain", "NameNotAllowed", "NXDOMAIN");
    if (type !== TYPE.A && type !== TYPE.AAAA) return reply("nodata", "TypeNotServed", "NOERROR");
    // A and AAAA of one name share a token: the budget counts names, the data they can carry.
    if (wildcard && budget.take(name) === "exhausted")
      return reply("throttled", "NameBudgetExhausted", "REFUSED");

    const found = await lookup(name, type === TYPE.A ? "A" : "AAAA");
    if (found === undefined) return reply("error", "Overloaded", "SERVFAIL");
    if (found.kind === "fail") {
      return found.reason === "UpstreamNxdomain"
        ? reply("nxdomain", found.reason, "NXDOMAIN")
        : reply("error", found.reason, "SERVFAIL");
    }
    if (found.addresses.length === 0) return reply("nodata", "UpstreamNoData", "NOERROR");
    const width = type === TYPE.A ? 4 : 16;
    const ttl = Math.min(found.ttl ?? MAX_TTL_SECONDS, MAX_TTL_SECONDS);
    const seen = new Set<string>();
    const answers: AnswerRecord[] = [];
    for (const address of found.addresses) {
      const data = addressBytes(address);
      if (data?.length !== width || !options.addressPolicy.check(address).allowed) continue;
      const key = data.join(",");
      if (seen.has(key)) continue;
      seen.add(key);
      answers.push({ type, ttl, data });
    }
    if (answers.length === 0) return reply("nodata", "AddressesForbidden", "NOERROR");
    return reply("answered", "Answered", "NOERROR", answers);
  };
}

function safeParse(packet: Uint8Array): ParsedQuery {
  try {
    return parseQuery(packet);
  } catch {
    // The codec is written never to throw; should it ever, the packet is dropped, not the process.
    return { kind: "drop", reason: "ShortHeader" };
  }
}

async function runLookup(
  resolve: ResolveFn,
  name: string,
  type: "A" | "AAAA",
  timeoutMs: number,
): Promise<Lookup> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new LookupTimeout());
    }, timeoutMs);
  });
  try {
    const result = await Promise.race([resolve(name, type), deadline]);
    const addresses = Array.isArray(result.addresses)
      ? result.addresses.filter((a): a is string => typeof a === "string")
      : [];
    const ttl = typeof result.ttl === "number" && Number.isFinite(result.ttl) ? result.ttl : undefined;
    return { kind: "addresses", addresses, ttl };
  } catch (err) {
    if (err instanceof LookupTimeout) return { kind: "fail", reason: "UpstreamTimeout" };
    const code = (err as { code?: unknown } | null)?.code;
    return { kind: "fail", reason: code === "ENOTFOUND" ? "UpstreamNxdomain" : "UpstreamFailure" };
  } finally {
    clearTimeout(timer);
  }
}
