// The pod's capture rules as iptables-restore input: pure, no processes, no files (docs/capture.md).
//
// Every rule lives in Airlock's own chains; the built-in chains only get one jump each, inserted at
// position 1. The input is meant for `iptables-restore --noflush`: declaring a chain creates it or
// flushes it, so applying twice rewrites our chains instead of appending to them, and the hooks a
// previous run left are deleted (`-D`, from a listing of the current state) before being inserted
// again, so there is always exactly one, first. Nothing outside our chains is flushed.
import { PORTS, SIDECAR_UID } from "../constants.ts";
import { encodedAddress } from "./port-address.ts";

/** What `airlock init` captures; every field defaults to DESIGN.md §3 (constants.ts). */
export interface CaptureOptions {
  sidecarUid?: number;
  transparentPort?: number;
  dnsPort?: number;
  explicitPort?: number;
  metricsPort?: number;
  controlPort?: number;
  /** TCP ports whose original port the transparent listener learns (port P → 127.0.P>>8.P&255). */
  capturePorts?: readonly number[];
  /** Capture IPv6 too; turning it off is only safe where the namespace has no IPv6. */
  ipv6?: boolean;
}

/** Options with every default filled in and checked by `resolveCaptureOptions`. */
export type CaptureSettings = Readonly<Required<CaptureOptions>>;

/** One invalid option: which field, and what to change. */
export interface CaptureOptionError {
  field: keyof CaptureOptions;
  message: string;
}

/** The IP families and tables Airlock writes to. */
export type Family = "ipv4" | "ipv6";
export type Table = "filter" | "nat" | "raw";
/** Every table Airlock writes to, in the order they are applied and removed. */
export const TABLES: readonly Table[] = ["filter", "nat", "raw"];

/** Our chains. Anything named `AIRLOCK_*` is ours: rollback removes it and jumps into it. */
export const CHAIN_PREFIX = "AIRLOCK_";
export const CHAINS = {
  output: "AIRLOCK_OUTPUT",
  agent: "AIRLOCK_AGENT",
  input: "AIRLOCK_INPUT",
  prerouting: "AIRLOCK_PREROUTING",
} as const;

/**
 * Conntrack zones that keep the sidecar's DNS flows apart from the agents' (raw table). Both send
 * UDP from the pod's address to the same resolver and port 53, so a sidecar query and an agent
 * query that happen to use the same source port within conntrack's UDP timeout share one
 * 5-tuple: the later packet follows the earlier entry's NAT, sending the agent's query past the
 * sidecar (then dropped) or the sidecar's own query back to itself. In separate zones they never meet.
 */
export const CONNTRACK_ZONES = { sidecarDns: 1, agentDns: 2 } as const;

/** The highest real UID (uid_t -1 means "no UID"). */
const MAX_UID = 4294967294;

/** One rule of one of our chains; `match` and `target` are iptables arguments. */
export interface CaptureRule {
  chain: string;
  match: string[];
  comment: string;
  target: string[];
}

/** A built-in chain's single jump into one of ours. */
export interface CaptureHook {
  builtin: "OUTPUT" | "INPUT" | "PREROUTING";
  chain: string;
  comment: string;
}

/** Everything Airlock wants in one table of one family. */
export interface TableRules {
  table: Table;
  chains: string[];
  rules: CaptureRule[];
  hooks: CaptureHook[];
}

/** Rules (`-A CHAIN ...`, as `iptables -S` prints them) in built-in chains jumping into ours. */
export type ExistingHooks = Partial<Record<Family, Partial<Record<Table, readonly string[]>>>>;

