// Shared settings for the fast-check property tests (`*.property.test.ts`): one knob for the case
// count, so `make fuzz` runs the same properties at a million cases, and a fixed seed, so the normal
// suite is deterministic and any failure can be replayed exactly from the line it prints.
import fc from "fast-check";

const DEFAULT_RUNS = 10_000;
// Any fixed value works; it only has to be the same on every run unless someone overrides it.
const DEFAULT_SEED = 0x41_72_6c_6b;

function integerFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(`${name}=${raw} is not an integer ≥ ${min}; unset it or give e.g. ${fallback}`);
  }
  return value;
}

/** Cases per property: AIRLOCK_PROPERTY_RUNS, 10,000 unless set (`make fuzz` sets 1,000,000). */
export const PROPERTY_RUNS = integerFromEnv("AIRLOCK_PROPERTY_RUNS", DEFAULT_RUNS, 1);

/** The fast-check seed of every property: AIRLOCK_PROPERTY_SEED, or a fixed default. */
export const PROPERTY_SEED = integerFromEnv("AIRLOCK_PROPERTY_SEED", DEFAULT_SEED, -(2 ** 31));

// Replays one failing case (with the seed it was found under) instead of running the property.
const REPLAY_PATH = process.env.AIRLOCK_PROPERTY_PATH;

/** A mocha timeout for one property: 20 s at the default count, scaled up with the count. */
export const PROPERTY_TIMEOUT_MS = 20_000 * Math.max(1, PROPERTY_RUNS / DEFAULT_RUNS);

/** Cases for a property whose one case costs about `scale` ordinary ones (I/O-bound ones). */
export function propertyRuns(scale = 1): number {
  return Math.max(1, Math.floor(PROPERTY_RUNS / scale));
}

function parameters<Ts>(scale: number): fc.Parameters<Ts> {
  const params: fc.Parameters<Ts> = { numRuns: propertyRuns(scale), seed: PROPERTY_SEED };
  if (REPLAY_PATH !== undefined && REPLAY_PATH !== "") {
    params.path = REPLAY_PATH;
    params.endOnFailure = true;
  }
  return params;
}

function report<Ts>(details: fc.RunDetails<Ts>): void {
  if (!details.failed) return;
  const message = fc.defaultReportMessage(details) ?? "property failed";
  const replay =
    `Reproduce: AIRLOCK_PROPERTY_SEED=${details.seed} AIRLOCK_PROPERTY_PATH=${details.counterexamplePath ?? ""} ` +
    `node_modules/.bin/mocha <this file> --grep '<this test>'`;
  throw new Error(`${message}\n\n${replay}`, { cause: details.errorInstance });
}

/** fc.check with the shared runs and seed; throws fast-check's report plus a replay line on failure. */
export function assertProperty<Ts>(property: fc.IProperty<Ts>, options: { scale?: number } = {}): void {
  report(fc.check(property, parameters(options.scale ?? 1)));
}

/** assertProperty for asynchronous properties. */
export async function assertAsyncProperty<Ts>(
  property: fc.IAsyncProperty<Ts>,
  options: { scale?: number } = {},
): Promise<void> {
  report(await fc.check(property, parameters(options.scale ?? 1)));
}
