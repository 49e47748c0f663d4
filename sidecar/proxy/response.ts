// The way back: an upstream's response relayed to the agent. On an inject path everything of it
// that reaches the agent passes one scrubbing step (status line, header names and values, body),
// and what the sidecar cannot read fully is refused rather than passed on. What is never relayed
// on any path: 1xx interim responses (nothing an agent needs from an upstream, and one more place
// a reflection could hide). Trailers reach an HTTP/2 agent (gRPC's status is in them), scrubbed as
// headers are; an HTTP/1.1 agent never gets them.
import type { ServerResponse } from "node:http";
import { http } from "../process/http.ts";
import { finished, Readable, Transform, type TransformCallback } from "node:stream";
import zlib from "node:zlib";
import { DECISION_HEADER } from "../constants.ts";
import { forwardableHeaders, pairHeaders, type HeaderList } from "./inject.ts";
import { GrpcScrubber, isGrpcContentType } from "./grpc.ts";
import { Scrubber, scrubText } from "./scrub.ts";

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

/** The status line and headers of an upstream's final response, as received. */
export interface UpstreamHead {
  status: number;
  statusMessage: string;
  /** Flat name/value list in the upstream's order and case (latin1 strings). */
  rawHeaders: string[];
}

/** Why a response on an inject path cannot be relayed (it would reach the agent unread). */
export type Unreadable = { reason: string };

/** A response ready to send the agent; its body arrives later, through a BodySink. */
export interface Relayed {
  status: number;
  message: string;
  headers: string[];
  /** On an inject path with a content-coding: the decoder the body passes before scrubbing. */
  decoder?: Transform;
  /** On an inject path: every byte of the body passes it before it is written. */
  scrubber?: BodyScrubber;
}

/** Scrubs a body as it streams: what can be sent now of each chunk, then what was held back. */
export interface BodyScrubber {
  push(chunk: Buffer): Buffer;
  end(): Buffer;
}

/**
 * The status line and headers to send the agent, and how to read the body, or why the response
 * is refused. On an inject path: the reason phrase is the standard one for the code (the
 * upstream's could carry the value); a header whose name holds a credential form is dropped,
 * values are scrubbed; transfer-codings other than chunked, and content-codings the sidecar
 * cannot decode or that are nested, are refused.
 */
export function relayedResponse(
  head: UpstreamHead,
  plan: RelayPlan,
): ({ ok: true } & Relayed) | { ok: false; unreadable: Unreadable } {
  const { status } = head;
  const scrubbing = plan.patterns.length > 0;
  if (!scrubbing) {
    const headers = forwardableHeaders(pairHeaders(head.rawHeaders)).flat();
    headers.push(DECISION_HEADER, plan.outcome);
    return { ok: true, status, message: head.statusMessage, headers };
  }
  const transfer = codings(headerValue(head.rawHeaders, "transfer-encoding")).filter((c) => c !== "chunked");
  if (transfer.length > 0)
    return { ok: false, unreadable: { reason: `transfer-coding ${transfer.join(", ")} cannot be read` } };
  const content = codings(headerValue(head.rawHeaders, "content-encoding"));
  const hasBody =
    plan.method !== "HEAD" &&
    status !== 204 &&
    status !== 304 &&
    headerValue(head.rawHeaders, "content-length") !== "0";
  const decoding: BodyDecoding = hasBody ? bodyDecoding(content) : { kind: "as-sent" };
  if (decoding.kind === "unreadable")
    return { ok: false, unreadable: { reason: `content-coding ${content.join(", ")} cannot be read` } };

  const dropped = decoding.kind === "decoded" || content.length === 0 ? BODY_FRAMING : ["content-length"];
  const forwarded = forwardableHeaders(pairHeaders(head.rawHeaders), dropped);
  const headers = scrubHeaders(forwarded, plan.patterns, plan.onScrub);
  headers.push(DECISION_HEADER, plan.outcome);
  // A gRPC body is scrubbed message by message (each keeps a correct length prefix).
  const scrubber = isGrpcContentType(headerValue(head.rawHeaders, "content-type"))
    ? new GrpcScrubber(plan.patterns, plan.onScrub)
    : new Scrubber(plan.patterns, plan.onScrub);
  const message = http.STATUS_CODES[status] ?? "";
  return decoding.kind === "as-sent"
    ? { ok: true, status, message, headers, scrubber }
    : { ok: true, status, message, headers, scrubber, decoder: decoding.decoder };
}

/**
 * `headers` as a flat name/value list with every credential form scrubbed: a header whose name
 * holds one is dropped whole (a name cannot be redacted into a valid token), values are scrubbed.
 */
export function scrubHeaders(
  headers: HeaderList,
  patterns: Buffer[],
  onScrub: (count: number) => void,
): string[] {
  const out: string[] = [];
  for (const [name, value] of headers) {
    const named = scrubText(name, patterns);
    if (named.count > 0) {
      onScrub(named.count);
      continue;
    }
    const scrubbed = scrubText(value, patterns);
    if (scrubbed.count > 0) onScrub(scrubbed.count);
    out.push(name, scrubbed.text);
  }
  return out;
}

