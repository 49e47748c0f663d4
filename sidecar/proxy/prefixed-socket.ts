// A socket whose first bytes were already read (to peek at the protocol), put back in front.
// Node's HTTP server reads straight from a TCP handle and would never see bytes unshifted into
// the JS stream, so connections handed to it after a peek go through this wrapper.
import { Duplex } from "node:stream";
import type { Socket } from "node:net";

/** A Duplex that yields `prefix`, then everything `socket` reads; writes go to `socket`. */
export class PrefixedSocket extends Duplex {
  readonly socket: Socket;

  constructor(socket: Socket, prefix: Buffer) {
    super({ allowHalfOpen: false });
    this.socket = socket;
    if (prefix.length > 0) this.push(prefix);
    socket.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (err) => this.destroy(err));
    socket.on("close", () => this.destroy());
    socket.on("timeout", () => this.emit("timeout"));
    socket.resume();
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms, callback);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, encoding, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy(error ?? undefined);
    callback(error);
  }
}
