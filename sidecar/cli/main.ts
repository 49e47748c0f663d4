// The `airlock` command: one binary, a subcommand per role.
import { argv, exit, stderr, stdout } from "node:process";
import { DEMO_USAGE, demoCommand } from "./demo.ts";
import { EXPLAIN_USAGE, explainCommand } from "./explain.ts";
import { UsageError } from "../process/usage-error.ts";
import { INIT_USAGE, initCommand } from "./init.ts";
import { RUN_USAGE, runCommand } from "./run.ts";
import { SIDECAR_USAGE, sidecarCommand } from "./sidecar.ts";
import { VALIDATE_USAGE, validateCommand } from "./validate.ts";

const HELP = `airlock: the egress boundary for AI-agent pods

usage: airlock COMMAND [FLAGS]

commands:
  run       the sidecar with no cluster: an explicit proxy enforcing policies from files
  explain   the outcome, reason, policy and rule for one request, without sending it
  validate  schema and compile errors of policy files (exit 0 or 2)
  demo      a self-contained tour of the three outcomes against local upstreams
  init      the pod's capture rules (iptables, ip6tables): all agent egress through the sidecar
  sidecar   the in-pod role: transparent listener, explicit proxy, trust bundle
  operator  the Kubernetes operator (leader-elected reconciler)
  inject    print manifests with the sidecar injected, as the admission webhook would (offline)

Run 'airlock COMMAND --help' for a command's flags.`;

const COMMANDS: Record<string, { usage: string; run: (args: string[]) => number | Promise<number> }> = {
  run: { usage: RUN_USAGE, run: runCommand },
  explain: { usage: EXPLAIN_USAGE, run: explainCommand },
  validate: { usage: VALIDATE_USAGE, run: validateCommand },
  demo: { usage: DEMO_USAGE, run: demoCommand },
  init: { usage: INIT_USAGE, run: initCommand },
  sidecar: { usage: SIDECAR_USAGE, run: sidecarCommand },
};

async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    stdout.write(HELP + "\n");
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    stderr.write(`airlock: unknown command "${name}"\n\n${HELP}\n`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    stdout.write(command.usage + "\n");
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    const known = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    if (!known) throw err;
    stderr.write(`airlock ${name}: ${(err as Error).message}\n\n${command.usage}\n`);
    return 2;
  }
}

// A closed pipe (`airlock demo | head`) ends the output, not the process with a stack trace.
stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") exit(0);
  throw err;
});

main(argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    stderr.write(`airlock: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    exit(1);
  },
);
