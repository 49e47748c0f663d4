// The responder's default lookups: the sidecar's own resolver (its traffic is exempt from capture),
// asked only for names the policy already allowed. A and AAAA only, with TTLs.
import { getServers, promises as dnsPromises } from "node:dns";
import type { ResolveFn } from "./answer.ts";

/** Where and how patiently to ask; servers default to the sidecar's /etc/resolv.conf. */
export interface UpstreamOptions {
  servers?: string[];
  timeoutMs?: number;
  tries?: number;
}

/**
 * A {@link ResolveFn} over `dns.promises.Resolver` (2 s timeout, 2 tries): the lowest record TTL
 * as `ttl`; NODATA → no addresses; NXDOMAIN → throws with code ENOTFOUND; anything else throws.
 */
export function createUpstreamResolve(options: UpstreamOptions = {}): ResolveFn {
  const timeout = options.timeoutMs ?? 2000;
  // maxTimeout stops c-ares doubling the timeout on each retry: 2 × 2 s stays under the
  // responder's 5 s deadline, so the upstream's own error, not the deadline, decides.
  const resolver = new dnsPromises.Resolver({ timeout, maxTimeout: timeout, tries: options.tries ?? 2 });
  resolver.setServers(options.servers ?? getServers());
  return async (name, type) => {
    try {
      const records =
        type === "A"
          ? await resolver.resolve4(name, { ttl: true })
          : await resolver.resolve6(name, { ttl: true });
      const ttl = records.length === 0 ? undefined : Math.min(...records.map((record) => record.ttl));
      return { addresses: records.map((record) => record.address), ttl };
    } catch (err) {
      if ((err as { code?: unknown }).code === dnsPromises.NODATA) return { addresses: [] };
      throw err;
    }
  };
}
