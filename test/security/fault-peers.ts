// Peers for the fault tests: a scripted upstream that sends a response head and part of its body,
// then, when the test says so, either resets the TCP connection (RST) or sends the rest; and an
// agent-side client that reports exactly how its connection ended, so a hang is told apart from
// an error or a truncated response. Traffic stays on 127.0.0.1.
import net, { type AddressInfo } from "node:net";
import tls from "node:tls";
import type { CertificateAuthority } from "../../sidecar/tls/ca.ts";
import { connectTls } from "./tunnel-load.ts";

/** Size of every scripted response body, and how much of it is sent before the test decides. */
export const BODY_BYTES = 64 * 1024;
export const FIRST_PART_BYTES = 16 * 1024;

/** One request the scripted upstream received. */
export interface ScriptedRequest {
  path: string;
  head: string;
}

/** A response held after its first part: the test resets its connection or lets it finish. */
export interface HeldResponse {
  /** Sends an RST on the upstream's TCP connection (socket.resetAndDestroy()). */
  reset(): void;
  /** Sends the rest of the body. */
  finish(): void;
}

/** A running scripted upstream. */
export interface ScriptedUpstream {
  port: number;
  requests: ScriptedRequest[];
  /** Resolves once a request for `path` has had its head and first part written. */
  held(path: string, ms?: number): Promise<HeldResponse>;
  close(): Promise<void>;
}

/** The byte at offset `i` of every scripted body (a pattern, so a truncation shows). */
export function bodyByte(i: number): number {
  return 0x61 + (i % 26);
}

function body(from: number, to: number): Buffer {
  const out = Buffer.alloc(to - from);
  for (let i = from; i < to; i++) out[i - from] = bodyByte(i);
  return out;
}

/**
 * Starts an HTTP/1.1 upstream on 127.0.0.1 (TLS with certificates from `ca` for any SNI when
 * given). Each request gets `200` with Content-Length BODY_BYTES and FIRST_PART_BYTES of it; the
 * rest waits for the test's reset() or finish().
 */
export async function startScriptedUpstream(ca?: CertificateAuthority): Promise<ScriptedUpstream> {
  const requests: ScriptedRequest[] = [];
  const ready = new Map<string, HeldResponse>();
  const waiters = new Map<string, (held: HeldResponse) => void>();
  const sockets = new Set<net.Socket>();
  const serve = (raw: net.Socket): void => {
    sockets.add(raw);
    raw.on("close", () => sockets.delete(raw));
    raw.on("error", () => raw.destroy());
    const stream: net.Socket = ca
      ? new tls.TLSSocket(raw, {
          isServer: true,
          SNICallback: (name, cb) => {
            cb(null, ca.contextFor(name.toLowerCase()));
          },
        })
      : raw;
    stream.on("error", () => stream.destroy());
    let text = "";
    const onData = (chunk: Buffer): void => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end === -1) return;
      stream.off("data", onData);
      const head = text.slice(0, end);
      const path = head.split(" ")[1] ?? "";
      requests.push({ path, head });
      const first = `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${BODY_BYTES}\r\n\r\n`;
      stream.write(Buffer.concat([Buffer.from(first), body(0, FIRST_PART_BYTES)]), () => {
        const held: HeldResponse = {
          reset: () => raw.resetAndDestroy(),
          finish: () => stream.end(body(FIRST_PART_BYTES, BODY_BYTES)),
        };
        const waiter = waiters.get(path);
        if (waiter) waiter(held);
        else ready.set(path, held);
      });
    };
    stream.on("data", onData);
  };
  const server = net.createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    held: (path, ms = 10_000) => {
      const found = ready.get(path);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`the upstream got no request for ${path} within ${ms} ms`));
        }, ms);
        waiters.set(path, (held) => {
          clearTimeout(timer);
          resolve(held);
        });
      });
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** How an agent's connection ended: `hang` when it had not ended by the deadline. */
export interface Ending {
  how: "error" | "end" | "hang";
  status: number;
  bodyBytes: number;
  /** True when every body byte received is the expected byte at its offset. */
  intact: boolean;
  /** The body's framing says it is whole: all of Content-Length, or chunked's last chunk. */
  complete: boolean;
}

