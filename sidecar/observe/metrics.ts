// The sidecar's Prometheus metrics (DESIGN.md §3). Labels are bounded: policy and rule names come
// from the loaded policy, reasons and outcomes from fixed unions; a blocked request's raw host
// never becomes a label.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Every metric of one sidecar, registered in its own registry (tests run several in one process). */
export interface SidecarMetrics {
  registry: Registry;
  decisions: Counter<"outcome" | "reason" | "policy" | "rule">;
  requestDuration: Histogram<"outcome">;
  upstreamErrors: Counter<"kind">;
  policyInfo: Gauge<"generation" | "hash">;
  policyApplied: Gauge;
  credentialErrors: Counter<"credential" | "reason">;
  credentialScrubbed: Counter<"credential">;
  certificatesIssued: Counter;
  dnsQueries: Counter<"outcome">;
}

/**
 * How often the event-loop lag behind `nodejs_eventloop_lag_*` is sampled, in ms. prom-client's
 * 10 ms default wakes an idle sidecar 100 times a second, ~1 % of a CPU per pod doing nothing
 * (docs/decisions.md, "Event-loop lag sampled every 100 ms").
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** Creates the registry and every metric; `defaults` adds the process metrics (off in tests). */
export function createSidecarMetrics(options: { defaults?: boolean } = {}): SidecarMetrics {
  const registry = new Registry();
  if (options.defaults === true)
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const registers = [registry];
  return {
    registry,
    decisions: new Counter({
      name: "airlock_decisions_total",
      help: "Egress decisions by outcome (inject, allow, block), stable reason, policy and rule.",
      labelNames: ["outcome", "reason", "policy", "rule"],
      registers,
    }),
    requestDuration: new Histogram({
      name: "airlock_request_duration_seconds",
      help: "Time from a request's decision to the end of its response, by outcome.",
      labelNames: ["outcome"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    upstreamErrors: new Counter({
      name: "airlock_upstream_errors_total",
      help: "Failures reaching upstreams, by kind (connect, tls, timeout, reset, protocol).",
      labelNames: ["kind"],
      registers,
    }),
    policyInfo: new Gauge({
      name: "airlock_policy_info",
      help: "The applied compiled policy: 1 for its generation and content hash.",
      labelNames: ["generation", "hash"],
      registers,
    }),
    policyApplied: new Gauge({
      name: "airlock_policy_applied_timestamp_seconds",
      help: "When the current policy was applied (Unix seconds).",
      registers,
    }),
    credentialErrors: new Counter({
      name: "airlock_credential_errors_total",
      help: "Credentials that could not be resolved when a request needed them, by credential and reason.",
      labelNames: ["credential", "reason"],
      registers,
    }),
    credentialScrubbed: new Counter({
      name: "airlock_credential_scrubbed_total",
      help: "Occurrences of an injected credential removed from responses flowing back to the agent.",
      labelNames: ["credential"],
      registers,
    }),
    certificatesIssued: new Counter({
      name: "airlock_tls_certificates_issued_total",
      help: "Leaf certificates signed by the sidecar's interception CA.",
      registers,
    }),
    dnsQueries: new Counter({
      name: "airlock_dns_queries_total",
      help: "DNS queries answered by the sidecar, by outcome (answered, nxdomain, nodata, refused, throttled, error).",
      labelNames: ["outcome"],
      registers,
    }),
  };
}
