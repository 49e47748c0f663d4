// What the e2e reads back from the world: the upstream's arrivals (what really left the pod) and
// the sidecar's audit log (what the boundary decided).
import { expect } from "chai";
import { eventually } from "../helpers/eventually.ts";
import type { World } from "./install.ts";
import { arrivals, type Arrival, type Cluster } from "./kit.ts";
import { AGENTS_NS, WORLD_NS } from "./world.ts";

export const AGENT = "agent";
export const SIDECAR = "airlock-sidecar";

/** The upstream's arrivals whose path carries `mark`. */
export async function arrivalsOf(cluster: Cluster, mark: string): Promise<Arrival[]> {
  return (await arrivals(cluster, WORLD_NS, "upstream")).filter((a) => a.url?.includes(mark) === true);
}

/** Waits until exactly one request carrying `mark` has arrived and returns it. */
export async function arrivedOnce(cluster: Cluster, mark: string): Promise<Arrival> {
  return eventually(
    async () => {
      const seen = await arrivalsOf(cluster, mark);
      expect(seen, `arrivals of ${mark}`).to.have.length(1);
      return seen[0] as Arrival;
    },
    { timeoutMs: 15_000, what: `the upstream receiving ${mark}` },
  );
}

/** One audit line of the sidecar (pino JSON). */
export type AuditLine = Record<string, unknown>;

/** Every audit decision the agent pod's sidecar has logged so far. */
export async function auditLines(cluster: Cluster, pod: string): Promise<AuditLine[]> {
  const logs = await cluster.kubectl(["logs", "-n", AGENTS_NS, pod, "-c", SIDECAR]);
  return logs
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as AuditLine)
    .filter((line) => typeof line["outcome"] === "string");
}

/** How many audit lines have every field of `fields`. */
export async function auditCount(cluster: Cluster, world: World, fields: AuditLine): Promise<number> {
  const lines = await auditLines(cluster, world.agentPod);
  return lines.filter((line) => Object.entries(fields).every(([k, v]) => line[k] === v)).length;
}

/** Waits for one more audit line with `fields` than `before`. */
export async function audited(
  cluster: Cluster,
  world: World,
  fields: AuditLine,
  before: number,
): Promise<void> {
  await eventually(
    async () => {
      expect(await auditCount(cluster, world, fields), JSON.stringify(fields)).to.be.greaterThan(before);
    },
    { timeoutMs: 15_000, what: `an audit line ${JSON.stringify(fields)}` },
  );
}
