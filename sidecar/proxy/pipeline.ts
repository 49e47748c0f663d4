// Pipelined requests on one agent connection. Node's HTTP server emits every request it parses
// at once and only stops reading when answers are already waiting to be written; a proxy has
// nothing to write until the upstream answers, so a flood of pipelined requests that the agent
// never reads would each be forwarded upstream and held in memory. This gate forwards at most
// `maxInFlight` requests per connection, holds the rest in order, and closes a connection that
// has more than `maxQueued` requests waiting: its client is not reading its answers.
import type { IncomingMessage, ServerResponse } from "node:http";

/** How many requests of one connection may be forwarded, and held back, at a time. */
export interface PipelineLimits {
  /** Requests of one connection forwarded and not yet answered (written to the connection). */
  maxInFlight: number;
  /** Requests of one connection parsed and not yet forwarded; one more closes the connection. */
  maxQueued: number;
}

/** What became of one request offered to the gate. */
export type Admission = "forwarded" | "queued" | "overflow" | "dropped";

interface ConnectionState {
  inFlight: number;
  waiting: (() => void)[];
  closed: boolean;
}

/** Per-connection bound on outstanding pipelined requests, shared by every HTTP listener. */
export class PipelineGate {
  readonly limits: PipelineLimits;
  #connections = new WeakMap<object, ConnectionState>();
  #inFlight = 0;
  #waiting = 0;
  #open = 0;

  constructor(limits: PipelineLimits) {
    this.limits = limits;
  }

  /** Requests forwarded and not yet answered, over every connection. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Requests parsed and held back, over every connection. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Connections that have sent a request and are not closed yet. */
  get connections(): number {
    return this.#open;
  }

  /**
   * Calls `start` now if the request's connection has fewer than maxInFlight requests forwarded
   * and unanswered, or later, in arrival order, when one of them is answered. "overflow": more
   * than maxQueued were already waiting, so the connection is destroyed (the caller records
   * why); later requests parsed from the same bytes are "dropped". Never throws.
   */
  admit(req: IncomingMessage, res: ServerResponse, start: () => void): Admission {
    const state = this.#stateOf(req.socket);
    if (state.closed) return "dropped";
    const run = (): void => {
      this.#began(state, res);
      start();
    };
    if (state.inFlight < this.limits.maxInFlight) {
      run();
      return "forwarded";
    }
    if (state.waiting.length >= this.limits.maxQueued) {
      this.#close(state);
      req.socket.destroy();
      return "overflow";
    }
    state.waiting.push(run);
    this.#waiting++;
    return "queued";
  }

  #stateOf(socket: IncomingMessage["socket"]): ConnectionState {
    const state = this.#connections.get(socket);
    if (state) return state;
    const created: ConnectionState = { inFlight: 0, waiting: [], closed: false };
    this.#connections.set(socket, created);
    this.#open++;
    // Responses Node still holds in its queue get no 'close' of their own when the connection
    // goes: the connection's close is what ends them all.
    socket.once("close", () => {
      this.#close(created);
    });
    return created;
  }

  #began(state: ConnectionState, res: ServerResponse): void {
    state.inFlight++;
    this.#inFlight++;
    let ended = false;
    const end = (): void => {
      if (ended || state.closed) return;
      ended = true;
      state.inFlight--;
      this.#inFlight--;
      this.#next(state);
    };
    res.once("finish", end);
    res.once("close", end);
  }

  #next(state: ConnectionState): void {
    while (!state.closed && state.inFlight < this.limits.maxInFlight) {
      const run = state.waiting.shift();
      if (!run) return;
      this.#waiting--;
      run();
    }
  }

  #close(state: ConnectionState): void {
    if (state.closed) return;
    state.closed = true;
    this.#inFlight -= state.inFlight;
    this.#waiting -= state.waiting.length;
    this.#open--;
    state.inFlight = 0;
    state.waiting = [];
  }
}
