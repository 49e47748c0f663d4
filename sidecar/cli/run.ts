// `airlock run`: the sidecar with no cluster — policies, credentials and secrets from files,
// the explicit proxy on --listen, metrics on --metrics.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatFileErrors, loadManifestFiles } from "../config/manifest-files.ts";
import { createAuditLog } from "../observe/audit.ts";
import { StaticSecrets } from "../proxy/secrets.ts";
import { startSidecar } from "../runtime.ts";
import { parseAllowAddresses, parseListen, parseResolve, readPemFiles, UsageError } from "./flags.ts";

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
      policy: { type: "string", multiple: true, default: [] },
      listen: { type: "string", default: "127.0.0.1:15080" },
      metrics: { type: "string", default: "127.0.0.1:15090" },
      "upstream-ca": { type: "string", multiple: true, default: [] },
      "ca-out": { type: "string" },
      resolve: { type: "string", multiple: true, default: [] },
      "allow-address": { type: "string", multiple: true, default: [] },
      "log-level": { type: "string", default: "info" },
    },
    strict: true,
  });
  if (values.policy.length === 0)
    throw new UsageError("--policy is required (files or folders of manifests)");
  const loaded = loadManifestFiles(values.policy);
  if (!loaded.ok) {
    process.stderr.write(formatFileErrors(loaded.errors) + "\n");
    return 2;
  }
  const sidecar = await startSidecar({
    listen: parseListen("listen", values.listen),
    metrics: parseListen("metrics", values.metrics),
    secrets: new StaticSecrets(loaded.value.secrets),
    log: createAuditLog({}, { level: values["log-level"] }),
    allowAddresses: parseAllowAddresses(values["allow-address"]),
    pins: parseResolve(values.resolve),
    upstreamCa: readPemFiles(values["upstream-ca"]),
    processMetrics: true,
  });
  let generation = 1;
  sidecar.gate.apply(loaded.value.compiled, generation);
  for (const conflict of loaded.value.compiled.conflicts)
    process.stderr.write(`warning: ${conflict.message}\n`);
  if (values["ca-out"] !== undefined) writeFileSync(values["ca-out"], sidecar.ca.certificatePem);
  process.on("SIGHUP", () => {
    const again = loadManifestFiles(values.policy);
    if (!again.ok) {
      process.stderr.write(
        `reload refused; keeping generation ${generation}:\n${formatFileErrors(again.errors)}\n`,
      );
      return;
    }
    generation++;
    sidecar.gate.apply(again.value.compiled, generation);
    sidecar.gate.setSecrets(new StaticSecrets(again.value.secrets));
    process.stderr.write(`reloaded policy generation ${generation} (${again.value.compiled.hash})\n`);
  });
  const url = ({ host, port }: { host: string; port: number }): string =>
    `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  process.stderr.write(`metrics on ${url(sidecar.metricsAddress)}\n`);
  process.stderr.write(`listening on ${url(sidecar.proxyAddress)}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await sidecar.close();
  return 0;
}
