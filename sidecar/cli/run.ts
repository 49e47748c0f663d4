// `airlock run`: the sidecar with no cluster — policies, credentials and secrets from files,
// the explicit proxy on --listen, metrics on --metrics.
import { parseArgs } from "node:util";
import { UsageError } from "../process/usage-error.ts";
import { FILE_SIDECAR_OPTIONS, serveFromFiles } from "./serve.ts";

export const RUN_USAGE = `usage: airlock run --policy PATH... [--listen HOST:PORT] [--metrics HOST:PORT]
                   [--upstream-ca PEM]... [--ca-out PEM] [--resolve HOST:IP]... [--allow-address CIDR]...

Runs the sidecar on this machine as an explicit HTTP proxy (HTTP_PROXY / HTTPS_PROXY).
  --policy PATH         EgressPolicy, Credential and Secret manifests (files or folders; repeatable)
  --listen HOST:PORT    explicit proxy listener (default 127.0.0.1:15080)
  --metrics HOST:PORT   /metrics, /healthz, /readyz (default 127.0.0.1:15090)
  --upstream-ca PEM     extra roots for verifying upstream TLS (repeatable)
  --ca-out PEM          write the interception CA certificate here for clients to trust
  --resolve HOST:IP     resolve HOST to IP instead of asking DNS (repeatable, like curl's)
  --allow-address CIDR  permit dialling this non-public range (refused by default; repeatable)
  --log-level LEVEL     audit log level: info (default) or silent
SIGHUP re-reads the policy files; an invalid set is reported and the running policy kept.`;

/** Runs until SIGINT/SIGTERM. Exit 2 on invalid input, with every error located. */
export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...FILE_SIDECAR_OPTIONS,
      listen: { type: "string", default: "127.0.0.1:15080" },
      metrics: { type: "string", default: "127.0.0.1:15090" },
    },
    strict: true,
  });
  if (values.policy.length === 0)
    throw new UsageError("--policy is required (files or folders of manifests)");
  return serveFromFiles(values);
}
