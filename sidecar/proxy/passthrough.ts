// A TLS tunnel the policy lets through without interception: spliced byte for byte to the
// address the sidecar resolved and checked itself (never the one the agent dialled).
import net, { type Socket } from "node:net";
import type { Entry } from "../policy/index.ts";
import { tlsRefusal } from "./answers.ts";
import type { Gate } from "./gate.ts";
import { blockVerdict, type Verdict } from "./verdict.ts";

/** Where a passthrough tunnel goes, the verdict that allowed it, and who opened it. */
export interface PassthroughTarget {
  host: string;
  port: number;
  decision: Verdict;
  entry: Entry;
  client?: string | undefined;
}

/**
 * Resolves and checks `target.host`, then splices `socket` to it after replaying `buffered` (the
 * ClientHello already read); a name without an allowed address gets a TLS alert. The decision is
 * recorded once, when the tunnel opens. Never throws.
 */
export function passthrough(
  gate: Gate,
  timeoutMs: number,
  socket: Socket,
  buffered: Buffer,
  target: PassthroughTarget,
): void {
  const started = performance.now();
  const { host, port, decision } = target;
  const record = { entry: target.entry, host, port, client: target.client };
  void gate.resolve(host, port).then((resolved) => {
    if (!resolved.ok) {
      const verdict =
        resolved.kind === "forbidden"
          ? blockVerdict("AddressForbidden", resolved.message)
          : blockVerdict("UnsupportedProtocol", resolved.message);
      if (resolved.kind !== "forbidden") gate.metrics.upstreamErrors.inc({ kind: "dns" });
      socket.end(tlsRefusal());
      gate.record(resolved.kind === "forbidden" ? verdict : decision, record);
      return;
    }
    const address = resolved.addresses[0];
    // A tunnel may live for hours: its decision is recorded when it is made, not when it ends.
    gate.record(decision, { ...record, durationMs: performance.now() - started });
    const upstream = net.connect({ host: address.address, port, family: address.family, noDelay: true });
    upstream.setTimeout(timeoutMs, () => upstream.destroy());
    upstream.once("connect", () => {
      upstream.setTimeout(0);
      upstream.write(buffered);
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.resume();
    });
    const close = (err?: Error): void => {
      if (err && !upstream.readyState.startsWith("open"))
        gate.metrics.upstreamErrors.inc({ kind: "connect" });
      socket.destroy();
      upstream.destroy();
    };
    upstream.on("error", close);
    socket.on("error", () => {
      close();
    });
    socket.once("close", () => {
      upstream.destroy();
    });
    upstream.once("close", () => socket.destroy());
  });
}
