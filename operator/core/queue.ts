// A keyed, de-duplicating work queue in the manner of client-go's workqueue: handlers add keys
// (namespaces), N workers get/done them. A key is never handed to two workers at once; adding a
// key that is being processed marks it dirty, and it is handed out once more after done().

/** The timer functions the queue schedules retries with; injectable so tests control time. */
export interface Timers {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** Options of a WorkQueue; defaults match client-go's per-item exponential limiter, capped at 30 s. */
export interface WorkQueueOptions {
  /** First retry delay in ms (default 100). */
  baseDelayMs?: number;
  /** Longest retry delay in ms (default 30000). */
  maxDelayMs?: number;
  timers?: Timers;
}

const realTimers: Timers = {
  now: () => performance.now(),
  set: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    handle.unref(); // a pending retry alone never keeps the process alive
    return handle;
  },
  clear: (handle) => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/**
 * Keyed queue. Invariants: a key is queued at most once; a key being processed is not queued
 * but remembered (dirty) and re-queued by done(); after shutDown() nothing is added or handed out.
 */
export class WorkQueue<K extends string = string> {
  readonly #queue: K[] = [];
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  readonly #waiters: ((key: K | undefined) => void)[] = [];
  readonly #failures = new Map<K, number>();
  readonly #delayed = new Map<K, { at: number; handle: unknown }>();
  readonly #base: number;
  readonly #max: number;
  readonly #timers: Timers;
  #shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#base = options.baseDelayMs ?? 100;
    this.#max = options.maxDelayMs ?? 30_000;
    this.#timers = options.timers ?? realTimers;
  }

  /** Queues `key` unless it is already queued; a key in processing is re-queued after done(). */
  add(key: K): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) this.#handOut(key, waiter);
    else this.#queue.push(key);
  }

  /**
   * Adds `key` after its backoff: base × 2^(failures so far), capped; returns the delay in ms. A key
   * already waiting for an earlier retry keeps that one.
   */
  addRateLimited(key: K): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.min(this.#base * 2 ** Math.min(failures, 52), this.#max);
    if (this.#shuttingDown) return delay;
    const at = this.#timers.now() + delay;
    const pending = this.#delayed.get(key);
    if (pending !== undefined && pending.at <= at) return delay;
    if (pending !== undefined) this.#timers.clear(pending.handle);
    const handle = this.#timers.set(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delay);
    this.#delayed.set(key, { at, handle });
    return delay;
  }

  /** Clears `key`'s failure count: its next addRateLimited waits the base delay again. */
  forget(key: K): void {
    this.#failures.delete(key);
  }

  /** How many times `key` was added rate-limited since it was last forgotten. */
  numRequeues(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The next key to process, marked as processing; undefined once the queue is shut down. */
  get(): Promise<K | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Ends processing of `key`; if it was added meanwhile it is queued again. */
  done(key: K): void {
    if (!this.#processing.delete(key) || !this.#dirty.has(key) || this.#shuttingDown) return;
    this.#dirty.delete(key);
    this.add(key);
  }

  /** Keys waiting to be handed out (not counting ones in processing or backoff). */
  get length(): number {
    return this.#queue.length;
  }

  /**
   * Stops the queue: waiting get() calls resolve to undefined, queued keys and pending retries are
   * dropped (the next leader starts from a full resync), later add() calls are ignored.
   */
  shutDown(): void {
    this.#shuttingDown = true;
    for (const { handle } of this.#delayed.values()) this.#timers.clear(handle);
    this.#delayed.clear();
    this.#queue.length = 0;
    this.#dirty.clear();
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }

  /** Whether shutDown() was called. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  #handOut(key: K, waiter: (key: K | undefined) => void): void {
    this.#dirty.delete(key);
    this.#processing.add(key);
    waiter(key);
  }
}