/** Fills in defaults and checks every option; all errors at once. */
export function resolveCaptureOptions(
  options: CaptureOptions,
): { ok: true; value: CaptureSettings } | { ok: false; errors: CaptureOptionError[] } {
  const value: CaptureSettings = {
    sidecarUid: options.sidecarUid ?? SIDECAR_UID,
    transparentPort: options.transparentPort ?? PORTS.transparent,
    dnsPort: options.dnsPort ?? PORTS.dns,
    explicitPort: options.explicitPort ?? PORTS.explicit,
    metricsPort: options.metricsPort ?? PORTS.metrics,
    controlPort: options.controlPort ?? PORTS.control,
    capturePorts: [...(options.capturePorts ?? [80, 443])],
    ipv6: options.ipv6 ?? true,
  };
  const errors: CaptureOptionError[] = [];
  const uid = value.sidecarUid;
  if (!Number.isInteger(uid) || uid < 1 || uid > MAX_UID)
    errors.push({ field: "sidecarUid", message: `${uid}: expected a UID from 1 to ${MAX_UID} (not root)` });
  const sidecarPorts = ["transparentPort", "dnsPort", "explicitPort", "metricsPort", "controlPort"] as const;
  const seen = new Map<number, string>();
  for (const field of sidecarPorts) {
    const port = value[field];
    if (!isPort(port)) errors.push({ field, message: `${port}: expected a port from 1 to 65535` });
    else if (port === 53)
      errors.push({ field, message: "53: DNS is redirected away from port 53; pick another port" });
    else if (seen.has(port))
      errors.push({ field, message: `${port}: already used by ${seen.get(port) ?? ""}` });
    seen.set(port, field);
  }
  const captured = new Set<number>();
  value.capturePorts.forEach((port) => {
    const field = "capturePorts";
    if (!isPort(port)) errors.push({ field, message: `${port}: expected a port from 2 to 65535` });
    else if (port === 1)
      errors.push({ field, message: `1 would encode as 127.0.0.1, the address that means "port unknown"` });
    else if (port === 53) errors.push({ field, message: "53 is DNS, always redirected to the DNS port" });
    else if (captured.has(port)) errors.push({ field, message: `${port} is listed twice` });
    captured.add(port);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/**
 * Our tables for one family, filter first: if the nat commit then fails, agents are cut off, not
 * open. Raw comes last: it only separates DNS flows into conntrack zones (CONNTRACK_ZONES).
 */
// eslint-disable-next-line max-lines-per-function -- a declarative table of rules, read top to bottom
export function captureTables(settings: CaptureSettings, family: Family): TableRules[] {
  const s = settings;
  const v4 = family === "ipv4";
  const host = v4 ? "127.0.0.1/32" : "::1/128";
  const loopback = v4 ? "127.0.0.0/8" : "::1/128";
  const { output, agent, input } = CHAINS;
  const rule = (chain: string, match: string, comment: string, target: string): CaptureRule => ({
    chain,
    match: match === "" ? [] : match.split(" "),
    comment: `airlock: ${comment}`,
    target: ["-j", ...target.split(" ")],
  });
  const { transparentPort: tp, dnsPort: dns, explicitPort: ep, metricsPort: mp, controlPort: cp } = s;
  // Owner matching sees only packets of sockets opened by a process. Positive UID ranges (never
  // `! --uid-owner`, which also matches packets with no owner) leave kernel-generated packets —
  // neighbour discovery, RSTs, ICMP errors — untouched; and never by GID: groups exempt nobody.
  const agentUids = [
    ...(s.sidecarUid > 0 ? [`0-${s.sidecarUid - 1}`] : []),
    ...(s.sidecarUid < MAX_UID ? [`${s.sidecarUid + 1}-${MAX_UID}`] : []),
  ];
  const dispatch = (sidecarTarget: string, sidecarWhy: string): CaptureRule[] => [
    rule(output, `-m owner --uid-owner ${s.sidecarUid}`, sidecarWhy, sidecarTarget),
    ...agentUids.map((range) =>
      rule(output, `-m owner --uid-owner ${range}`, `uids ${range} are agents`, agent),
    ),
  ];
  // The filter table sees destinations after nat: agent TCP has become loopback:transparentPort.
  const filter: TableRules = {
    table: "filter",
    chains: [output, agent, input],
    hooks: [
      { builtin: "OUTPUT", chain: output, comment: "airlock: agent egress goes through the sidecar" },
      { builtin: "INPUT", chain: input, comment: "airlock: sidecar listeners are not for other pods" },
    ],
    rules: [
      ...dispatch("ACCEPT", "the sidecar reaches upstreams"),
      rule(
        agent,
        `-p tcp --dport ${cp}`,
        "the control port is never for agents",
        "REJECT --reject-with tcp-reset",
      ),
      rule(
        agent,
        `-d ${loopback} -p tcp --dport ${tp}`,
        "redirected TCP to the transparent listener",
        "ACCEPT",
      ),
      rule(agent, `-d ${host} -p udp --dport ${dns}`, "redirected DNS (udp) to the sidecar", "ACCEPT"),
      rule(agent, `-d ${host} -p tcp --dport ${dns}`, "redirected DNS (tcp) to the sidecar", "ACCEPT"),
      rule(agent, `-d ${host} -p tcp --dport ${ep}`, "the explicit proxy", "ACCEPT"),
      rule(agent, `-d ${host} -p tcp --dport ${mp}`, "metrics and health, read-only", "ACCEPT"),
      // Agent flows to loopback are all redirected to the sidecar, so the only ESTABLISHED local
      // flows an agent socket can answer are ones the sidecar opened; nothing here leaves the pod.
      rule(
        agent,
        "-m addrtype --dst-type LOCAL -m conntrack --ctstate ESTABLISHED",
        "replies that stay in the pod",
        "ACCEPT",
      ),
      rule(agent, "", "everything else: UDP and QUIC, ICMP, SCTP, raw, unredirected TCP", "DROP"),
      // Inbound packets have no owner; listeners bound to a wildcard address are this pod's only.
      rule(input, `! -i lo -p tcp --dport ${tp}`, "transparent port: this pod only", "DROP"),
      rule(input, `! -i lo -p udp --dport ${dns}`, "DNS port: this pod only", "DROP"),
      rule(input, `! -i lo -p tcp --dport ${dns}`, "DNS port: this pod only", "DROP"),
      rule(input, `! -i lo -p tcp --dport ${ep}`, "explicit proxy: this pod only", "DROP"),
    ],
  };
  const nat: TableRules = {
    table: "nat",
    chains: [output, agent],
    hooks: [{ builtin: "OUTPUT", chain: output, comment: "airlock: redirect agent connections" }],
    rules: [
      ...dispatch("RETURN", "sidecar connections are not redirected"),
      rule(agent, "-p udp --dport 53", "DNS (udp) to the sidecar", `REDIRECT --to-ports ${dns}`),
      rule(agent, "-p tcp --dport 53", "DNS (tcp) to the sidecar", `REDIRECT --to-ports ${dns}`),
      rule(agent, `-d ${host} -p tcp --dport ${ep}`, "the explicit proxy, reached directly", "RETURN"),
      rule(agent, `-d ${host} -p tcp --dport ${mp}`, "metrics, reached directly", "RETURN"),
      rule(agent, `-d ${host} -p tcp --dport ${cp}`, "control port: left for filter to reject", "RETURN"),
      // IPv4 only: IPv6 has a single loopback address, so there is nothing to encode a port in.
      ...(v4 ? s.capturePorts : []).map((port) => {
        const to = encodedAddress(port);
        return rule(
          agent,
          `-p tcp --dport ${port}`,
          `port ${port} as ${to}`,
          `DNAT --to-destination ${to}:${tp}`,
        );
      }),
      rule(agent, "-p tcp", "other TCP: original port unknown, blocked", `REDIRECT --to-ports ${tp}`),
    ],
  };
  // Zones are set before conntrack looks a packet up. A looped-back packet keeps the entry it got
  // on the way out (the CT target leaves it alone), so only the resolver's answers need PREROUTING.
  const zone = (id: number): string => `CT --zone ${id}`;
  const { sidecarDns, agentDns } = CONNTRACK_ZONES;
  const raw: TableRules = {
    table: "raw",
    chains: [output, CHAINS.prerouting],
    hooks: [
      { builtin: "OUTPUT", chain: output, comment: "airlock: DNS flows in their own conntrack zones" },
      { builtin: "PREROUTING", chain: CHAINS.prerouting, comment: "airlock: answers to the sidecar's DNS" },
    ],
    rules: [
      rule(
        output,
        `-m owner --uid-owner ${s.sidecarUid} -p udp --dport 53`,
        "the sidecar's DNS queries: zone of their own",
        zone(sidecarDns),
      ),
      rule(
        output,
        `-m owner --uid-owner ${s.sidecarUid} -p udp --sport ${dns}`,
        "the sidecar's DNS answers: the agents' zone",
        zone(agentDns),
      ),
      ...agentUids.map((range) =>
        rule(
          output,
          `-m owner --uid-owner ${range} -p udp --dport 53`,
          `agent DNS (uids ${range})`,
          zone(agentDns),
        ),
      ),
      // After the agents' rule: a resolver in the pod itself answers the sidecar from port 53.
      rule(output, "-p udp --sport 53", "a resolver in the pod answering the sidecar", zone(sidecarDns)),
      rule(
        CHAINS.prerouting,
        "-p udp --sport 53",
        "resolvers' answers: the sidecar's zone",
        zone(sidecarDns),
      ),
    ],
  };
  return [filter, nat, raw];
}

/**
 * The exact `iptables-restore --noflush` / `ip6tables-restore --noflush` input. `existing` lists the
 * hooks already in place (`hookRules` of a listing); each is deleted before ours is inserted. Throws
 * RangeError on options `resolveCaptureOptions` rejects; `ipv6` is "" when IPv6 is not captured.
 */
export function captureRules(
  options: CaptureOptions = {},
  existing: ExistingHooks = {},
): { ipv4: string; ipv6: string } {
  const resolved = resolveCaptureOptions(options);
  if (!resolved.ok) throw new RangeError(resolved.errors.map((e) => `${e.field}: ${e.message}`).join("; "));
  const render = (family: Family): string =>
    captureTables(resolved.value, family)
      .map((t) => renderTable(t, existing[family]?.[t.table] ?? []))
      .join("");
  return { ipv4: render("ipv4"), ipv6: resolved.value.ipv6 ? render("ipv6") : "" };
}

function renderTable(t: TableRules, existingHooks: readonly string[]): string {
  const lines = [`*${t.table}`];
  // With --noflush, declaring a chain creates it or flushes it; the -F says so for any reader.
  for (const chain of t.chains) lines.push(`:${chain} - [0:0]`);
  for (const chain of t.chains) lines.push(`-F ${chain}`);
  for (const r of t.rules)
    lines.push(["-A", r.chain, ...r.match, ...commentArgs(r.comment), ...r.target].join(" "));
  for (const hook of existingHooks) lines.push(hook.replace(/^-A /, "-D "));
  for (const h of t.hooks)
    lines.push(["-I", h.builtin, "1", ...commentArgs(h.comment), "-j", h.chain].join(" "));
  lines.push("COMMIT");
  return lines.join("\n") + "\n";
}

function commentArgs(comment: string): string[] {
  // iptables-restore splits on spaces but keeps a double-quoted string whole; ours hold no quotes.
  return ["-m", "comment", "--comment", `"${comment}"`];
}

/**
 * `iptables` argument lists that remove every hook into our chains, then empty and delete the
 * chains: hooks first, so no packet ever meets a half-emptied chain. [] when there is nothing.
 */
export function removalCommands(listings: Partial<Record<Table, TableListing>>): string[][] {
  const tables = TABLES.flatMap((table) => {
    const listing = listings[table];
    return listing ? [{ table, listing }] : [];
  });
  const ours = (listing: TableListing): string[] => listing.chains.filter((c) => c.startsWith(CHAIN_PREFIX));
  return [
    ...tables.flatMap(({ table, listing }) =>
      hookRules(listing).map((line) => ["-t", table, "-D", ...splitRuleLine(line).slice(1)]),
    ),
    ...tables.flatMap(({ table, listing }) => ours(listing).map((chain) => ["-t", table, "-F", chain])),
    ...tables.flatMap(({ table, listing }) => ours(listing).map((chain) => ["-t", table, "-X", chain])),
  ];
}

/** Splits an `iptables -S` line into arguments: double quotes group, backslash escapes. */
export function splitRuleLine(line: string): string[] {
  const args: string[] = [];
  for (const match of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g))
    args.push(match[1] !== undefined ? match[1].replace(/\\(.)/g, "$1") : (match[2] ?? ""));
  return args;
}

/** One table as `iptables -t TABLE -S` prints it. */
export interface TableListing {
  /** User-defined chains (`-N`). */
  chains: string[];
  rules: ListedRule[];
}

/** One `-A` line of a listing, with its chain, comment and `-j` target picked out. */
export interface ListedRule {
  chain: string;
  line: string;
  comment: string | undefined;
  target: string | undefined;
}

/** Parses `iptables -S` output (one table). */
export function parseListing(text: string): TableListing {
  const listing: TableListing = { chains: [], rules: [] };
  for (const line of text.split("\n").map((l) => l.trim())) {
    const [verb, chain] = line.split(" ");
    if (verb === "-N" && chain) listing.chains.push(chain);
    if (verb !== "-A" || !chain) continue;
    const comment = /(?:^| )--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(line);
    listing.rules.push({
      chain,
      line,
      comment: comment ? (comment[1]?.replace(/\\(.)/g, "$1") ?? comment[2]) : undefined,
      target: /(?:^| )-j (\S+)/.exec(line)?.[1],
    });
  }
  return listing;
}

/** The `-A` lines outside our chains (the built-in ones, in practice) that jump into one of ours. */
export function hookRules(listing: TableListing): string[] {
  return listing.rules
    .filter((r) => !r.chain.startsWith(CHAIN_PREFIX) && r.target?.startsWith(CHAIN_PREFIX))
    .map((r) => r.line);
}

/** Differences between a listing and what `captureTables` wants in that table; [] when they agree. */
export function verifyTable(want: TableRules, listing: TableListing): string[] {
  const problems: string[] = [];
  for (const chain of want.chains) {
    if (!listing.chains.includes(chain)) {
      problems.push(`${want.table} ${chain}: chain missing`);
      continue;
    }
    const expected = want.rules
      .filter((r) => r.chain === chain)
      .map((r) => `"${r.comment}" -> ${r.target[1] ?? ""}`);
    const found = listing.rules
      .filter((r) => r.chain === chain)
      .map((r) => `"${r.comment ?? ""}" -> ${r.target ?? ""}`);
    const at = expected.findIndex((rule, i) => rule !== found[i]);
    if (at >= 0 || found.length !== expected.length) {
      const i = at >= 0 ? at : expected.length;
      problems.push(
        `${want.table} ${chain} rule ${i + 1}: expected ${expected[i] ?? "no rule"}, found ${found[i] ?? "no rule"}`,
      );
    }
  }
  for (const hook of want.hooks) {
    const builtin = listing.rules.filter((r) => r.chain === hook.builtin);
    const jumps = builtin.filter((r) => r.target === hook.chain).length;
    if (jumps !== 1 || builtin[0]?.target !== hook.chain)
      problems.push(
        `${want.table} ${hook.builtin}: expected one jump to ${hook.chain}, first; found ${jumps}`,
      );
  }
  return problems;
}

/** `airlock init --dry-run` output: a `# ipv4` line, the IPv4 input, a `# ipv6` line, the IPv6 input. */
export function formatDryRun(rules: { ipv4: string; ipv6: string }): string {
  const ipv6 = rules.ipv6 === "" ? "# ipv6: not captured (--no-ipv6)\n" : `# ipv6\n${rules.ipv6}`;
  return `# ipv4\n${rules.ipv4}${ipv6}`;
}
