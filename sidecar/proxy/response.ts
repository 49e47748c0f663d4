// The way back: an upstream's response relayed to the agent. On an inject path everything of it
// that reaches the agent passes one scrubbing step (status line, header names and values, body),
// and what the sidecar cannot read fully is refused rather than passed on. What is never relayed
// on any path: 1xx interim responses and trailers (nothing an agent needs from an upstream, and
// two more places a reflection could hide).
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import { finished, Transform, type Readable, type TransformCallback } from "node:stream";
import zlib from "node:zlib";
import { DECISION_HEADER } from "../constants.ts";
import { forwardableHeaders, pairHeaders } from "./inject.ts";
import { ScrubStream, scrubText } from "./scrub.ts";

/** Response headers that describe the body as the upstream sent it; a decoded body drops them. */
const BODY_FRAMING = ["content-length", "content-encoding"];

/** How a response is relayed: `patterns` non-empty means an inject path (scrub, refuse unreadable). */
export interface RelayPlan {
  method: string;
  patterns: Buffer[];
  outcome: "inject" | "allow";
  /** Told how many occurrences were replaced, each time some were. */
  onScrub: (count: number) => void;
}

/** Why a response on an inject path cannot be relayed (it would reach the agent unread). */
export type Unreadable = { reason: string };

/**
 * The status line, headers and body to send the agent, or why the response is refused. On an
 * inject path: the reason phrase is the standard one for the code (the upstream's could carry
 * the value); a header whose name holds a credential form is dropped, values are scrubbed;
 * transfer-codings other than chunked, and content-codings the sidecar cannot decode or that
 * are nested, are refused.
 */
export function relayedResponse(
  upRes: IncomingMessage,
  plan: RelayPlan,
): ({ ok: true } & Relayed) | { ok: false; unreadable: Unreadable } {
  const status = upRes.statusCode ?? 502;
  const scrubbing = plan.patterns.length > 0;
  if (!scrubbing) {
    const headers = forwardableHeaders(pairHeaders(upRes.rawHeaders)).flat();
    headers.push(DECISION_HEADER, plan.outcome);
    return { ok: true, status, message: upRes.statusMessage ?? "", headers, body: upRes };
  }
  const transfer = codings(upRes.headers["transfer-encoding"]).filter((c) => c !== "chunked");
  if (transfer.length > 0)
    return { ok: false, unreadable: { reason: `transfer-coding ${transfer.join(", ")} cannot be read` } };
  const content = codings(upRes.headers["content-encoding"]);
  const hasBody =
    plan.method !== "HEAD" && status !== 204 && status !== 304 && upRes.headers["content-length"] !== "0";
  const decoding: BodyDecoding = hasBody ? bodyDecoding(content) : { kind: "as-sent" };
  if (decoding.kind === "unreadable")
    return { ok: false, unreadable: { reason: `content-coding ${content.join(", ")} cannot be read` } };

  const headers: string[] = [];
  const dropped = decoding.kind === "decoded" || content.length === 0 ? BODY_FRAMING : ["content-length"];
  for (const [name, value] of forwardableHeaders(pairHeaders(upRes.rawHeaders), dropped)) {
    const named = scrubText(name, plan.patterns);
    if (named.count > 0) {
      plan.onScrub(named.count);
      continue;
    }
    const scrubbed = scrubText(value, plan.patterns);
    if (scrubbed.count > 0) plan.onScrub(scrubbed.count);
    headers.push(name, scrubbed.text);
  }
  headers.push(DECISION_HEADER, plan.outcome);
  const scrubber = new ScrubStream(plan.patterns, plan.onScrub);
  const body =
    decoding.kind === "as-sent"
      ? chain([upRes, scrubber])
      : chain([upRes, decoding.decoder, new NotCompressedAgain(), scrubber]);
  const message = STATUS_CODES[status] ?? "";
  return { ok: true, status, message, headers, body };
}

/** A response ready to send the agent. */
export interface Relayed {
  status: number;
  message: string;
  headers: string[];
  body: Readable;
}

/** Body bytes held back to be written together (a few chunks of one read), at most. */
const COALESCE_BYTES = 64 * 1024;

/**
 * Writes a relayed response with backpressure. The head waits for the body's first bytes (or its
 * end): a body that fails at once — a bad chunk, a coding that does not decode or is nested —
 * can still become a 502 rather than a truncated answer. The chunks that arrive together (one
 * upstream read, the scrubber's output and its carry-over) are written together, at the latest
 * when the event loop next turns (setImmediate), so a streamed body is never held back waiting for
 * more; a body that ends before then goes out as one write with the head, framed with its
 * Content-Length, instead of a head, a chunk and a separate last chunk (each its own TLS record
 * and packet). `onEnd` gets undefined when the agent has it all, or the error that cut the body
 * short.
 */
