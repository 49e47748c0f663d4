// `airlock validate`: schema and compile errors for a set of manifest files, exit 0 or 2.
import { parseArgs } from "node:util";
import { formatFileErrors, loadManifestFiles } from "../config/manifest-files.ts";
import { UsageError } from "../process/usage-error.ts";

export const VALIDATE_USAGE = `usage: airlock validate --policy PATH...

Checks EgressPolicy, Credential and Secret manifests the way the sidecar and operator would.
Prints every error as FILE: FIELD.PATH: MESSAGE and exits 2, or a summary and exits 0.`;

/** Validates; exit 0 when every file is valid, 2 otherwise. */
export function validateCommand(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { policy: { type: "string", multiple: true, default: [] } },
    strict: true,
  });
  if (values.policy.length === 0)
    throw new UsageError("--policy is required (files or folders of manifests)");
  const loaded = loadManifestFiles(values.policy);
  if (!loaded.ok) {
    process.stderr.write(formatFileErrors(loaded.errors) + "\n");
    return 2;
  }
  const { compiled, files } = loaded.value;
  for (const conflict of compiled.conflicts) process.stderr.write(`warning: ${conflict.message}\n`);
  process.stdout.write(
    `ok: ${files.length} file(s), ${compiled.policies.length} polic${compiled.policies.length === 1 ? "y" : "ies"}, ` +
      `${compiled.rules.length} rule(s), ${Object.keys(compiled.credentials).length} credential(s), ` +
      `mode ${compiled.mode}, ${compiled.hash}\n`,
  );
  return 0;
}
