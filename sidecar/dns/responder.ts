// The sidecar's DNS listener (DESIGN.md §3, port 15053): the agent's UDP and TCP port 53 are
// redirected here. Transport only — framing, limits, timeouts, metrics — around `answer.ts`.
import dgram from "node:dgram";
import net from "node:net";
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import type { AddressPolicy } from "../net/address.ts";
import { createAnswerer, type Answerer, type DnsAnswer, type ResolveFn } from "./answer.ts";
import type { NameBudgetOptions } from "./budget.ts";

/** What the responder needs; `resolve` is normally `createUpstreamResolve()` from `upstream.ts`. */
export interface DnsResponderOptions {
  host: string;
  /**
   * More addresses served on the same port by the same answerer (one name budget, one set of
   * limits), e.g. `::1` next to `127.0.0.1`. One whose address the host lacks (EADDRNOTAVAIL,
   * EAFNOSUPPORT: IPv6 turned off) is skipped with a warning; any other bind error rejects.
   */
  extraHosts?: readonly string[];
  /** 0 picks a port free for both UDP and TCP. */
  port: number;
  isAllowedName: (name: string) => boolean;
  resolve: ResolveFn;
  addressPolicy: AddressPolicy;
  metrics: { dnsQueries: Counter<"outcome"> };
  log?: Logger;
  /** TCP connections open at once; more are closed on accept (default 256). */
  maxTcpConnections?: number;
  /** A TCP connection silent this long is closed (default 10 s). */
  tcpIdleTimeoutMs?: number;
  resolveTimeoutMs?: number;
  /** The per-pod budget of new names under wildcard rules (budget.ts). */
  nameBudget?: NameBudgetOptions;
}

/** A running responder; `udpPort` equals `tcpPort`. `close` stops all and ends TCP connections. */
export interface DnsResponder {
  udpPort: number;
  tcpPort: number;
  /** The addresses actually served: `host`, then each extra host that could be bound. */
  hosts: string[];
  close(): Promise<void>;
}

const PORT_ATTEMPTS = 20;

/**
 * Starts UDP and TCP listeners on `host` and each of `extraHosts`, all on one port. With port 0 the
 * first UDP socket picks the port and every other listener binds the same one, retrying with a
 * fresh port if one finds it taken. Rejects if binding `host` fails (see `extraHosts`).
 */
export async function startDnsResponder(options: DnsResponderOptions): Promise<DnsResponder> {
  const handle = createHandler(options);
  for (let attempt = 1; ; attempt++) {
    const bound: Listener[] = [];
    const closeAll = () => Promise.all(bound.map((l) => l.close())).then(() => undefined);
    try {
      bound.push(await bindPair(options.host, options.port, handle, options));
      const port = bound[0]?.port ?? options.port;
      for (const host of options.extraHosts ?? []) {
        const extra = await bindPair(host, port, handle, options).catch((err: unknown) => {
          if (!NO_ADDRESS.has(errorCode(err))) throw err;
          options.log?.warn({ err, host, port }, "dns responder: address not available, not served");
          return undefined;
        });
        if (extra) bound.push(extra);
      }
    } catch (err) {
      await closeAll();
      if (options.port === 0 && errorCode(err) === "EADDRINUSE" && attempt < PORT_ATTEMPTS) continue;
      throw err;
    }
    const port = bound[0]?.port ?? options.port;
    for (const listener of bound) listener.serve();
    options.log?.info({ hosts: bound.map((l) => l.host), port }, "dns responder listening");
    return { udpPort: port, tcpPort: port, hosts: bound.map((l) => l.host), close: closeAll };
  }
}

/** Bind errors meaning "this host has no such address" (IPv6 off), not "something is wrong". */
const NO_ADDRESS = new Set<string | undefined>(["EADDRNOTAVAIL", "EAFNOSUPPORT"]);

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The answerer with metrics and logs around it; one per responder, shared by every listener. */
function createHandler(options: DnsResponderOptions): Answerer {
  const answer = createAnswerer({
    isAllowedName: options.isAllowedName,
    resolve: options.resolve,
    addressPolicy: options.addressPolicy,
    ...(options.resolveTimeoutMs === undefined ? {} : { resolveTimeoutMs: options.resolveTimeoutMs }),
    ...(options.nameBudget === undefined ? {} : { nameBudget: options.nameBudget }),
  });
  return async (packet: Uint8Array, transport: "udp" | "tcp"): Promise<DnsAnswer> => {
    const result = await answer(packet, transport);
    options.metrics.dnsQueries.inc({ outcome: result.outcome });
    const dns = {
      transport,
      name: result.name,
      qtype: result.qtype,
      outcome: result.outcome,
      reason: result.reason,
    };
    // A refused new name under a wildcard is an audit event: the agent may be using DNS as a channel.
    if (result.outcome === "throttled") options.log?.warn({ dns }, "dns name budget exhausted");
    else options.log?.debug({ dns }, "dns query");
    return result;
  };
}

