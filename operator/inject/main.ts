// Entry point of `airlock inject` (bin/airlock dispatches here, as for `airlock operator`, so the
// sidecar's entry point never imports operator code).
import { argv, exit, stderr, stdout } from "node:process";
import { INJECT_USAGE, InjectUsageError, injectCommand } from "./cli.ts";

const args = argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  stdout.write(INJECT_USAGE + "\n");
} else {
  try {
    process.exitCode = injectCommand(args);
  } catch (err) {
    const known =
      err instanceof InjectUsageError ||
      (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") === true;
    const text = err instanceof Error ? (known ? err.message : (err.stack ?? err.message)) : String(err);
    stderr.write(`airlock inject: ${text}\n`);
    if (known) stderr.write(`\n${INJECT_USAGE}\n`);
    exit(known ? 2 : 1);
  }
}
