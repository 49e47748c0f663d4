// WebSocket through an intercepted host. The upgrade request is decided and credentialed like any
// request (forward.ts); after the upstream's 101 the frames are relayed both ways. The agent's
// frames go on unchanged once their header is checked; the upstream's are read whole and their
// payloads scrubbed, a message's fragments through one Scrubber so a value split across frames is
// still found, then framed again. No extension is negotiated (the agent's offer is dropped), so
// every payload is readable: a compressed frame would reach the agent unread.
import type { Duplex } from "node:stream";
import { Scrubber, scrubBytes } from "./scrub.ts";

/** Largest frame payload relayed in either direction; a bigger frame ends the connection. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** A WebSocket idle this long in both directions is closed. */
export const IDLE_MS = 120_000;

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** One parsed frame: its first byte's flags and opcode, whether masked, and the payload as sent. */
interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** The whole frame as received (header and payload). */
  raw: Buffer;
  /** Where the payload starts in `raw`. */
  payloadAt: number;
}

/** Why a frame stream is refused (the connection closes). */
export class FrameError extends Error {}

/** A frame's header: how long the whole frame is, and where its payload starts. */
interface FrameHead {
  total: number;
  payloadAt: number;
  maskAt: number | undefined;
}

/**
 * The head of the frame `head` starts (at least its first 2 bytes), or undefined when more bytes
 * are needed to know it. Throws FrameError for a frame this side must not relay.
 */
function frameHead(head: Buffer, expectMasked: boolean): FrameHead | undefined {
  const b1 = head[1] as number;
  const masked = (b1 & 0x80) !== 0;
  if (masked !== expectMasked)
    throw new FrameError(masked ? "an upstream frame was masked" : "an agent frame was not masked");
  let length = b1 & 0x7f;
  let at = 2;
  if (length === 126) {
    if (head.length < 4) return undefined;
    length = head.readUInt16BE(2);
    at = 4;
  } else if (length === 127) {
    if (head.length < 10) return undefined;
    const big = head.readBigUInt64BE(2);
    if (big > BigInt(MAX_FRAME_BYTES)) throw new FrameError(`a frame of ${big} bytes is over the limit`);
    length = Number(big);
    at = 10;
  }
  if (length > MAX_FRAME_BYTES) throw new FrameError(`a frame of ${length} bytes is over the limit`);
  const payloadAt = at + (masked ? 4 : 0);
  return { total: payloadAt + length, payloadAt, maskAt: masked ? at : undefined };
}

/**
 * Splits a byte stream into frames, refusing what a peer of this side must not send. Bytes are
 * joined once per frame, when all of it has arrived (at most MAX_FRAME_BYTES are held).
 */
class FrameReader {
  #chunks: Buffer[] = [];
  #length = 0;
  #head: FrameHead | undefined;
  #expectMasked: boolean;

  constructor(expectMasked: boolean) {
    this.#expectMasked = expectMasked;
  }

  /** The frames complete after `chunk`; throws FrameError on a frame that cannot be relayed. */
  push(chunk: Buffer): Frame[] {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.#head === undefined) {
        if (this.#length < 2) return frames;
        this.#head = frameHead(this.#first(14), this.#expectMasked);
        if (this.#head === undefined) return frames;
      }
      const head = this.#head;
      if (this.#length < head.total) return frames;
      const data = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
      const raw = data.subarray(0, head.total);
      const rest = data.subarray(head.total);
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#length = rest.length;
      this.#head = undefined;
      const b0 = raw[0] as number;
      const frame: Frame = {
        fin: (b0 & 0x80) !== 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: b0 & 0x0f,
        masked: head.maskAt !== undefined,
        raw,
        payloadAt: head.payloadAt,
      };
      checkFrame(frame);
      frames.push(frame);
    }
  }

  /** Up to the first `n` bytes held (enough for any frame header). */
  #first(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n || this.#chunks.length === 1) return first.subarray(0, n);
    const parts: Buffer[] = [];
    let got = 0;
    for (const chunk of this.#chunks) {
      parts.push(chunk);
      got += chunk.length;
      if (got >= n) break;
    }
    return Buffer.concat(parts).subarray(0, n);
  }
}

function checkFrame(frame: Frame): void {
  if (frame.rsv !== 0) throw new FrameError("a frame uses an extension none was negotiated for");
  const control = frame.opcode >= 0x8;
  if (control) {
    if (![OP_CLOSE, OP_PING, OP_PONG].includes(frame.opcode))
      throw new FrameError(`unknown control opcode ${frame.opcode}`);
    if (!frame.fin || frame.raw.length - frame.payloadAt > 125)
      throw new FrameError("a control frame is fragmented or over 125 bytes");
  } else if (![OP_CONTINUATION, OP_TEXT, OP_BINARY].includes(frame.opcode))
    throw new FrameError(`unknown data opcode ${frame.opcode}`);
}