/** UDP and TCP bound on one address and port, answering only once `serve` is called. */
interface Listener {
  host: string;
  port: number;
  serve(): void;
  close(): Promise<void>;
}

async function bindPair(
  host: string,
  port: number,
  handle: Answerer,
  options: DnsResponderOptions,
): Promise<Listener> {
  const udp = await bindUdp(host, port);
  const bound = udp.address().port;
  const tcp = createTcpServer(handle, options);
  try {
    await listenTcp(tcp.server, host, bound);
  } catch (err) {
    await closeUdp(udp);
    throw err;
  }
  return {
    host,
    port: bound,
    serve: () => {
      serveUdp(udp, handle, options.log);
    },
    close: async () => {
      await Promise.all([closeUdp(udp), tcp.close()]);
    },
  };
}

function bindUdp(host: string, port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: net.isIPv6(host) ? "udp6" : "udp4" });
  return new Promise((resolve, reject) => {
    socket.once("error", (err) => {
      socket.close();
      reject(err);
    });
    socket.bind(port, host, () => {
      socket.removeAllListeners("error");
      resolve(socket);
    });
  });
}

function closeUdp(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => {
        resolve();
      });
    } catch {
      resolve(); // already closed
    }
  });
}

function serveUdp(socket: dgram.Socket, handle: Answerer, log: Logger | undefined): void {
  socket.on("error", (err) => {
    // Send errors (e.g. ICMP unreachable surfacing late) concern one peer, never the listener.
    log?.warn({ err }, "dns udp socket error");
  });
  socket.on("message", (packet, peer) => {
    handle(packet, "udp")
      .then((result) => {
        if (result.response === undefined) return;
        socket.send(result.response, peer.port, peer.address, (err) => {
          if (err) log?.debug({ err }, "dns udp send failed");
        });
      })
      .catch((err: unknown) => {
        // A lookup that outlived close(): the socket is gone, and so is the asker's interest.
        log?.debug({ err }, "dns udp answer dropped");
      });
  });
}

function listenTcp(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

interface TcpListener {
  server: net.Server;
  close(): Promise<void>;
}

/** RFC 7766 framing: 2-byte length, several queries a connection, answered one at a time. */
function createTcpServer(handle: Answerer, options: DnsResponderOptions): TcpListener {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true });
  server.maxConnections = options.maxTcpConnections ?? 256;
  server.on("error", (err) => options.log?.warn({ err }, "dns tcp listener error"));
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    serveTcpConnection(socket, handle, options.tcpIdleTimeoutMs ?? 10_000);
  });
  return {
    server,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

function serveTcpConnection(socket: net.Socket, handle: Answerer, idleMs: number): void {
  let buffered = Buffer.alloc(0);
  let busy = false;
  let ended = false;
  // A function, not the property: the socket can close while an answer is awaited.
  const open = (): boolean => !socket.destroyed;
  socket.setTimeout(idleMs, () => socket.destroy());
  socket.on("error", () => socket.destroy());
  const pump = async (): Promise<void> => {
    busy = true;
    socket.pause(); // while answering, at most one more chunk waits in `buffered`
    while (open() && buffered.length >= 2) {
      const length = buffered.readUInt16BE(0);
      if (buffered.length < 2 + length) break;
      const message = buffered.subarray(2, 2 + length);
      buffered = buffered.subarray(2 + length);
      const result = await handle(message, "tcp");
      // A frame that is not even a DNS header: the stream cannot be trusted any further.
      if (result.response === undefined || !open()) {
        socket.destroy();
        return;
      }
      const frame = Buffer.alloc(2 + result.response.length);
      frame.writeUInt16BE(result.response.length, 0);
      frame.set(result.response, 2);
      socket.write(frame);
    }
    busy = false;
    if (!open()) return;
    // The peer finished sending (half-close): what was complete is answered; close our side too.
    if (ended) socket.end();
    else socket.resume();
  };
  const run = (): void => {
    if (busy) return;
    pump().catch(() => socket.destroy());
  };
  socket.on("data", (chunk) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    run();
  });
  socket.on("end", () => {
    ended = true;
    run();
  });
}
