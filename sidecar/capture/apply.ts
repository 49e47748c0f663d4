// Applies the capture rules with iptables-restore, checks what the kernel holds, and removes every
// trace of Airlock again if anything fails: a pod is either fully captured or init fails.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  captureRules,
  captureTables,
  hookRules,
  parseListing,
  removalCommands,
  TABLES,
  verifyTable,
  type CaptureSettings,
  type Family,
  type Table,
  type TableListing,
} from "./rules.ts";

/** The programs apply runs; names are looked up on PATH. Tests point them elsewhere. */
export interface CaptureBinaries {
  iptables: string;
  ip6tables: string;
  iptablesRestore: string;
  ip6tablesRestore: string;
}

/** The system's iptables programs (iptables-nft or -legacy, whichever the alternatives select). */
export const DEFAULT_BINARIES: CaptureBinaries = {
  iptables: "iptables",
  ip6tables: "ip6tables",
  iptablesRestore: "iptables-restore",
  ip6tablesRestore: "ip6tables-restore",
};

/** Applied and verified (with the number of our rules), or failed and rolled back (the message says how). */
export type ApplyResult = { ok: true; families: Family[]; rules: number } | { ok: false; error: string };

type FamilyListing = Record<Table, TableListing>;

/**
 * Applies the rules of every captured family with `*-restore --noflush`, then lists the tables
 * and checks that our chains hold exactly the generated rules and each hook is present once, first.
 * On any failure, removes every Airlock hook and chain in every captured family before returning.
 */
export async function applyCapture(
  settings: CaptureSettings,
  binaries: CaptureBinaries = DEFAULT_BINARIES,
  procRoot = "/proc",
): Promise<ApplyResult> {
  const families: Family[] = settings.ipv6 ? ["ipv4", "ipv6"] : ["ipv4"];
  if (!settings.ipv6 && ipv6Active(procRoot))
    return {
      ok: false,
      error:
        "--no-ipv6: this network namespace has IPv6 enabled, so agents could send IPv6 uncaptured; " +
        "capture IPv6 or disable it (sysctl net.ipv6.conf.all.disable_ipv6=1)",
    };
  // Read every family before changing any: a family we cannot list, we do not touch.
  const before: Partial<Record<Family, FamilyListing>> = {};
  for (const family of families) {
    const listing = await listFamily(family, binaries);
    if (!listing.ok) return { ok: false, error: `nothing changed: ${listing.error}` };
    before[family] = listing.value;
  }
  const fail = async (message: string): Promise<ApplyResult> => {
    const problems = await removeCapture(families, binaries);
    const outcome =
      problems.length === 0
        ? `removed every Airlock rule (${families.join(", ")})`
        : `ROLLBACK FAILED, remove AIRLOCK_* chains by hand: ${problems.join("; ")}`;
    return { ok: false, error: `${message}; ${outcome}` };
  };
  let count = 0;
  for (const family of families) {
    const hooks = before[family];
    const existing = {
      [family]: Object.fromEntries(TABLES.map((table) => [table, hookRules(hooks?.[table] ?? empty())])),
    };
    const input = captureRules(settings, existing)[family];
    const restore = family === "ipv4" ? binaries.iptablesRestore : binaries.ip6tablesRestore;
    const result = await run(restore, ["--noflush", "-w"], input);
    if (result.code !== 0)
      return fail(`${restore} --noflush failed (${result.code}): ${oneLine(result.stderr)}`);
    const after = await listFamily(family, binaries);
    if (!after.ok) return fail(after.error);
    const problems = captureTables(settings, family).flatMap((t) => verifyTable(t, after.value[t.table]));
    if (problems.length > 0) return fail(`${family} rules differ after applying: ${problems.join("; ")}`);
    count += captureTables(settings, family).reduce((n, t) => n + t.rules.length + t.hooks.length, 0);
  }
  return { ok: true, families, rules: count };
}

/**
 * Removes every hook into an `AIRLOCK_*` chain and those chains, per family, with `iptables` itself
 * (not the restore program, which may be what failed); returns what could not be removed.
 */
export async function removeCapture(
  families: readonly Family[],
  binaries: CaptureBinaries = DEFAULT_BINARIES,
): Promise<string[]> {
  const problems: string[] = [];
  for (const family of families) {
    const bin = family === "ipv4" ? binaries.iptables : binaries.ip6tables;
    const listing = await listFamily(family, binaries);
    if (!listing.ok) {
      problems.push(listing.error);
      continue;
    }
    for (const args of removalCommands(listing.value)) {
      const result = await run(bin, ["-w", ...args]);
      if (result.code !== 0)
        problems.push(`${bin} ${args.join(" ")} failed (${result.code}): ${oneLine(result.stderr)}`);
    }
    const left = await listFamily(family, binaries);
    if (!left.ok) problems.push(left.error);
    else if (removalCommands(left.value).length > 0) problems.push(`${family}: Airlock rules remain`);
  }
  return problems;
}

/** Whether any interface of this network namespace has IPv6 on (unreadable counts as on). */
export function ipv6Active(procRoot = "/proc"): boolean {
  const conf = join(procRoot, "sys/net/ipv6/conf");
  let names: string[];
  try {
    names = readdirSync(conf);
  } catch {
    return false; // no IPv6 in this kernel (ipv6.disable=1 or not built)
  }
  return names
    .filter((name) => name !== "all" && name !== "default")
    .some((name) => {
      try {
        return readFileSync(join(conf, name, "disable_ipv6"), "utf8").trim() !== "1";
      } catch {
        return true;
      }
    });
}

async function listFamily(
  family: Family,
  binaries: CaptureBinaries,
): Promise<{ ok: true; value: FamilyListing } | { ok: false; error: string }> {
  const bin = family === "ipv4" ? binaries.iptables : binaries.ip6tables;
  const value: FamilyListing = { filter: empty(), nat: empty(), raw: empty() };
  for (const table of TABLES) {
    const result = await run(bin, ["-w", "-t", table, "-S"]);
    if (result.code !== 0)
      return { ok: false, error: `${bin} -t ${table} -S failed (${result.code}): ${oneLine(result.stderr)}` };
    value[table] = parseListing(result.stdout);
  }
  return { ok: true, value };
}

function empty(): TableListing {
  return { chains: [], rules: [] };
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, " | ") || "no output";
}

/** Runs a program to completion; a program that cannot start is exit code 127, like a shell's. */
function run(
  file: string,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    // Our own timer, cleared on every outcome: spawn's `timeout` outlives a program that never started.
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.stdin.on("error", () => undefined); // a program that exits early closes the pipe; its exit code says why
    child.once("error", (err) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${file}: ${err.message}` });
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, stdout, stderr: signal ? `${stderr}killed by ${signal}` : stderr });
    });
    child.stdin.end(input ?? "");
  });
}
