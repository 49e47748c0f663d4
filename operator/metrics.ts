// The operator's Prometheus metrics (DESIGN.md §3). Labels are bounded: kinds and results come
// from fixed unions (Ready reasons, push results); no object, pod or host name becomes a label.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** How one push ended: `unchanged` means the sidecar already ran the bundle (a GET, no POST). */
export type PushResult = "ack" | "nack" | "unreachable" | "unchanged";

/** Every metric of one operator replica, in its own registry (tests run several in one process). */
export interface OperatorMetrics {
  registry: Registry;
  /** Per reconciled object: kind EgressPolicy|Credential and its Ready reason; kind Namespace, result Error for a failed pass. */
  reconciles: Counter<"kind" | "result">;
  pushes: Counter<"result">;
  /** Seconds from the operator first seeing a change to every selected sidecar ACKing its bundle. */
  convergence: Histogram;
  leading: Gauge;
}

/** Creates the registry and every metric; `defaults` adds the process metrics (off in tests). */
export function createOperatorMetrics(options: { defaults?: boolean } = {}): OperatorMetrics {
  const registry = new Registry();
  if (options.defaults === true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    reconciles: new Counter({
      name: "airlock_operator_reconcile_total",
      help: "Objects reconciled, by kind (EgressPolicy, Credential) and resulting Ready reason; kind Namespace, result Error for a pass that failed.",
      labelNames: ["kind", "result"],
      registers,
    }),
    pushes: new Counter({
      name: "airlock_operator_push_total",
      help: "Bundle pushes to sidecars by result (ack, nack, unreachable, unchanged).",
      labelNames: ["result"],
      registers,
    }),
    convergence: new Histogram({
      name: "airlock_operator_convergence_seconds",
      help: "From the operator first seeing a change to every selected sidecar ACKing the bundle it implies.",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers,
    }),
    leading: new Gauge({
      name: "airlock_operator_leading",
      help: "1 while this replica holds the airlock-operator Lease, else 0.",
      registers,
    }),
  };
}
