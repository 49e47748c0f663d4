// The audit log: one JSON line per decision on stdout (pino). Credential *names* only, never
// values; paths without their query string (a query may carry a key).
import { pino, type Logger } from "pino";
import type { Entry, Outcome, PolicyReason } from "../policy/index.ts";
import { createLogger, type LoggerOptions } from "../process/logger.ts";
import type { Reason } from "../proxy/verdict.ts";

/** One decision as the audit log records it. */
export interface AuditRecord {
  pod?: string;
  namespace?: string;
  serviceAccount?: string;
  entry: Entry;
  method?: string;
  host: string;
  port: number;
  path?: string;
  outcome: Outcome;
  reason: Reason;
  /** With reason AuditWouldBlock: the reason Enforce mode would have blocked with. */
  auditReason?: PolicyReason;
  policy?: string;
  rule?: string;
  credential?: string;
  status?: number;
  bytes?: number;
  durationMs?: number;
  client?: string;
}

/** Who the sidecar speaks for; stamped on every line. */
export interface Identity {
  pod?: string;
  namespace?: string;
  serviceAccount?: string;
}

/** A logger writing audit lines to `destination` (default stdout); level "silent" turns it off. */
export function createAuditLog(identity: Identity, options: LoggerOptions = {}): Logger {
  return createLogger({ ...identity }, options);
}

/** Writes one decision line: the record and the message. */
export type DecisionWriter = (record: AuditRecord, msg: string) => void;

/**
 * A writer of decision lines that are exactly what `log.info(record, msg)` writes (the same keys
 * in the same order, the same JSON), built without pino's per-call work: one line per request is
 * the busiest thing the sidecar logs. Undefined when `log` has no stream to write to; the caller
 * then uses `log.info`. The logger's bindings (pod, namespace, service account) are serialised
 * once; the level is checked on every line.
 */
export function decisionWriter(log: Logger): DecisionWriter | undefined {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    { write?: (line: string) => unknown } | undefined;
  const write = stream?.write?.bind(stream);
  if (write === undefined) return undefined;
  let bindings = "";
  for (const [key, value] of Object.entries(log.bindings()))
    if (value !== undefined) bindings += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
  return (record, msg) => {
    if (!log.isLevelEnabled("info")) return;
    let line = `{"level":"info","time":"${new Date().toISOString()}"${bindings}`;
    for (const key in record) {
      const value = record[key as keyof AuditRecord];
      if (value === undefined) continue;
      line += `,"${key}":${JSON.stringify(value)}`;
    }
    write(`${line},"msg":${JSON.stringify(msg)}}\n`);
  };
}
