// Keep-alive connections to upstreams, on undici's HTTP client: HTTP/2 when the upstream offers it
// in ALPN, else HTTP/1.1 (each side of the sidecar speaks what its peer does). One pool per resolved target
// (scheme, name, port and the address the sidecar checked), each dialling only that address: the
// name is never resolved again here. Upstream TLS is verified against the sidecar's roots, for the
// name the request was decided on. Why undici rather than http.request: on the credential path the
// upstream hop through ClientRequest, IncomingMessage and http.Agent cost about as much CPU as
// everything else together (docs/benchmarks.md, docs/decisions.md).
import { createRequire } from "node:module";
import net, { type Socket } from "node:net";
import tls from "node:tls";
import type { buildConnector } from "undici";

// The pool alone, not the package's index: the index loads fetch, WebSocket, caches and mocks
// too, 13 MiB more resident memory in every sidecar for nothing it uses. The version is pinned
// exactly (package.json), and every data-path test goes through this module.
const Pool = createRequire(import.meta.url)("undici/lib/dispatcher/pool.js") as typeof import("undici").Pool;
type Pool = InstanceType<typeof Pool>;

/** Where one request goes: the decided name and port, and the checked address to dial. */
export interface UpstreamTarget {
  secure: boolean;
  /** The canonical host the request was decided on (a name, or an IP literal). */
  host: string;
  port: number;
  /** The address the sidecar resolved and checked; the only one dialled. */
  address: string;
  family: number;
  /** True when `host` is an IP literal: no SNI, the certificate is checked for the address. */
  isIp: boolean;
  /** HTTP/1.1 only (a WebSocket upgrade): h2 is not offered in ALPN. */
  http1Only?: boolean;
}

/** Most pools kept; the least recently used beyond it is closed once its requests finish. */
const MAX_POOLS = 256;
/** Most connections to one target at once (the rest wait in the pool's queue). */
const MAX_CONNECTIONS = 256;
/** TLS sessions kept for resumption, one per (name, address, port). */
const MAX_SESSIONS = 100;

/** The pools of one sidecar. */
export class UpstreamPools {
  readonly timeoutMs: number;
  #context: tls.SecureContext;
  #pools = new Map<string, Pool>();
  #sessions = new Map<string, Buffer>();

  /**
   * `roots` are parsed once into one SecureContext every upstream connection shares (parsing the
   * bundle per connection cost milliseconds each, and far more memory on error paths).
   */
  constructor(roots: string[], timeoutMs = 30_000) {
    this.timeoutMs = timeoutMs;
    this.#context = tls.createSecureContext({ ca: roots, minVersion: "TLSv1.2" });
  }

  /** The pool for `target`, created on first use. */
  pool(target: UpstreamTarget): Pool {
    const http1Only = target.http1Only === true || !target.secure;
    const key = `${target.secure ? "https" : "http"} ${target.host} ${target.port} ${target.address}${http1Only ? "" : " h2"}`;
    const found = this.#pools.get(key);
    if (found !== undefined) {
      // Most recently used last: the first entry is the one to evict.
      this.#pools.delete(key);
      this.#pools.set(key, found);
      return found;
    }
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    const pool = new Pool(`${target.secure ? "https" : "http"}://${host}:${target.port}`, {
      connections: MAX_CONNECTIONS,
      pipelining: 1,
      allowH2: !http1Only,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: (_options: buildConnector.Options, callback: buildConnector.Callback) => {
        this.#dial(target, http1Only, callback);
      },
    });
    this.#pools.set(key, pool);
    if (this.#pools.size > MAX_POOLS) {
      const [oldestKey, oldest] = this.#pools.entries().next().value as [string, Pool];
      this.#pools.delete(oldestKey);
      oldest.close().catch(() => undefined);
    }
    return pool;
  }

  /** Closes every connection now (the sidecar is stopping). */
  destroy(): void {
    for (const pool of this.#pools.values()) pool.destroy().catch(() => undefined);
    this.#pools.clear();
  }

  /** Dials exactly the checked address; for TLS, verifies the certificate for the decided name. */
  #dial(target: UpstreamTarget, http1Only: boolean, callback: buildConnector.Callback): void {
    let settled = false;
    const settle = (...args: [null, Socket] | [Error, null]): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      callback(...args);
    };
    const sessionKey = `${target.host} ${target.address} ${target.port}`;
    const socket = target.secure
      ? tls.connect({
          host: target.address,
          port: target.port,
          secureContext: this.#context,
          rejectUnauthorized: true,
          ALPNProtocols: http1Only ? ["http/1.1"] : ["h2", "http/1.1"],
          // An IP literal is verified as the address it is (and TLS sends no SNI for it).
          ...(target.isIp ? {} : { servername: target.host }),
          ...(this.#sessions.has(sessionKey) ? { session: this.#sessions.get(sessionKey) } : {}),
        })
      : net.connect({ host: target.address, port: target.port, family: target.family, noDelay: true });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy(Object.assign(new Error("upstream connect timed out"), { code: "UpstreamTimeout" }));
    }, this.timeoutMs);
    if (socket instanceof tls.TLSSocket)
      socket.on("session", (session: Buffer) => {
        this.#sessions.delete(sessionKey);
        this.#sessions.set(sessionKey, session);
        if (this.#sessions.size > MAX_SESSIONS) {
          const oldest = this.#sessions.keys().next().value;
          if (oldest !== undefined) this.#sessions.delete(oldest);
        }
      });
    socket.once(target.secure ? "secureConnect" : "connect", () => {
      settle(null, socket);
    });
    socket.once("error", (err: Error) => {
      settle(err, null);
    });
  }
}
