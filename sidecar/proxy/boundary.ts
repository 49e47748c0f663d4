// The listeners of the data path. Every entry — explicit HTTP, CONNECT, and the transparent
// listener — ends in the same two places: handleRequest for each HTTP request, and
// handleStream for a byte stream whose protocol is found by peeking at its first bytes.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import {
  constants as http2Constants,
  type Http2Server,
  type Http2ServerRequest,
  type ServerHttp2Session,
} from "node:http2";
import net, { type Socket } from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { capturedPort } from "../capture/port-address.ts";
import { http } from "../process/http.ts";
import { isLocalAddress } from "../net/local-address.ts";
import { canonicalHost } from "../policy/index.ts";
import type { Entry } from "../policy/index.ts";
import { parseClientHello, sniffHttp } from "../tls/client-hello.ts";
import {
  blockAnswer,
  clientErrorAnswer,
  rawAnswer,
  sendAnswer,
  sendBlock,
  sendRawAnswer,
  tlsRefusal,
} from "./answers.ts";
import type { Gate } from "./gate.ts";
import { createUpstreams, handleRequest, type ConnContext, type Upstreams } from "./forward.ts";
import { AgentH2Response, createAgentH2Server, headerListSize } from "./h2.ts";
import { PipelineGate } from "./pipeline.ts";
import { passthrough } from "./passthrough.ts";
import { PrefixedSocket } from "./prefixed-socket.ts";
import { parseAuthority } from "./target.ts";
import { isRelayable, isWebSocketUpgrade, type RelayedSocket } from "./websocket.ts";
import { blockVerdict, type Verdict } from "./verdict.ts";

/** Limits that keep one slow or hostile connection from affecting others. */
export interface BoundaryLimits {
  /** Time to send the first bytes of a tunnel (ClientHello or request line). */
  peekTimeoutMs: number;
  /** Largest ClientHello accepted. */
  maxPeekBytes: number;
  maxHeaderSize: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  /** Pipelined requests of one connection forwarded at once; the rest wait their turn. */
  maxInFlightPerConnection: number;
  /** Pipelined requests of one connection waiting their turn; one more closes the connection. */
  maxQueuedPerConnection: number;
  /** HTTP/2 streams open at once on one agent connection. */
  maxConcurrentStreams: number;
  /** How long an upstream may take to connect, answer, or send the next body bytes. */
  upstreamTimeoutMs: number;
}

const DEFAULT_LIMITS: BoundaryLimits = {
  peekTimeoutMs: 10_000,
  maxPeekBytes: 64 * 1024,
  maxHeaderSize: 16 * 1024,
  headersTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  maxInFlightPerConnection: 16,
  maxQueuedPerConnection: 256,
  maxConcurrentStreams: 100,
  upstreamTimeoutMs: 30_000,
};

/** How a raw stream reached the boundary, for deciding it by its first bytes (`handleStream`). */
export interface StreamOptions {
  entry: Entry;
  /** The name and port the stream was opened for (CONNECT); its SNI or Host must equal them. */
  bound?: { host: string; port: number };
  /** The port the agent dialled: the CONNECT port, or the one the capture rules recorded. */
  port: number;
  client?: string | undefined;
}

/** The data path of one sidecar: servers, tunnel handling, shared upstream pools. */
export class Boundary {
  readonly gate: Gate;
  readonly upstreams: Upstreams;
  /** Bounds the pipelined requests of each connection (outstanding work of a client not reading). */
  readonly pipeline: PipelineGate;
  #limits: BoundaryLimits;
  #contexts = new WeakMap<object, ConnContext>();
  /** Raw sockets the HTTP servers no longer manage (CONNECT tunnels, captured connections). */
  #raw = new Set<Socket>();
  /** Parses HTTP on connections the boundary hands it (tunnels, intercepted TLS); never listens. */
  #inner: Server;
  /** Serves the intercepted TLS connections whose agent chose HTTP/2 (ALPN h2); never listens. */
  #innerH2: Http2Server;
  #h2Contexts = new WeakMap<ServerHttp2Session, ConnContext>();
  /** The context of the connection being handed to #innerH2 (its session is created at once). */
  #h2Handover: ConnContext | undefined;

