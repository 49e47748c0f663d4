// Where a captured connection came from and which port it was for: the capture rules encode the
// original port in the loopback address they redirect to, and only this pod's own traffic counts.
import { networkInterfaces } from "node:os";

/** The original port encoded by the capture rules in the local address 127.0.X.Y (X.Y = port). */
export function capturedPort(localAddress: string | undefined): number | undefined {
  const match = /^(?:::ffff:)?127\.0\.(\d{1,3})\.(\d{1,3})$/.exec(localAddress ?? "");
  if (!match) return undefined;
  const port = Number(match[1]) * 256 + Number(match[2]);
  // 127.0.0.1 is where REDIRECT lands: the port was not encoded.
  return port > 1 && port <= 65535 ? port : undefined;
}

let localCache: { at: number; addresses: Set<string> } | undefined;

/** True for loopback and this network namespace's own addresses (captured traffic is local). */
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
