// Flags shared by the commands that read policies from files and dial upstreams.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { parseCidr, type Cidr } from "../net/address.ts";
import { UsageError } from "../process/usage-error.ts";

/** Parses repeated `--resolve HOST:IP` into pins (several for one host add up, like curl's). */
export function parseResolve(values: string[]): Map<string, string[]> {
  const pins = new Map<string, string[]>();
  for (const value of values) {
    const colon = value.indexOf(":");
    const host = value.slice(0, colon).toLowerCase().replace(/\.$/, "");
    const ip = value.slice(colon + 1).replace(/^\[(.*)\]$/, "$1");
    if (colon <= 0 || isIP(ip) === 0)
      throw new UsageError(`--resolve ${value}: expected HOST:IP, e.g. api.example.test:127.0.0.1`);
    pins.set(host, [...(pins.get(host) ?? []), ip]);
  }
  return pins;
}

/** Parses repeated `--allow-address CIDR`. */
export function parseAllowAddresses(values: string[]): Cidr[] {
  return values.map((value) => {
    const parsed = parseCidr(value);
    if (!parsed.ok) throw new UsageError(`--allow-address ${value}: ${parsed.message}`);
    return parsed.value;
  });
}

/** Reads `--upstream-ca` PEM files. */
export function readPemFiles(paths: string[]): string[] {
  return paths.map((path) => {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      throw new UsageError(`--upstream-ca ${path}: cannot read the file`);
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----"))
      throw new UsageError(`--upstream-ca ${path}: no PEM certificate in the file`);
    return text;
  });
}