/** The values of header `name` (lower-case) joined with ", ", or undefined when it is absent. */
function headerValue(raw: string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === name) {
      const next = raw[i + 1] as string;
      value = value === undefined ? next : `${value}, ${next}`;
    }
  return value;
}

/** Where the upstream's body goes, as it arrives. */
export interface BodySink {
  data(chunk: Buffer): void;
  /** The body is complete; `trailers` (a flat name/value list, already scrubbed) follow it. */
  end(trailers?: string[]): void;
  /** The body was cut short (the agent's response is cut too). */
  fail(err: Error): void;
}

/** Stops and restarts the upstream's body (backpressure from the agent's connection). */
export interface Flow {
  pause(): void;
  resume(): void;
}

/** Body bytes held back to be written together (a few chunks of one read), at most. */
const COALESCE_BYTES = 64 * 1024;

/**
 * Writes a relayed response with backpressure; the body is pushed into the returned sink. The
 * head waits for the body's first bytes (or its end): a body that fails at once — a bad chunk, a
 * coding that does not decode or is nested — can still become a 502 rather than a truncated
 * answer. The chunks that arrive together (one upstream read, the scrubber's output and its
 * carry-over) are written together, at the latest when the event loop next turns (setImmediate),
 * so a streamed body is never held back waiting for more; a body that ends before then goes out
 * as one write with the head, framed with its Content-Length, instead of a head, a chunk and a
 * separate last chunk (each its own TLS record and packet). `onEnd` gets undefined when the agent
 * has it all, or the error that cut the body short. No stream sits between the upstream and the
 * agent unless the body must be decoded: a Transform per response, piped and watched, cost more
 * than the scrubbing.
 */
export function relay(
  res: ServerResponse,
  relayed: Relayed,
  flow: Flow,
  onBytes: (count: number) => void,
  onEnd: (err: Error | undefined) => void,
): BodySink {
  const { decoder } = relayed;
  if (decoder === undefined) {
    res.on("drain", () => {
      flow.resume();
    });
    return bodyWriter(res, relayed, flow, onBytes, onEnd);
  }
  // A decoded body: the upstream's chunks go through the decoder, then the same writer.
  const source = new Readable({
    read() {
      flow.resume();
    },
  });
  const decoded = chain([source, decoder, new NotCompressedAgain()]);
  const writer = bodyWriter(res, relayed, decoded, onBytes, onEnd);
  let trailers: string[] | undefined;
  decoded.on("data", (chunk: Buffer) => {
    writer.data(chunk);
  });
  finished(decoded, (err) => {
    if (err) writer.fail(err);
    else writer.end(trailers);
  });
  res.on("drain", () => decoded.resume());
  return {
    data: (chunk) => {
      if (!source.push(chunk)) flow.pause();
    },
    end: (last) => {
      trailers = last;
      source.push(null);
    },
    fail: (err) => source.destroy(err),
  };
}

/** The writing half of relay(): `source` is paused when the agent's connection is full. */
function bodyWriter(
  res: ServerResponse,
  relayed: Relayed,
  source: Pick<Flow, "pause">,
  onBytes: (count: number) => void,
  onEnd: (err: Error | undefined) => void,
): BodySink {
  const { scrubber } = relayed;
  let started = false;
  let ended = false;
  const start = (length?: number): void => {
    if (started || res.destroyed) return;
    started = true;
    const framed =
      length !== undefined && !hasHeader(relayed.headers, "content-length")
        ? [...relayed.headers, "Content-Length", String(length)]
        : relayed.headers;
    res.writeHead(relayed.status, relayed.message, framed);
  };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0 || res.destroyed || ended) return;
    const chunks = pending;
    pending = [];
    pendingBytes = 0;
    start();
    let ok = true;
    if (chunks.length > 1) res.cork();
    for (const chunk of chunks) ok = res.write(chunk);
    if (chunks.length > 1) res.uncork();
    if (!ok) source.pause();
  };
  return {
    data(read: Buffer): void {
      if (ended) return;
      const chunk = scrubber ? scrubber.push(read) : read;
      if (chunk.length === 0) return;
      onBytes(chunk.length);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= COALESCE_BYTES) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    end(trailers?: string[]): void {
      if (ended) return;
      ended = true;
      const tail = scrubber?.end();
      if (tail !== undefined && tail.length > 0) {
        onBytes(tail.length);
        pending.push(tail);
      }
      const rest =
        pending.length === 1 ? pending[0] : pending.length > 1 ? Buffer.concat(pending) : undefined;
      pending = [];
      if (rest !== undefined && !started) start(rest.length);
      else start();
      const done = (): void => {
        onEnd(undefined);
      };
      if (res.destroyed) return;
      if (trailers !== undefined && trailers.length > 0) res.addTrailers(trailerObject(trailers));
      if (rest !== undefined) res.end(rest, done);
      else res.end(done);
    },
    fail(err: Error): void {
      if (ended) return;
      ended = true;
      pending = [];
      onEnd(err);
    },
  };
}

/** A flat name/value list as one object (repeated names joined with ", "). */
function trailerObject(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = flat[i + 1] as string;
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  return out;
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
