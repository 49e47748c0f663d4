// The process logger: one JSON line per event (pino), the same shape for the sidecar's audit log
// and the operator's log, so one pipeline reads both.
import { pino, type Logger } from "pino";

/** Where and how much a logger writes. */
export interface LoggerOptions {
  /** A pino level; "silent" turns it off. Default "info". */
  level?: string;
  /** Default stdout (asynchronous). */
  destination?: NodeJS.WritableStream;
}

/** A JSON-lines logger stamping `base` on every line (ISO time, `level` as a label, `msg`). */
export function createLogger(base: Record<string, unknown>, options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { ...base },
      messageKey: "msg",
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? stdoutLines(),
  );
}

/**
 * Standard output for log lines, asynchronous. Each line is handed to the writer as bytes: given
 * strings, it appends each to the last pending one and measures that whole string again, which
 * under load (thousands of lines a second while a write is in flight) cost more than writing.
 * pino.destination writes out what is still pending when the process exits, as before.
 */
function stdoutLines(): { write: (line: string) => void } {
  const out = pino.destination({ fd: 1, sync: false, contentMode: "buffer" });
  return {
    write: (line) => {
      // In "buffer" mode the writer takes Buffers (its types name only strings).
      out.write(Buffer.from(line) as unknown as string);
    },
  };
}
