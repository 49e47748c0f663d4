// The original-port encoding the capture rules and the transparent listener share. IPv4 NAT
// rewrites the destination, so the rules keep the port the agent dialled in the loopback address
// they DNAT to (port P → 127.0.P>>8.P&255), and the listener reads it back from its local address.
// Both sides live here so they cannot drift apart.

/** The loopback address that carries original port `port` to the transparent listener (443 → 127.0.1.187). */
export function encodedAddress(port: number): string {
  return `127.0.${port >> 8}.${port & 255}`;
}

/**
 * The original port encoded in the local address 127.0.X.Y (X.Y = port), plain or IPv4-mapped;
 * undefined for any other address and for 127.0.0.1, where REDIRECT lands (port not encoded).
 */
export function capturedPort(localAddress: string | undefined): number | undefined {
  const match = /^(?:::ffff:)?127\.0\.(\d{1,3})\.(\d{1,3})$/.exec(localAddress ?? "");
  if (!match) return undefined;
  const port = Number(match[1]) * 256 + Number(match[2]);
  // 127.0.0.1 is where REDIRECT lands: the port was not encoded.
  return port > 1 && port <= 65535 ? port : undefined;
}
