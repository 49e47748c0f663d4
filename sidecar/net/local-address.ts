// Whether a peer is this network namespace itself: captured traffic always is (the capture rules
// redirect it over loopback), so a transparent-listener peer that is not was sent by another pod.
import { networkInterfaces } from "node:os";

let localCache: { at: number; addresses: Set<string> } | undefined;

/** True for loopback and this network namespace's own addresses (read again at most every 5 s). */
export function isLocalAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const plain = address.replace(/^::ffff:/, "");
  if (plain.startsWith("127.") || plain === "::1") return true;
  const now = Date.now();
  if (!localCache || now - localCache.at > 5000) {
    const addresses = new Set<string>();
    for (const list of Object.values(networkInterfaces()))
      for (const info of list ?? []) addresses.add(info.address);
    localCache = { at: now, addresses };
  }
  return localCache.addresses.has(plain);
}