/** One agent request on its own connection, and what has come back so far. */
export interface AgentExchange {
  /** Resolves once at least `bytes` body bytes arrived (rejects at the deadline). */
  bodyAtLeast(bytes: number, ms?: number): Promise<void>;
  /** Resolves when the connection ends, or with `how: "hang"` after `ms`. */
  ending(ms: number): Promise<Ending>;
}

/** Where and how the agent sends its request. */
export interface AgentRoute {
  proxyPort: number;
  /** CONNECT to this host:port first, then TLS with `ca` (else: the request goes as it is). */
  tunnel?: { host: string; port: number; ca: string };
  request: string;
}

async function openTunnel(proxyPort: number, t: NonNullable<AgentRoute["tunnel"]>): Promise<net.Socket> {
  return connectTls(net.connect({ host: "127.0.0.1", port: proxyPort }), t.host, t.port, t.ca);
}

/** Sends `route.request` as the agent would and follows the response byte by byte. */
export async function agentExchange(route: AgentRoute): Promise<AgentExchange> {
  const socket = route.tunnel
    ? await openTunnel(route.proxyPort, route.tunnel)
    : net.connect({ host: "127.0.0.1", port: route.proxyPort });
  let head: string | undefined;
  let pending = Buffer.alloc(0);
  let bodyBytes = 0;
  let intact = true;
  let chunked = false;
  let ended: Ending["how"] | undefined;
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of [...listeners]) l();
  };
  const dechunk = new Dechunker();
  socket.on("data", (chunk: Buffer) => {
    if (head === undefined) {
      pending = Buffer.concat([pending, chunk]);
      const end = pending.indexOf("\r\n\r\n");
      if (end === -1) return;
      head = pending.subarray(0, end).toString("latin1");
      chunk = pending.subarray(end + 4);
      chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
    }
    const data = chunked ? dechunk.push(chunk) : chunk;
    for (let i = 0; i < data.length; i++) if (data[i] !== bodyByte(bodyBytes + i)) intact = false;
    bodyBytes += data.length;
    notify();
  });
  socket.on("error", () => {
    ended ??= "error";
    notify();
  });
  socket.on("close", () => {
    ended ??= "end";
    notify();
  });
  socket.write(route.request);
  const until = (done: () => boolean, ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        resolve(false);
      }, ms);
      listeners.add(check);
      check();
    });
  const status = (): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? "")?.[1] ?? 0);
  return {
    bodyAtLeast: async (bytes, ms = 10_000) => {
      if (!(await until(() => bodyBytes >= bytes || ended !== undefined, ms)) || bodyBytes < bytes)
        throw new Error(
          `only ${bodyBytes} body bytes (head ${JSON.stringify(head)}), ended: ${String(ended)}`,
        );
    },
    ending: async (ms) => {
      const done = await until(() => ended !== undefined, ms);
      if (!done) socket.destroy();
      const complete = chunked ? dechunk.done : bodyBytes === BODY_BYTES;
      return { how: done ? (ended ?? "end") : "hang", status: status(), bodyBytes, intact, complete };
    },
  };
}

/** Incremental decoder of a chunked body: push() returns the payload bytes, `done` after the last chunk. */
class Dechunker {
  done = false;
  #buffer = Buffer.alloc(0);
  /** Payload bytes still due in the current chunk (then its CRLF). */
  #left = 0;

  push(chunk: Buffer): Buffer {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      if (this.#left > 0) {
        const take = this.#buffer.subarray(0, Math.min(this.#left, this.#buffer.length));
        out.push(take);
        this.#left -= take.length;
        this.#buffer = this.#buffer.subarray(take.length);
        if (this.#left > 0) break;
        this.#left = -2; // the CRLF after the payload
      }
      if (this.#left < 0) {
        if (this.#buffer.length < 2) break;
        this.#buffer = this.#buffer.subarray(2);
        this.#left = 0;
      }
      const line = this.#buffer.indexOf("\r\n");
      if (line === -1 || this.done) break;
      const size = parseInt(this.#buffer.subarray(0, line).toString("latin1"), 16);
      this.#buffer = this.#buffer.subarray(line + 2);
      if (size === 0) {
        this.done = true;
        break;
      }
      this.#left = size;
    }
    return Buffer.concat(out);
  }
}
