// Entry point of `airlock operator` (bin/airlock dispatches here, so the sidecar's entry point never
// imports the operator).
import { argv, exit, stderr, stdout } from "node:process";
import { OPERATOR_USAGE, operatorCommand } from "./cli.ts";

const args = argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  stdout.write(OPERATOR_USAGE + "\n");
} else {
  operatorCommand(args).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const known = (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") === true;
      stderr.write(
        `airlock operator: ${err instanceof Error ? (known ? err.message : (err.stack ?? err.message)) : String(err)}\n`,
      );
      if (known) stderr.write(`\n${OPERATOR_USAGE}\n`);
      exit(known ? 2 : 1);
    },
  );
}