  constructor(gate: Gate, limits: Partial<BoundaryLimits> = {}) {
    this.gate = gate;
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
    this.upstreams = createUpstreams(gate.upstreamRoots, this.#limits.upstreamTimeoutMs);
    this.pipeline = new PipelineGate({
      maxInFlight: this.#limits.maxInFlightPerConnection,
      maxQueued: this.#limits.maxQueuedPerConnection,
    });
    this.#inner = this.#httpServer((req) => this.#contexts.get(req.socket));
    this.#innerH2 = this.#h2Server();
  }

  /** Ends every tunnel and captured connection (the servers close their own connections). */
  close(): void {
    for (const socket of this.#raw) socket.destroy();
    this.#raw.clear();
  }

  #adopt(socket: Socket): void {
    this.#raw.add(socket);
    socket.once("close", () => this.#raw.delete(socket));
  }

  /** The explicit proxy listener (HTTP_PROXY / HTTPS_PROXY): absolute-form requests and CONNECT. */
  createExplicitServer(): Server {
    const server = this.#httpServer((req) => ({
      entry: "http",
      scheme: "http",
      client: req.socket.remoteAddress,
    }));
    server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.#onConnect(req, socket, head);
    });
    return server;
  }

  #httpServer(contextOf: (req: IncomingMessage) => ConnContext | undefined): Server {
    const server = http.createServer({
      maxHeaderSize: this.#limits.maxHeaderSize,
      headersTimeout: this.#limits.headersTimeoutMs,
      requestTimeout: 0,
      keepAliveTimeout: 5_000,
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
    });
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const ctx = contextOf(req);
      if (!ctx) {
        res.destroy();
        return;
      }
      const admission = this.pipeline.admit(req, res, () => {
        handleRequest(this.gate, this.upstreams, req, res, ctx).catch((err: unknown) => {
          this.gate.log.error({ err: String(err) }, "request handler failed");
          res.destroy();
        });
      });
      if (admission === "overflow") {
        const verdict = blockVerdict(
          "InvalidRequest",
          `more than ${this.#limits.maxQueuedPerConnection} pipelined requests waiting on one connection; read the answers before sending more`,
        );
        this.gate.record(verdict, {
          entry: ctx.entry,
          host: ctx.bound?.host ?? "",
          port: ctx.bound?.port ?? 0,
          method: req.method,
          client: ctx.client,
        });
      }
    });
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const ctx = contextOf(req);
      if (ctx && req.method === "GET" && isWebSocketUpgrade(req.headers.upgrade) && isRelayable(socket)) {
        this.#onWebSocket(req, socket, head, ctx);
        return;
      }
      const verdict = blockVerdict(
        "UnsupportedProtocol",
        "only WebSocket upgrades (GET, Upgrade: websocket) are relayed; h2c and other protocol upgrades are refused",
      );
      this.#refuseRaw(socket, verdict, req.headers.host);
      this.gate.record(verdict, {
        entry: contextOf(req)?.entry ?? "http",
        host: "",
        port: 0,
        method: req.method,
      });
    });
    server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
      // Malformed requests get a plain 4xx and the connection closes; nothing is forwarded.
      if (socket.writable) socket.end(rawAnswer(clientErrorAnswer(err.code)));
      socket.destroy();
    });
    server.setTimeout(this.#limits.idleTimeoutMs);
    return server;
  }

  #h2Server(): Http2Server {
    const server = createAgentH2Server({
      maxConcurrentStreams: this.#limits.maxConcurrentStreams,
      maxHeaderListSize: this.#limits.maxHeaderSize,
      idleTimeoutMs: this.#limits.idleTimeoutMs,
    });
    server.on("session", (session: ServerHttp2Session) => {
      const ctx = this.#h2Handover;
      this.#h2Handover = undefined;
      if (ctx === undefined) {
        session.destroy();
        return;
      }
      this.#h2Contexts.set(session, ctx);
      session.on("error", () => {
        session.destroy();
      });
    });
    server.on("request", (req: Http2ServerRequest, res: AgentH2Response) => {
      const ctx = this.#h2Contexts.get(req.stream.session as ServerHttp2Session);
      if (!ctx) {
        res.stream.close(http2Constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      // Refused before any decision: answered, then recorded as for any request.
      const refuse = (verdict: Verdict, answer: () => void): void => {
        answer();
        this.gate.record(verdict, {
          entry: ctx.entry,
          host: ctx.bound?.host ?? "",
          port: ctx.bound?.port ?? 0,
          method: req.method,
          client: ctx.client,
        });
      };
      const response = res as unknown as ServerResponse;
      if (req.method === "CONNECT") {
        const verdict = blockVerdict(
          "UnsupportedProtocol",
          "CONNECT inside HTTP/2 (and WebSocket over HTTP/2, RFC 8441) is refused; open WebSocket over HTTP/1.1",
        );
        refuse(verdict, () => {
          sendBlock(response, verdict, ctx.bound?.host);
        });
        return;
      }
      const size = headerListSize(req.rawHeaders);
      if (size > this.#limits.maxHeaderSize) {
        // Node's HTTP/2 advertises the limit but enforces only its own (64 KiB): held here.
        const verdict = blockVerdict(
          "InvalidRequest",
          `header list of ${size} bytes is over the ${this.#limits.maxHeaderSize}-byte limit`,
        );
        refuse(verdict, () => {
          sendAnswer(response, clientErrorAnswer("HPE_HEADER_OVERFLOW"));
        });
        return;
      }
      // Each stream is a request of its own; the connection's limits bound how many run at once.
      handleRequest(this.gate, this.upstreams, req as unknown as IncomingMessage, response, ctx).catch(
        (err: unknown) => {
          this.gate.log.error({ err: String(err) }, "request handler failed");
          res.stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
        },
      );
    });
    return server;
  }

  /**
   * A WebSocket upgrade request: decided, credentialed and forwarded like any request (its answer
   * written through a response of its own, the connection closed after anything but a 101); on a
   * 101 the frames are relayed (websocket.ts).
   */
  #onWebSocket(req: IncomingMessage, socket: RelayedSocket, head: Buffer, ctx: ConnContext): void {
    socket.on("error", () => socket.destroy());
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    // A TLSSocket, a Socket or a PrefixedSocket (which stands in for one, as for the server itself).
    res.assignSocket(socket as unknown as Socket);
    res.once("finish", () => {
      socket.end();
    });
    handleRequest(this.gate, this.upstreams, req, res, ctx, { socket, head }).catch((err: unknown) => {
      this.gate.log.error({ err: String(err) }, "upgrade handler failed");
      socket.destroy();
    });
  }

  #refuseRaw(socket: Duplex, verdict: Verdict, host: string | undefined): void {
    sendRawAnswer(socket, blockAnswer(verdict, host, true));
  }

  #onConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    this.#adopt(socket);
    const client = socket.remoteAddress;
    const refuse = (verdict: Verdict, host: string, port: number): void => {
      // Nothing the agent sends after a refused CONNECT is read, let alone forwarded.
      socket.pause();
      this.#refuseRaw(socket, verdict, host);
      this.gate.record(verdict, { entry: "connect", host, port, method: "CONNECT", client });
    };
    const authority = parseAuthority(req.url ?? "");
    if (!authority.ok || authority.value.port === undefined) {
      refuse(blockVerdict("InvalidRequest", "CONNECT needs host:port"), "", 0);
      return;
    }
    const canonical = canonicalHost(authority.value.host);
    if (canonical.kind === "invalid") {
      refuse(blockVerdict("InvalidRequest", canonical.message), "", authority.value.port);
      return;
    }
    const host = canonical.kind === "ip" ? canonical.address : canonical.name;
    const port = authority.value.port;
    const tunnel = this.gate.evaluateTunnel({ host, port, entry: "connect" });
    if (tunnel.action === "block") {
      refuse(tunnel.decision, host, port);
      return;
    }
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    this.handleStream(socket, head, { entry: "connect", bound: { host, port }, port, client });
  }

  /**
   * The transparent listener: the target of the capture rules (airlock init). The port the agent
   * dialled is read back from the local address the rules encoded it in (127.0.X.Y, X.Y = port);
   * a connection whose port cannot be known, or that does not come from this pod, is refused.
   */
  createTransparentServer(): net.Server {
    return net.createServer({ pauseOnConnect: true }, (socket) => {
      socket.on("error", () => socket.destroy());
      this.#adopt(socket);
      const client = socket.remoteAddress;
      const port = capturedPort(socket.localAddress);
      const refuse = (verdict: Verdict): void => {
        socket.destroy();
        this.gate.record(verdict, { entry: "transparent-tls", host: "", port: port ?? 0, client });
      };
      if (!isLocalAddress(client)) {
        refuse(
          blockVerdict("UnsupportedProtocol", "the transparent listener only serves this pod's own traffic"),
        );
        return;
      }
      if (port === undefined) {
        refuse(
          blockVerdict(
            "OriginalPortUnknown",
            "the capture rules did not record this connection's port; use the explicit proxy (HTTPS_PROXY) or add the port to airlock init --capture-ports",
          ),
        );
        return;
      }
      this.handleStream(socket, Buffer.alloc(0), { entry: "transparent-tls", port, client });
    });
  }

  /**
   * Decides a raw stream by its first bytes: a TLS ClientHello by its SNI (passthrough or
   * interception), HTTP/1.x request by request, anything else refused. `bound` is the name the
   * stream was opened for (CONNECT); the SNI or Host must equal it.
   */
  handleStream(socket: Socket, head: Buffer, options: StreamOptions): void {
    let buffered = head;
    let decided = false;
    const timer = setTimeout(() => {
      finish({
        kind: "refuse",
        verdict: blockVerdict("UnsupportedProtocol", "no request within the peek timeout"),
      });
    }, this.#limits.peekTimeoutMs);
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      examine();
    };
    const finish = (
      result: { kind: "tls"; sni: string | null } | { kind: "http" } | { kind: "refuse"; verdict: Verdict },
    ): void => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      if (result.kind === "tls") this.#onTls(socket, buffered, result.sni, options);
      else if (result.kind === "http") this.#onHttp(socket, buffered, options);
      else {
        socket.destroy();
        this.gate.record(result.verdict, {
          entry: options.entry,
          host: options.bound?.host ?? "",
          port: options.port,
          client: options.client,
        });
      }
    };
    const examine = (): void => {
      const hello = parseClientHello(buffered);
      if (hello.state === "ok") finish({ kind: "tls", sni: hello.sni });
      else if (hello.state === "invalid")
        finish({
          kind: "refuse",
          verdict: blockVerdict("InvalidRequest", `bad TLS ClientHello: ${hello.message}`),
        });
      else if (hello.state === "not-tls") {
        const http = sniffHttp(buffered);
        if (http === "http") finish({ kind: "http" });
        else if (http === "not-http")
          finish({
            kind: "refuse",
            verdict: blockVerdict("UnsupportedProtocol", "neither TLS nor HTTP/1.x"),
          });
      }
      if (buffered.length > this.#limits.maxPeekBytes)
        finish({ kind: "refuse", verdict: blockVerdict("InvalidRequest", "ClientHello too large") });
    };
    socket.on("data", onData);
    socket.once("close", () => {
      clearTimeout(timer);
    });
    if (buffered.length > 0) examine();
    socket.resume();
  }

  #onHttp(socket: Socket, buffered: Buffer, options: StreamOptions): void {
    const wrapped = new PrefixedSocket(socket, buffered);
    const entry: Entry = options.entry === "connect" ? "connect" : "transparent-http";
    // A captured connection is bound to the port the agent dialled; its Host names the rest.
    const bound = options.bound ?? { port: options.port };
    this.#contexts.set(wrapped, { entry, scheme: "http", bound, client: socket.remoteAddress });
    this.#inner.emit("connection", wrapped);
  }

  #onTls(socket: Socket, buffered: Buffer, sniRaw: string | null, options: StreamOptions): void {
    const entry: Entry = options.entry === "connect" ? "connect" : "transparent-tls";
    const refuse = (verdict: Verdict, host: string): void => {
      socket.end(tlsRefusal());
      socket.destroySoon();
      this.gate.record(verdict, { entry, host, port: options.port, client: options.client });
    };
    const sni = sniRaw === null ? null : canonicalHost(sniRaw);
    if (sni?.kind !== "name") {
      refuse(blockVerdict("InvalidRequest", "TLS without a server name (SNI) cannot be decided"), "");
      return;
    }
    if (options.bound && options.bound.host !== sni.name) {
      refuse(blockVerdict("HostMismatch", `SNI ${sni.name} differs from the CONNECT target`), sni.name);
      return;
    }
    const tunnel = this.gate.evaluateTunnel({ host: sni.name, port: options.port, entry });
    if (tunnel.action === "block") {
      refuse(tunnel.decision, sni.name);
      return;
    }
    if (tunnel.action === "passthrough") {
      passthrough(this.gate, this.upstreams.timeoutMs, socket, buffered, {
        host: sni.name,
        port: options.port,
        decision: tunnel.decision,
        entry,
        client: options.client,
      });
      return;
    }
    socket.unshift(buffered);
    const before = this.gate.ca.issuedCount;
    const secure = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: this.gate.ca.contextFor(sni.name),
      ALPNProtocols: ["h2", "http/1.1"],
    });
    if (this.gate.ca.issuedCount > before) this.gate.metrics.certificatesIssued.inc();
    secure.on("error", () => secure.destroy());
    const ctx: ConnContext = {
      entry,
      scheme: "https",
      bound: { host: sni.name, port: options.port },
      client: options.client,
    };
    // The protocol is known once the handshake is done; until then nothing is read from it.
    secure.once("secure", () => {
      if (secure.alpnProtocol === "h2") {
        // What a tls.Server does once its handshake is done; the HTTP/2 session waits for it.
        (secure as tls.TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
        this.#h2Handover = ctx;
        this.#innerH2.emit("connection", secure);
        this.#h2Handover = undefined;
      } else {
        this.#contexts.set(secure, ctx);
        this.#inner.emit("connection", secure);
      }
    });
  }
}
