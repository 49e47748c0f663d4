// `airlock init`: the init container that routes every agent packet through the sidecar (DESIGN.md §5).
import { parseArgs } from "node:util";
import { PORTS, SIDECAR_UID } from "../constants.ts";
import { applyCapture, DEFAULT_BINARIES } from "../capture/apply.ts";
import {
  captureRules,
  formatDryRun,
  resolveCaptureOptions,
  type CaptureOptions,
  type CaptureSettings,
} from "../capture/rules.ts";
import { UsageError } from "../process/usage-error.ts";

export const INIT_USAGE = `usage: airlock init [--dry-run] [--sidecar-uid N] [--transparent-port N] [--dns-port N]
                   [--explicit-port N] [--metrics-port N] [--control-port N]
                   [--capture-ports P,P,...] [--no-ipv6] [--iptables-restore PATH]
                   [--ip6tables-restore PATH] [--iptables PATH] [--ip6tables PATH]

Installs the pod's capture rules with iptables-restore and ip6tables-restore (needs NET_ADMIN in the
pod's network namespace): for every UID but the sidecar's, TCP goes to the sidecar's transparent
listener, DNS to its resolver, the control port is refused and every other packet is dropped.
Re-running replaces Airlock's rules and touches no others. See docs/capture.md.
Exit 0 when applied and verified; 1 when not, after removing everything it added; 2 on bad flags.

  --dry-run                 print the exact restore input (a "# ipv4" line, the IPv4 input, a
                            "# ipv6" line, the IPv6 input) and change nothing
  --sidecar-uid N           the only UID left uncaptured (default ${SIDECAR_UID}); matched by UID, never GID
  --transparent-port N      where agent TCP is redirected (default ${PORTS.transparent})
  --dns-port N              where agent DNS, UDP and TCP port 53, is redirected (default ${PORTS.dns})
  --explicit-port N         the explicit proxy the agent may reach on loopback (default ${PORTS.explicit})
  --metrics-port N          metrics and health the agent may read on loopback (default ${PORTS.metrics})
  --control-port N          the operator's port, refused to agents (default ${PORTS.control})
  --capture-ports P,P,...   TCP ports whose original port the transparent listener learns (default
                            80,443); TCP to any other port is blocked unless sent through the
                            explicit proxy. "" captures none
  --no-ipv6                 leave ip6tables alone; refused while IPv6 is on in the namespace
  --iptables-restore PATH   the programs to run (defaults: found on PATH); so are --ip6tables-restore,
                            --iptables and --ip6tables (the last two list rules to verify them)`;

const NUMBER_FLAGS = {
  "sidecar-uid": "sidecarUid",
  "transparent-port": "transparentPort",
  "dns-port": "dnsPort",
  "explicit-port": "explicitPort",
  "metrics-port": "metricsPort",
  "control-port": "controlPort",
} as const;

const FLAG_OF: Record<keyof CaptureOptions, string> = {
  sidecarUid: "--sidecar-uid",
  transparentPort: "--transparent-port",
  dnsPort: "--dns-port",
  explicitPort: "--explicit-port",
  metricsPort: "--metrics-port",
  controlPort: "--control-port",
  capturePorts: "--capture-ports",
  ipv6: "--no-ipv6",
};

/** Prints (--dry-run) or applies the capture rules; exit 0 applied, 1 not applied, 2 bad flags. */
export async function initCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "dry-run": { type: "boolean", default: false },
      ipv6: { type: "boolean", default: true },
      "capture-ports": { type: "string" },
      "iptables-restore": { type: "string", default: DEFAULT_BINARIES.iptablesRestore },
      "ip6tables-restore": { type: "string", default: DEFAULT_BINARIES.ip6tablesRestore },
      iptables: { type: "string", default: DEFAULT_BINARIES.iptables },
      ip6tables: { type: "string", default: DEFAULT_BINARIES.ip6tables },
      ...Object.fromEntries(Object.keys(NUMBER_FLAGS).map((flag) => [flag, { type: "string" as const }])),
    },
    allowNegative: true,
    strict: true,
  });
  const options: CaptureOptions = { ipv6: values.ipv6 };
  for (const [flag, field] of Object.entries(NUMBER_FLAGS)) {
    const raw = (values as Record<string, unknown>)[flag];
    if (typeof raw === "string") options[field] = parseNumber(`--${flag}`, raw);
  }
  const ports = values["capture-ports"];
  if (ports !== undefined)
    options.capturePorts =
      ports.trim() === "" ? [] : ports.split(",").map((p) => parseNumber("--capture-ports", p));
  const resolved = resolveCaptureOptions(options);
  if (!resolved.ok)
    throw new UsageError(resolved.errors.map((e) => `${FLAG_OF[e.field]}: ${e.message}`).join("\n"));
  if (values["dry-run"]) {
    process.stdout.write(formatDryRun(captureRules(resolved.value)));
    return 0;
  }
  const result = await applyCapture(resolved.value, {
    iptablesRestore: values["iptables-restore"],
    ip6tablesRestore: values["ip6tables-restore"],
    iptables: values.iptables,
    ip6tables: values.ip6tables,
  });
  if (!result.ok) {
    process.stderr.write(`airlock init: not applied: ${result.error}\n`);
    return 1;
  }
  process.stderr.write(
    `airlock init: ${summary(resolved.value)} (${result.rules} rules, ${result.families.join(" + ")})\n`,
  );
  return 0;
}

function parseNumber(flag: string, raw: string): number {
  const text = raw.trim();
  if (!/^\d{1,10}$/.test(text)) throw new UsageError(`${flag} ${raw}: expected a whole number`);
  return Number(text);
}

function summary(s: CaptureSettings): string {
  const encoded =
    s.capturePorts.length > 0 ? `original port kept for ${s.capturePorts.join(",")}` : "no port kept";
  return (
    `every uid but ${s.sidecarUid} captured: TCP → :${s.transparentPort} (${encoded}), DNS → :${s.dnsPort}, ` +
    `control :${s.controlPort} refused, everything else dropped`
  );
}