export function sendRelayed(
  res: ServerResponse,
  relayed: Relayed,
  onBytes: (count: number) => void,
  onEnd: (err: Error | undefined) => void,
): void {
  let started = false;
  const start = (length?: number): void => {
    if (started || res.destroyed) return;
    started = true;
    const framed =
      length !== undefined && !hasHeader(relayed.headers, "content-length")
        ? [...relayed.headers, "Content-Length", String(length)]
        : relayed.headers;
    res.writeHead(relayed.status, relayed.message, framed);
  };
  const { body } = relayed;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0 || res.destroyed) return;
    const chunks = pending;
    pending = [];
    pendingBytes = 0;
    start();
    let ok = true;
    if (chunks.length > 1) res.cork();
    for (const chunk of chunks) ok = res.write(chunk);
    if (chunks.length > 1) res.uncork();
    if (!ok) body.pause();
  };
  body.on("data", (chunk: Buffer) => {
    onBytes(chunk.length);
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= COALESCE_BYTES) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  res.on("drain", () => body.resume());
  finished(body, (err) => {
    if (err) {
      pending = [];
      onEnd(err);
      return;
    }
    const rest = pending.length === 1 ? pending[0] : pending.length > 1 ? Buffer.concat(pending) : undefined;
    pending = [];
    if (rest !== undefined && !started) start(rest.length);
    else start();
    const ended = (): void => {
      onEnd(undefined);
    };
    if (rest !== undefined) res.end(rest, ended);
    else res.end(ended);
  });
}

/** True when the flat name/value list has a header `name` (lower-case). */
function hasHeader(headers: string[], name: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]?.toLowerCase() === name) return true;
  return false;
}

/**
 * Pipes `streams` into one another and returns the last; an error or premature close of any of
 * them destroys them all, the last with that error (so its reader sees it). What
 * stream.pipeline does, without the AbortController (and the DOMException, with a stack trace)
 * it creates and aborts for every response.
 */
function chain(streams: [Readable, ...Transform[]]): Readable {
  const last = streams[streams.length - 1] as Readable;
  let failed = false;
  const fail = (err: Error): void => {
    if (failed) return;
    failed = true;
    for (const stream of streams) if (stream !== last) stream.destroy();
    last.destroy(err);
  };
  for (let i = 0; i < streams.length; i++) {
    const stream = streams[i] as Readable;
    const next = streams[i + 1] as Transform | undefined;
    if (next !== undefined) stream.pipe(next);
    finished(stream, (err) => {
      if (err) fail(err);
    });
  }
  return last;
}

function codings(header: string | undefined): string[] {
  return (header ?? "")
    .split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "" && c !== "identity");
}

/**
 * How a response body reaches the scrubber: as the upstream sent it (no body, or no
 * content-coding), through the decoder of its one content-coding, or not at all (a coding the
 * sidecar cannot read, or more than one).
 */
type BodyDecoding = { kind: "as-sent" } | { kind: "decoded"; decoder: Transform } | { kind: "unreadable" };

/** The decoding of a body whose content-codings (identity left out) are `content`. */
function bodyDecoding(content: string[]): BodyDecoding {
  if (content.length === 0) return { kind: "as-sent" };
  if (content.length > 1) return { kind: "unreadable" };
  switch (content[0]) {
    case "gzip":
    case "x-gzip":
      return { kind: "decoded", decoder: zlib.createGunzip() };
    case "deflate":
      return { kind: "decoded", decoder: zlib.createInflate() };
    case "br":
      return { kind: "decoded", decoder: zlib.createBrotliDecompress() };
    case "zstd":
      return { kind: "decoded", decoder: zlib.createZstdDecompress() };
    default:
      return { kind: "unreadable" };
  }
}

/**
 * Fails a decoded body that starts with a gzip header: a second coding under one
 * Content-Encoding would reach the agent still compressed, out of the scrubber's sight.
 */
class NotCompressedAgain extends Transform {
  #head: Buffer | undefined = Buffer.alloc(0);

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#head === undefined) {
      callback(null, chunk);
      return;
    }
    const head = Buffer.concat([this.#head, chunk]);
    if (head.length < 2) {
      this.#head = head;
      callback();
      return;
    }
    this.#head = undefined;
    if (head[0] === 0x1f && head[1] === 0x8b) callback(new Error("nested content-coding"));
    else callback(null, head);
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.#head !== undefined && this.#head.length > 0 ? this.#head : undefined);
  }
}
