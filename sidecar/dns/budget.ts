// The bound on DNS as a data channel through a wildcard rule (docs/capture.md, "DNS under a
// wildcard"). A rule `*.zone` lets the agent choose the labels of every name it asks under `zone`,
// and each new name reaches the upstream resolver — and, if the zone's servers are the attacker's,
// the attacker. Exact names are a fixed list and carry nothing; names under a wildcard are resolved
// too, but each one not sent before costs a token from one per-pod bucket, so the channel's rate is
// bounded (it cannot be closed: see the residual risk in the docs).

/** The bucket's shape; defaults: 64 names at once, one more every 10 s, 4096 remembered. */
export interface NameBudgetOptions {
  /** New names admitted in a burst (the bucket's size); the bucket starts full. */
  capacity?: number;
  /** One token comes back every this many milliseconds, up to `capacity`. */
  refillMs?: number;
  /** Names already sent, asked again for free; beyond this many the least recently asked is forgotten. */
  remember?: number;
  /** The clock (ms); tests pass their own. */
  now?: () => number;
}

/** `known`: sent before, free. `admitted`: new, took a token. `exhausted`: new and no token left. */
export type BudgetVerdict = "known" | "admitted" | "exhausted";

/** A per-pod budget of distinct names sent upstream. */
export interface NameBudget {
  /** Takes a token for `name` unless it was sent before; a refused name is not remembered. */
  take(name: string): BudgetVerdict;
}

/** Default bucket: a burst of 64 new names, then one every 10 s (360 an hour). */
export const DEFAULT_NAME_BUDGET = { capacity: 64, refillMs: 10_000, remember: 4096 } as const;

/** A token bucket over distinct names, with an LRU memory of the names it admitted. */
export function createNameBudget(options: NameBudgetOptions = {}): NameBudget {
  const capacity = options.capacity ?? DEFAULT_NAME_BUDGET.capacity;
  const refillMs = options.refillMs ?? DEFAULT_NAME_BUDGET.refillMs;
  const remember = options.remember ?? DEFAULT_NAME_BUDGET.remember;
  const now = options.now ?? Date.now;
  if (!(capacity >= 0 && refillMs > 0 && remember >= 1))
    throw new RangeError(`name budget: capacity ${capacity}, refillMs ${refillMs}, remember ${remember}`);
  const known = new Map<string, true>(); // insertion order is recency order
  let tokens = capacity;
  let last = now();
  return {
    take(name) {
      if (known.has(name)) {
        known.delete(name);
        known.set(name, true);
        return "known";
      }
      const at = now();
      // A clock that steps back refills nothing (and never drains).
      tokens = Math.min(capacity, tokens + Math.max(0, at - last) / refillMs);
      last = Math.max(last, at);
      if (tokens < 1) return "exhausted";
      tokens -= 1;
      known.set(name, true);
      if (known.size > remember) {
        const oldest = known.keys().next().value;
        if (oldest !== undefined) known.delete(oldest);
      }
      return "admitted";
    },
  };
}

/**
 * True when `name` (an allowed, lower-case LDH name) is reachable through a wildcard rule, known
 * only through `isAllowedName` (the policy's `nameReachable`: exact names, or any name strictly
 * under a `*.suffix`, never the apex). With `name` = `first.rest`, the probe `0.rest` is reachable
 * exactly when some suffix of `rest` is a wildcard zone — the same suffixes that would cover
 * `name` — unless the policy lists `0.rest` as an exact name, which only makes the check stricter.
 * The probe is never longer than `name`, so a long name cannot push it past the 253-byte limit.
 */
export function underWildcard(name: string, isAllowedName: (name: string) => boolean): boolean {
  const dot = name.indexOf(".");
  if (dot <= 0 || dot === name.length - 1) return false;
  return isAllowedName(`0${name.slice(dot)}`);
}
