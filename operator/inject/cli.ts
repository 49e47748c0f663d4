// `airlock inject`: the offline twin of the injection webhook (like `istioctl kube-inject`). The
// I/O shell around injectManifest: read files, print YAML, report refusals with their paths.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { dump, loadAll } from "js-yaml";
import { readPublicKeys } from "../../sidecar/control/bundle.ts";
import { parseCidr } from "../../sidecar/net/address.ts";
import { isObject, objectOr } from "./json.ts";
import { injectManifest } from "./manifests.ts";
import type { InjectionConfig } from "./types.ts";

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** The `--help` text of `airlock inject`. */
export const INJECT_USAGE = `usage: airlock inject -f FILE|- --bundle-key PEM [--image IMAGE] [--image-pull-policy POLICY]
                      [--upstream-ca PEM]... [--allow-address CIDR]...

Prints the manifests in FILE (multi-document YAML or JSON; - reads stdin) with the Airlock boundary
injected exactly as the admission webhook injects it: into every Pod and into the pod templates of
Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs (and
the items of a List). Other kinds pass through unchanged. Offline: nothing is read from a cluster.
If any manifest must be refused, nothing at all is printed; every reason goes to stderr as
"FILE: document N (Kind/name): PATH: MESSAGE" and the exit code is 2.

  -f, --filename FILE       the manifests to inject; - for stdin
  --bundle-key PEM          required: a file holding the operator's bundle-signing Ed25519 public
                            key(s) (several concatenated during a rotation); the sidecar accepts
                            bundles signed by any of them
  --image IMAGE             the Airlock image for the init container and sidecar (default airlock:${VERSION})
  --image-pull-policy P     Always, IfNotPresent (default) or Never
  --upstream-ca PEM         extra roots the sidecar (and the agent's trust bundle) trusts for
                            upstreams; repeatable
  --allow-address CIDR      a non-public range the sidecar may dial (its --allow-address), e.g. an
                            in-cluster upstream; repeatable; default: none, all are refused`;

/** Raised for bad flags or unreadable input: exit 2 with the message and the usage. */
export class InjectUsageError extends Error {}

const PULL_POLICIES = ["Always", "IfNotPresent", "Never"] as const;

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (err) {
    throw new InjectUsageError(
      `${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

/** The injection config from the flags; every file is read and checked here, before any output. */
export function configFromFlags(values: {
  "bundle-key"?: string | undefined;
  image?: string | undefined;
  "image-pull-policy"?: string | undefined;
  "upstream-ca": string[];
  "allow-address"?: string[] | undefined;
}): InjectionConfig {
  const keyPath = values["bundle-key"];
  if (keyPath === undefined)
    throw new InjectUsageError(
      "--bundle-key is required: the operator's public key (e.g. openssl pkey -in signing.pem -pubout)",
    );
  const bundlePublicKeys = readText(keyPath, "--bundle-key");
  try {
    readPublicKeys(bundlePublicKeys);
  } catch (err) {
    throw new InjectUsageError(`--bundle-key ${keyPath}: ${(err as Error).message}`);
  }
  const policy = values["image-pull-policy"];
  if (policy !== undefined && !(PULL_POLICIES as readonly string[]).includes(policy))
    throw new InjectUsageError(`--image-pull-policy ${policy}: expected one of ${PULL_POLICIES.join(", ")}`);
  const config: InjectionConfig = { image: values.image ?? `airlock:${VERSION}`, bundlePublicKeys };
  if (policy !== undefined) config.imagePullPolicy = policy as InjectionConfig["imagePullPolicy"];
  const cas = values["upstream-ca"].map((path) => {
    const text = readText(path, "--upstream-ca");
    if (!text.includes("-----BEGIN CERTIFICATE-----"))
      throw new InjectUsageError(`--upstream-ca ${path}: no PEM certificate in the file`);
    return text.endsWith("\n") ? text : `${text}\n`;
  });
  if (cas.length > 0) config.upstreamCa = cas.join("");
  const ranges = values["allow-address"] ?? [];
  for (const cidr of ranges) {
    const parsed = parseCidr(cidr);
    if (!parsed.ok) throw new InjectUsageError(`--allow-address ${cidr}: ${parsed.message}`);
  }
  if (ranges.length > 0) config.allowAddresses = ranges;
  return config;
}

function describe(doc: unknown): string {
  const kind = isObject(doc) && typeof doc["kind"] === "string" ? doc["kind"] : "unknown kind";
  const metadata = isObject(doc) ? objectOr(doc["metadata"]) : undefined;
  const name = metadata?.["name"] ?? metadata?.["generateName"] ?? "unnamed";
  return `${kind}/${typeof name === "string" ? name : "unnamed"}`;
}

/** Prints the injected manifests (exit 0), or every refusal to stderr and nothing else (exit 2). */
export function injectCommand(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      filename: { type: "string", short: "f" },
      "bundle-key": { type: "string" },
      image: { type: "string" },
      "image-pull-policy": { type: "string" },
      "upstream-ca": { type: "string", multiple: true, default: [] },
      "allow-address": { type: "string", multiple: true, default: [] },
    },
    strict: true,
  });
  if (values.filename === undefined) throw new InjectUsageError("-f FILE is required (- reads stdin)");
  const config = configFromFlags(values);
  const file = values.filename;
  const label = file === "-" ? "<stdin>" : file;
  const text = readText(file, "-f");
  let docs: unknown[];
  try {
    docs = loadAll(text);
  } catch (err) {
    process.stderr.write(`${label}: not YAML or JSON: ${(err as Error).message}\n`);
    return 2;
  }
  const out: unknown[] = [];
  const refusals: string[] = [];
  docs.forEach((doc, i) => {
    if (doc === null || doc === undefined) return; // an empty document between two `---`
    const result = injectManifest(doc, config);
    if (result.ok) out.push(result.manifest);
    else
      for (const e of result.errors)
        refusals.push(`${label}: document ${i + 1} (${describe(doc)}): ${e.path}: ${e.message}`);
  });
  if (refusals.length > 0) {
    process.stderr.write(refusals.join("\n") + "\n");
    return 2;
  }
  process.stdout.write(out.map((doc) => dump(doc, { noRefs: true, lineWidth: -1 })).join("---\n"));
  return 0;
}
