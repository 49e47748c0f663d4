// One way to wait for something that becomes true: poll a probe until it passes or time runs out,
// then fail with the probe's last error (what was still wrong), never with a bare "timed out".
// Tests wait on this instead of sleeping: on the condition itself, or (to show that something did
// NOT happen) on a positive signal that the time in question has passed.
import { expect } from "chai";

/** Options of {@link eventually}. */
export interface EventuallyOptions {
  /** Give up after this many milliseconds (default 20 s). */
  timeoutMs?: number;
  /** Wait this long between attempts (default 200 ms). */
  intervalMs?: number;
  /** Named in the failure: what was being waited for. */
  what?: string;
}

/**
 * Calls `probe` until it returns without throwing and resolves with its value. A probe says "not
 * yet" by throwing (a chai assertion, or an Error naming what it saw); after `timeoutMs` the last
 * of those errors is thrown, prefixed with `what` and the time waited.
 */
export async function eventually<T>(
  probe: () => Promise<T> | T,
  options: EventuallyOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const intervalMs = options.intervalMs ?? 200;
  const started = Date.now();
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      const waited = Date.now() - started;
      if (waited >= timeoutMs) {
        const message = err instanceof Error ? err.message : String(err);
        const prefix = options.what === undefined ? "" : `${options.what}: `;
        throw new Error(`${prefix}still failing after ${String(Math.round(waited / 1000))} s: ${message}`, {
          cause: err,
        });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * {@link eventually} with a chai deep-equal probe: resolves with the first value of `read` that
 * deep-equals `want`; on timeout fails with the last value seen against `want`.
 */
export async function eventuallyEqual<T>(
  read: () => Promise<T> | T,
  want: unknown,
  options: EventuallyOptions = {},
): Promise<T> {
  return eventually(async () => {
    const got = await read();
    expect(got).to.deep.equal(want);
    return got;
  }, options);
}

/** {@link eventually} until `read` returns text matching `want`; resolves with that text. */
export async function eventuallyMatch(
  read: () => Promise<string> | string,
  want: RegExp,
  options: EventuallyOptions = {},
): Promise<string> {
  return eventually(async () => {
    const got = await read();
    expect(got).to.match(want);
    return got;
  }, options);
}