/** An unmasked frame (upstream to agent) with `payload`. */
function frameBytes(fin: boolean, opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const head = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) head[1] = length;
  else if (length < 65536) {
    head[1] = 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([head, payload]);
}

/** A connection in the relay: a Socket, a TLSSocket, or a PrefixedSocket standing in for one. */
export type RelayedSocket = Duplex & { setTimeout(ms: number, callback?: () => void): unknown };

/** True when `socket` can be relayed (it has a timeout, as every connection the servers hand out does). */
export function isRelayable(socket: Duplex): socket is RelayedSocket {
  return typeof (socket as { setTimeout?: unknown }).setTimeout === "function";
}

/** What the relay needs of the exchange that upgraded. */
export interface WebSocketRelay {
  agent: RelayedSocket;
  upstream: RelayedSocket;
  /** Bytes of the agent's that followed its upgrade request (its first frames, if any). */
  agentHead: Buffer;
  /** The credential's scrub patterns; empty when nothing was injected. */
  patterns: Buffer[];
  onScrub: (count: number) => void;
  /** Told once, when the relay ends; `reason` is set when a peer broke the protocol or a limit. */
  onClose: (reason: string | undefined) => void;
}

/**
 * Relays frames between the agent and the upstream until either side closes. The upstream's data
 * payloads pass the credential's Scrubber (one per message); a control frame (close, ping, pong)
 * whose payload holds a credential form goes on with the payload left out (a close keeps its
 * code). Any protocol error or a frame over MAX_FRAME_BYTES closes both sides.
 */
export function relayWebSocket(relay: WebSocketRelay): void {
  const { agent, upstream } = relay;
  const fromAgent = new FrameReader(true);
  const fromUpstream = new FrameReader(false);
  const toAgent = scrubbing(relay.patterns, relay.onScrub);
  let closed = false;
  const close = (reason: string | undefined): void => {
    if (closed) return;
    closed = true;
    agent.destroy();
    upstream.destroy();
    relay.onClose(reason);
  };
  const relayFrom = (from: RelayedSocket, to: RelayedSocket, frames: (chunk: Buffer) => Buffer[]) => {
    const onData = (chunk: Buffer): void => {
      try {
        for (const bytes of frames(chunk)) {
          if (bytes.length === 0 || to.write(bytes)) continue;
          from.pause();
          to.once("drain", () => from.resume());
        }
      } catch (err) {
        close(err instanceof FrameError ? err.message : String(err));
      }
    };
    from.on("data", onData);
    from.on("error", () => {
      close(undefined);
    });
    from.on("close", () => {
      close(undefined);
    });
    from.setTimeout(IDLE_MS, () => {
      close("idle");
    });
    return onData;
  };
  const onAgent = relayFrom(agent, upstream, (chunk) => fromAgent.push(chunk).map((frame) => frame.raw));
  relayFrom(upstream, agent, (chunk) => fromUpstream.push(chunk).map(toAgent));
  if (relay.agentHead.length > 0) onAgent(relay.agentHead);
}

/**
 * How each upstream frame is written to the agent: as received when nothing was injected, else
 * with its payload scrubbed — a message's data frames through one Scrubber (a value split across
 * fragments is still found; what it holds back goes out in a later fragment), a control frame
 * whose payload holds a form with the payload left out (a close keeps its code).
 */
function scrubbing(patterns: Buffer[], onScrub: (count: number) => void): (frame: Frame) => Buffer {
  let message: Scrubber | undefined;
  return (frame) => {
    if (patterns.length === 0) return frame.raw;
    const payload = frame.raw.subarray(frame.payloadAt);
    if (frame.opcode >= 0x8) {
      const { count } = scrubBytes(payload, patterns);
      if (count === 0) return frame.raw;
      onScrub(count);
      return frameBytes(
        true,
        frame.opcode,
        frame.opcode === OP_CLOSE ? payload.subarray(0, 2) : Buffer.alloc(0),
      );
    }
    if (frame.opcode !== OP_CONTINUATION) message = new Scrubber(patterns, onScrub);
    else if (message === undefined) throw new FrameError("a continuation frame without a message");
    let out = message.push(payload);
    if (frame.fin) {
      const tail = message.end();
      if (tail.length > 0) out = Buffer.concat([out, tail]);
      message = undefined;
    }
    return frameBytes(frame.fin, frame.opcode, out);
  };
}

/** True when `req` asks for a WebSocket upgrade (Upgrade: websocket, the only one relayed). */
export function isWebSocketUpgrade(upgrade: string | undefined): boolean {
  return upgrade !== undefined && upgrade.trim().toLowerCase() === "websocket";
}
