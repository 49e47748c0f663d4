// Test support: one responder wired to a real fake upstream through `upstream.ts`, with real
// metrics, and the zone and policy the responder tests share.
import { promises as dnsPromises } from "node:dns";
import { createAddressPolicy } from "../net/address.ts";
import { createSidecarMetrics, type SidecarMetrics } from "../observe/metrics.ts";
import type { DnsOutcome, ResolveFn } from "./answer.ts";
import { startDnsResponder, type DnsResponder, type DnsResponderOptions } from "./responder.ts";
import { startFakeUpstream, type FakeUpstream, type ZoneEntry } from "./test-upstream.ts";
import { createUpstreamResolve } from "./upstream.ts";

/** Public addresses the zone hands out (the address policy allows them). */
export const V4 = ["93.184.215.14", "151.101.1.69", "104.16.132.229"] as const;
export const V6 = ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "2a04:4e42::323"] as const;

/** 40 AAAA records: 1165 bytes with EDNS0, so over 512 but within 1232. */
export const BIG_AAAA = Array.from({ length: 40 }, (_, i) => `2606:2800:220:1::${(i + 1).toString(16)}`);

/** What the fake upstream knows, including names the policy denies (so a leak would resolve). */
export const ZONE: Record<string, ZoneEntry> = {
  "api.example.test": { A: [V4[0], V4[1]], AAAA: [V6[0]], ttl: 300 },
  "short.example.test": { A: [V4[0]], ttl: 5 },
  "a.b.cdn.example.test": { A: [V4[2]] },
  "cdn.example.test": { A: [V4[2]] },
  "mixed.example.test": {
    A: [V4[0], "10.0.0.5", "169.254.169.254", "127.0.0.1"],
    AAAA: ["::1", "fd00:ec2::254", V6[1], "::ffff:10.0.0.1"],
  },
  "internal.example.test": { A: ["10.1.2.3"], AAAA: ["fc00::1"] },
  "v4only.example.test": { A: [V4[1]] },
  "big.example.test": { AAAA: BIG_AAAA },
  "broken.example.test": { rcode: "SERVFAIL" },
  "evil.example.test": { A: [V4[0]], AAAA: [V6[0]] },
  "c2vjcmv0.evil.example.test": { A: [V4[0]] },
};

const EXACT = new Set([
  "api.example.test",
  "short.example.test",
  "mixed.example.test",
  "internal.example.test",
  "v4only.example.test",
  "big.example.test",
  "broken.example.test",
  "gone.example.test",
]);

/** The policy under test: the names above plus `*.cdn.example.test` (never its apex). */
export function isAllowedName(name: string): boolean {
  return EXACT.has(name) || name.endsWith(".cdn.example.test");
}

/** A running responder, its upstream, and a metric reader. */
export interface Harness {
  upstream: FakeUpstream;
  responder: DnsResponder;
  metrics: SidecarMetrics;
  /** A Node resolver pointed at the responder (UDP first, TCP after TC, as c-ares does). */
  client: dnsPromises.Resolver;
  count(outcome: DnsOutcome): Promise<number>;
  close(): Promise<void>;
}

/** Starts the fake upstream and a responder on 127.0.0.1:0; `resolve` overrides the upstream. */
export async function startHarness(
  overrides: Partial<Omit<DnsResponderOptions, "resolve">> & { resolve?: ResolveFn } = {},
): Promise<Harness> {
  const upstream = await startFakeUpstream(ZONE);
  const metrics = createSidecarMetrics();
  let responder: DnsResponder;
  try {
    responder = await startDnsResponder({
      host: "127.0.0.1",
      port: 0,
      isAllowedName,
      resolve: createUpstreamResolve({ servers: [`127.0.0.1:${upstream.port}`] }),
      addressPolicy: createAddressPolicy([]),
      metrics,
      ...overrides,
    });
  } catch (err) {
    await upstream.close();
    throw err;
  }
  const client = new dnsPromises.Resolver({ timeout: 3000, tries: 1 });
  client.setServers([`127.0.0.1:${responder.udpPort}`]);
  return {
    upstream,
    responder,
    metrics,
    client,
    count: async (outcome) => {
      const { values } = await metrics.dnsQueries.get();
      return values.find((value) => value.labels.outcome === outcome)?.value ?? 0;
    },
    close: async () => {
      client.cancel();
      await Promise.all([responder.close(), upstream.close()]);
    },
  };
}
