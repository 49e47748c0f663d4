// The audit log: one JSON line per decision on stdout (pino). Credential *names* only, never
// values; paths without their query string (a query may carry a key).
import { pino, type Logger } from "pino";
import type { Entry, Outcome } from "../policy/types.ts";

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
  reason: string;
  auditReason?: string;
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
export function createAuditLog(
  identity: Identity,
  options: { level?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { ...identity },
      messageKey: "msg",
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
