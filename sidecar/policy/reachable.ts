// Which names the loaded policy can reach at all: what the DNS responder answers for.
import { canonicalHost } from "./host.ts";
import type { PolicyIndex } from "./load.ts";

/**
 * True when some rule of `index` names `name` (exactly or under a wildcard), on any port. A
 * name no rule can reach is never resolved, so it never leaves the pod, not even as a query.
 */
export function nameReachable(index: PolicyIndex | null, name: string): boolean {
  if (index === null) return false;
  const host = canonicalHost(name);
  if (host.kind !== "name") return false;
  if (index.exact.has(host.name)) return true;
  const labels = host.name.split(".");
  for (let stripped = 1; stripped < labels.length; stripped++) {
    if (index.wildcard.has(labels.slice(stripped).join("."))) return true;
  }
  return false;
}
