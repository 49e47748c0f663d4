// Reading a Kubernetes watch response: one JSON event per line. Shared by the sidecar's Secret
// watches (sidecar/proxy/kube-api.ts) and the operator's metadata watches
// (operator/kube/metadata-watch.ts), which differ in how they connect, not in how they read.
import type { IncomingMessage } from "node:http";

/** A failure the API answered (code is its HTTP status), or 0 when none was answered. */
export class KubeApiError extends Error {
  readonly code: number;
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** No more than this many bytes of one event (or one answer) are buffered. */
export const MAX_EVENT_BYTES = 8 * 1024 * 1024;

/**
 * Calls `onEvent` with the type and object of each event of the watch `res` (of `path`) until it
 * ends: `end(null)` when the server ended it, `end(error)` on an ERROR event (a KubeApiError with
 * its code), a line that is not JSON (never quoted: it may hold a Secret's data), an event over
 * MAX_EVENT_BYTES or a broken response. Nothing more is delivered once `stopped()`.
 */
export function followWatch(
  res: IncomingMessage,
  path: string,
  onEvent: (type: string, object: unknown) => void,
  end: (err: Error | null) => void,
  stopped: () => boolean,
): void {
  const line = (text: string): void => {
    const event = watchEvent(text, path);
    if (event instanceof Error) end(event);
    else if (event) onEvent(event.type, event.object);
  };
  let pending = "";
  res.setEncoding("utf8");
  res.on("data", (chunk: string) => {
    pending += chunk;
    let newline: number;
    while (!stopped() && (newline = pending.indexOf("\n")) >= 0) {
      const text = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (text !== "") line(text);
    }
    if (pending.length > MAX_EVENT_BYTES)
      end(new KubeApiError(0, `watch ${path}: an event longer than ${String(MAX_EVENT_BYTES)} bytes`));
  });
  res.on("end", () => {
    if (!stopped() && pending.trim() !== "") line(pending.trim());
    end(null);
  });
  res.on("error", (err) => {
    end(new KubeApiError(0, `watch ${path}: ${err.message}`));
  });
}

/** One line: its event, null for one without a type, an Error for an ERROR event or garbage. */
function watchEvent(text: string, path: string): { type: string; object: unknown } | Error | null {
  let parsed: { type?: unknown; object?: unknown };
  try {
    parsed = JSON.parse(text) as { type?: unknown; object?: unknown };
  } catch {
    return new KubeApiError(0, `watch ${path}: an event that is not JSON`);
  }
  if (parsed.type === "ERROR") {
    const status =
      typeof parsed.object === "object" && parsed.object !== null
        ? (parsed.object as { code?: unknown; message?: unknown })
        : {};
    const code = typeof status.code === "number" ? status.code : 0;
    const message = typeof status.message === "string" ? status.message : "an ERROR event";
    return new KubeApiError(code, `watch ${path}: ${message}`);
  }
  return typeof parsed.type === "string" ? { type: parsed.type, object: parsed.object } : null;
}
