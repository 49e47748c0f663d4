// HTTP/2 from the agent on an intercepted connection. Node's HTTP/2 server (nghttp2) parses the
// frames and holds the limits below; its compatibility objects stand in for HTTP/1.1's request and
// response, so every stream goes through the same handleRequest as an HTTP/1.1 request: decided on
// its :authority (which must equal the SNI or CONNECT name, as Host must), :method and :path.
import http2, {
  Http2ServerRequest,
  Http2ServerResponse,
  type Http2Server,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { IncomingMessage } from "node:http";
import type { RequestLine } from "./target.ts";

/** Limits of one agent HTTP/2 connection (each also bounds what one connection can cost). */
export interface H2Limits {
  /** Streams open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number;
  /** Largest header list of one request, decoded (SETTINGS_MAX_HEADER_LIST_SIZE). */
  maxHeaderListSize: number;
  /** Idle connection timeout. */
  idleTimeoutMs: number;
}

/**
 * Headers HTTP/2 forbids in a message (RFC 9113 §8.2.2); Node's HTTP/2 refuses to send them, so
 * answers written for HTTP/1.1 (`connection: close`) lose them here.
 */
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/**
 * The response of one agent stream: Node's compatibility response with what the data path needs of
 * an HTTP/1.1 ServerResponse — `destroyed`, and `writeHead` taking a reason phrase (HTTP/2 has none)
 * and headers written for HTTP/1.1 (connection-specific ones dropped).
 */
export class AgentH2Response extends Http2ServerResponse {
  constructor(stream: ServerHttp2Stream) {
    super(stream);
    // Declared by the typings, absent at run time: the stream's own.
    Object.defineProperty(this, "destroyed", { get: () => this.stream.destroyed, configurable: true });
  }

  override writeHead(
    statusCode: number,
    message?: string | OutgoingHttpHeaders | readonly string[],
    headers?: OutgoingHttpHeaders | readonly string[],
  ): this {
    const given = typeof message === "string" ? headers : message;
    return super.writeHead(statusCode, given === undefined ? undefined : withoutConnectionHeaders(given));
  }
}

function withoutConnectionHeaders(
  headers: OutgoingHttpHeaders | readonly string[],
): OutgoingHttpHeaders | string[] {
  if (!isList(headers)) {
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers))
      if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) out[name] = value;
    return out;
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) out.push(name, headers[i + 1] as string);
  }
  return out;
}

function isList(headers: OutgoingHttpHeaders | readonly string[]): headers is readonly string[] {
  return Array.isArray(headers);
}

/**
 * The agent's HTTP/2 server: never listens; the boundary hands it TLS connections that chose h2.
 * Beyond the limits given: no server push, at most 32 settings per SETTINGS frame, at most 10
 * pings of the sidecar's own outstanding; a burst of 1,000 reset streams (then 33 a second), 100
 * refused streams or 1,000 invalid frames end the connection (rapid reset); 10 MB of session
 * memory. nghttp2 itself cuts CONTINUATION floods (at most 8 CONTINUATION frames per header
 * block) and PING and SETTINGS floods (at most 1,000 acknowledgements queued).
 */
export function createAgentH2Server(limits: H2Limits): Http2Server {
  const server = http2.createServer({
    settings: {
      enablePush: false,
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: limits.maxHeaderListSize,
    },
    maxHeaderListPairs: 256,
    maxSettings: 32,
    maxOutstandingPings: 10,
    maxSessionMemory: 10,
    maxSessionRejectedStreams: 100,
    maxSessionInvalidFrames: 1000,
    streamResetBurst: 1000,
    streamResetRate: 33,
    Http2ServerResponse: AgentH2Response,
  });
  server.setTimeout(limits.idleTimeoutMs);
  return server;
}

/** True when `req` arrived over HTTP/2. */
export function isH2Request(req: IncomingMessage | Http2ServerRequest): req is Http2ServerRequest {
  return req.httpVersionMajor === 2;
}

/** Each HTTP/2 request's line, built once. */
const lines = new WeakMap<Http2ServerRequest, RequestLine>();

/**
 * An HTTP/2 request's addressing as HTTP/1.1 would carry it: its path, and its headers with
 * :authority as Host and the other pseudo-headers left out. A request with both :authority and a
 * Host header that differ keeps both, and is refused as having two Host headers.
 */
export function h2RequestLine(req: Http2ServerRequest): RequestLine {
  // Asked for by each step of one request (its target, hook, placeholders, outgoing headers).
  const known = lines.get(req);
  if (known !== undefined) return known;
  const raw = req.rawHeaders;
  const out: string[] = [];
  let authority: string | undefined;
  let host: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (name === ":authority") authority = value;
    else if (name.startsWith(":")) continue;
    else {
      if (name === "host") host = value;
      out.push(name, value);
    }
  }
  if (authority !== undefined && authority !== host) out.unshift("host", authority);
  const line = { url: req.url, rawHeaders: out };
  lines.set(req, line);
  return line;
}

/** A header list's size as HTTP/2 counts it (RFC 9113 §6.5.2): name and value octets, plus 32 each. */
export function headerListSize(raw: string[]): number {
  let size = 0;
  for (let i = 0; i + 1 < raw.length; i += 2)
    size += (raw[i] as string).length + (raw[i + 1] as string).length + 32;
  return size;
}

/** True when an HTTP/2 request carries a body (its HEADERS frame did not end the stream). */
export function h2HasBody(req: Http2ServerRequest): boolean {
  return !req.stream.endAfterHeaders;
}

/**
 * Trailers as the agent may receive them: pseudo-headers and connection-specific fields left out.
 * (A flat name/value list, as response headers are handled.)
 */
export function forwardableTrailers(
  trailers: Record<string, unknown> | null | undefined,
): [string, string][] {
  const out: [string, string][] = [];
  if (trailers === null || trailers === undefined) return out;
  for (const [name, value] of Object.entries(trailers)) {
    const lower = name.toLowerCase();
    if (lower.startsWith(":") || CONNECTION_SPECIFIC.has(lower) || lower === "te" || lower === "trailer")
      continue;
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) {
      if (item === undefined || item === null) continue;
      out.push([lower, Buffer.isBuffer(item) ? item.toString("latin1") : String(item)]);
    }
  }
  return out;
}
