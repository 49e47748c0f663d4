// gRPC on an inject path. A gRPC body is a sequence of length-prefixed messages (a flag byte and a
// 4-byte big-endian length, then the message); replacing a credential inside a message changes its
// length, so scrubbing it as a plain byte stream would leave the prefix wrong and the agent's gRPC
// library unable to read the rest. Each message is scrubbed whole and sent with its new length.
import { scrubBytes } from "./scrub.ts";

/** Largest message read whole (gRPC's default receive limit); a larger one ends the call. */
export const MAX_GRPC_MESSAGE_BYTES = 4 * 1024 * 1024;

const PREFIX_BYTES = 5;
/** The flag bit of a compressed message (its bytes cannot be scrubbed). */
const COMPRESSED = 0x01;
const EMPTY = Buffer.alloc(0);

/** True for gRPC's content types (application/grpc, +proto, +json, …, and gRPC-Web's binary one). */
export function isGrpcContentType(type: string | undefined): boolean {
  return type !== undefined && /^application\/grpc(-web)?(\+|;|\s|$)/i.test(type);
}

/**
 * A gRPC response body's scrubber: the same push/end as the byte scrubber, message by message.
 * A compressed message (the request asked for none: its grpc-accept-encoding is not forwarded on
 * an inject path) or one over the limit throws, which cuts the call.
 */
export class GrpcScrubber {
  #patterns: Buffer[];
  #onScrub: (count: number) => void;
  #held: Buffer = EMPTY;

  constructor(patterns: Buffer[], onScrub: (count: number) => void) {
    this.#patterns = patterns;
    this.#onScrub = onScrub;
  }

  /** The complete messages of what arrived so far, each scrubbed and framed again. */
  push(chunk: Buffer): Buffer {
    let buf = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    const out: Buffer[] = [];
    while (buf.length >= PREFIX_BYTES) {
      const flags = buf[0] as number;
      const length = buf.readUInt32BE(1);
      if ((flags & COMPRESSED) !== 0)
        throw new Error("a compressed gRPC message on an inject path cannot be scrubbed");
      if (length > MAX_GRPC_MESSAGE_BYTES)
        throw new Error(`a gRPC message of ${length} bytes is over the ${MAX_GRPC_MESSAGE_BYTES}-byte limit`);
      if (buf.length < PREFIX_BYTES + length) break;
      const { output, count } = scrubBytes(buf.subarray(PREFIX_BYTES, PREFIX_BYTES + length), this.#patterns);
      if (count > 0) this.#onScrub(count);
      const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
      prefix[0] = flags;
      prefix.writeUInt32BE(output.length, 1);
      out.push(prefix, output);
      buf = buf.subarray(PREFIX_BYTES + length);
    }
    // A copy: what is held outlives the chunk, which its reader may reuse.
    this.#held = buf.length > 0 ? Buffer.from(buf) : EMPTY;
    return out.length === 0 ? EMPTY : Buffer.concat(out);
  }

  /** The body ended: a message cut short is not passed on (the agent's library reports it). */
  end(): Buffer {
    this.#held = EMPTY;
    return EMPTY;
  }
}
