// Runs the real `airlock` command (bin/airlock on the pinned Node) as a child process. Its stdout
// and stderr are operator-visible and recorded for the canary scan (canary.ts).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { canary } from "./canary.ts";

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
/** The CLI entry point as users run it. */
export const AIRLOCK = join(ROOT, "bin/airlock");

/** Output and exit code of one finished command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `airlock ...args` to completion. */
export function airlock(args: string[], timeoutMs = 30_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(AIRLOCK, args, { cwd: ROOT, timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      canary.record("process-output", `airlock ${args.join(" ")}`, `${stdout}\n${stderr}`, "exposed");
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `airlock` process and what it has printed so far. */
export interface RunningCommand {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts `airlock ...args` and waits until stderr matches `ready` (or the process exits). */
export async function startAirlock(
  args: string[],
  ready: RegExp,
  timeoutMs = 15_000,
): Promise<RunningCommand> {
  const child = spawn(AIRLOCK, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
  child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
  canary.recordLive("process-output", `airlock ${args.join(" ")}`, () => `${out}\n${err}`, "exposed");
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      resolve(code);
    });
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(`airlock ${args.join(" ")} did not print ${String(ready)} in ${timeoutMs} ms:\n${err}`),
      );
    }, timeoutMs);
    const check = (): void => {
      if (ready.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`airlock exited (${String(code)}) before it was ready:\n${err}`));
    });
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}
