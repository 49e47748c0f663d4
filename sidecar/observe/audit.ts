// The audit log: one JSON line per decision on stdout (pino). Credential *names* only, never
// values; paths without their query string (a query may carry a key).
import type { Logger } from "pino";
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
