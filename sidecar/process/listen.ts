// Where a process listens: the address type and the `HOST:PORT` flag syntax every listener flag
// of the sidecar and the operator accepts.
import { UsageError } from "./usage-error.ts";

/** A host:port to listen on. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `HOST:PORT` (`[v6]:PORT` for IPv6); a UsageError naming `--flag` otherwise. */
export function parseListen(flag: string, value: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw new UsageError(`--${flag} ${value}: expected HOST:PORT, e.g. 127.0.0.1:15080`);
  return { host: match[1] ?? match[2] ?? "", port };
}
