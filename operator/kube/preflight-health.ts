// What stands between the operator and doing its job, as one list of problems: each is logged once
// (with what to do) when it appears or changes, logged again when it clears, and shown by /readyz
// while it lasts. Never a silent wait.
import type { Logger } from "pino";

/** The source name of the start-up checks: readiness waits for their first report. */
export const PREFLIGHT = "preflight";

/** One thing that is wrong, with its fix in the message. */
export interface Problem {
  /** Stable identity, e.g. `namespace`, `crd/egresspolicies`, `rbac/cluster`, `bootstrap/webhook-tls`. */
  key: string;
  /** What is wrong and what to do, e.g. `namespace airlock-system does not exist: kubectl create namespace airlock-system`. */
  message: string;
  /** Whether the operator waits for it before campaigning for the Lease (else it only degrades). */
  blocking: boolean;
}

/** The operator's current problems, reported by several sources (preflight, bootstrap). */
export class Health {
  readonly #log: Logger | undefined;
  readonly #bySource = new Map<string, Map<string, Problem>>();
  #checked = false;

  constructor(log?: Logger) {
    this.#log = log;
  }

  /**
   * Replaces `source`'s problems with `problems`. A new or changed problem is logged (warn) once;
   * one that is gone is logged (info) as resolved.
   */
  report(source: string, problems: readonly Problem[]): void {
    const before = this.#bySource.get(source) ?? new Map<string, Problem>();
    const after = new Map(problems.map((p) => [p.key, p]));
    for (const [key, problem] of after) {
      if (before.get(key)?.message === problem.message) continue;
      this.#log?.warn({ problem: key, blocking: problem.blocking }, problem.message);
    }
    for (const [key, problem] of before)
      if (!after.has(key)) this.#log?.info({ problem: key, was: problem.message }, `resolved: ${key}`);
    this.#bySource.set(source, after);
    if (source === PREFLIGHT) this.#checked = true;
  }

  /** Every current problem, sorted by key. */
  get problems(): Problem[] {
    return [...this.#bySource.values()]
      .flatMap((m) => [...m.values()])
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  /** True once the first preflight has reported, while nothing is wrong. */
  get ready(): boolean {
    return this.#checked && this.problems.length === 0;
  }

  /** The /readyz body while not ready: one problem per line. */
  reason(): string {
    if (!this.#checked) return "not ready:\n- running start-up checks\n";
    return `not ready:\n${this.problems.map((p) => `- ${p.message}\n`).join("")}`;
  }
}
