// Prometheus for real: Debian's `prometheus` on this machine scrapes the agent's sidecar and both
// operator replicas (static targets read from the pods, labelled as the chart's PodMonitor would
// label them), a PromQL query returns the decisions the suite caused, and every expression of the
// chart's PrometheusRule and Grafana dashboard passes `promtool check rules` and evaluates against
// that Prometheus without error. Needs pod IPs reachable from here (true on the make e2e node).
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump, loadAll } from "js-yaml";
import { PORTS } from "../../sidecar/constants.ts";
import { ROOT } from "../helpers/cli.ts";
import { eventually } from "../helpers/eventually.ts";
import { freeLoopbackPort } from "../helpers/control-plane-processes.ts";
import type { World } from "./install.ts";
import { run, type Cluster } from "./kit.ts";
import { auditLines } from "./observe.ts";
import { AGENTS_NS, RELEASE_NS } from "./world.ts";

type Ctx = { cluster(): Cluster; world(): World };
type Groups = { groups: { name: string; rules: Record<string, unknown>[] }[] };

/** The PrometheusRule's groups, as `helm template` renders them with monitoring on. */
async function ruleGroups(cluster: Cluster): Promise<Groups> {
  const rendered = await cluster.helm([
    "template",
    "airlock",
    "charts/airlock",
    "-n",
    RELEASE_NS,
    "--set",
    "monitoring.enabled=true",
  ]);
  const rule = loadAll(rendered).find(
    (doc) => (doc as { kind?: string } | null)?.kind === "PrometheusRule",
  ) as { spec: Groups } | undefined;
  if (rule === undefined)
    throw new Error("the chart rendered no PrometheusRule with monitoring.enabled=true");
  return rule.spec;
}

/** Every panel expression of the dashboard, Grafana's variables set as "All" and a 1m interval. */
export function dashboardExpressions(): string[] {
  const dashboard = JSON.parse(
    readFileSync(join(ROOT, "charts/airlock/dashboards/airlock.json"), "utf8"),
  ) as {
    panels: { targets?: { expr?: string }[] }[];
  };
  return dashboard.panels
    .flatMap((panel) => panel.targets ?? [])
    .flatMap((target) => (target.expr === undefined ? [] : [target.expr]))
    .map((expr) => expr.replaceAll("$__rate_interval", "1m").replaceAll("$namespace", ".*"));
}

interface Running {
  url: string;
  process: ChildProcess;
  dir: string;
}

async function startPrometheus(
  binary: string,
  targets: { address: string; labels: Record<string, string> }[],
): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), "airlock-e2e-prometheus-"));
  const port = await freeLoopbackPort();
  const config = {
    global: { scrape_interval: "1s", evaluation_interval: "1s" },
    scrape_configs: [
      {
        job_name: "airlock",
        static_configs: targets.map((t) => ({ targets: [t.address], labels: t.labels })),
      },
    ],
  };
  writeFileSync(join(dir, "prometheus.yml"), dump(config));
  const child = spawn(
    binary,
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${String(port)}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const url = `http://127.0.0.1:${String(port)}`;
  await eventually(async () => expect((await fetch(`${url}/-/ready`)).status).to.equal(200), {
    timeoutMs: 30_000,
    what: "prometheus ready",
  });
  return { url, process: child, dir };
}

/** An instant query; throws with Prometheus' error when it is not a success. */
async function query(
  url: string,
  expr: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { result: [] } };
  if (body.status !== "success") throw new Error(`${expr}: ${body.error ?? res.status}`);
  return body.data?.result ?? [];
}

export function prometheusTests(ctx: Ctx): void {
  describe("Prometheus scraping the sidecar and the operator", function () {
    let prometheus: Running | undefined;
    after(function () {
      prometheus?.process.kill("SIGKILL");
      if (prometheus) rmSync(prometheus.dir, { recursive: true, force: true });
    });

    before(async function () {
      const binary = ctx.cluster().settings.prometheus;
      if (binary === undefined || binary === "")
        throw new Error(
          "prometheus is not installed: apt-get install prometheus (or set AIRLOCK_E2E_PROMETHEUS)",
        );
      const cluster = ctx.cluster();
      const ip = (args: string[]) => cluster.jsonpath(args, "{.status.podIP}");
      const operators = (
        await cluster.jsonpath(
          ["pods", "-n", RELEASE_NS, "-l", "app.kubernetes.io/component=operator"],
          "{.items[*].metadata.name}",
        )
      ).split(" ");
      const targets = [
        {
          address: `${await ip(["pod", ctx.world().agentPod, "-n", AGENTS_NS])}:${String(PORTS.metrics)}`,
          labels: { namespace: AGENTS_NS, pod: ctx.world().agentPod, role: "sidecar" },
        },
        ...(await Promise.all(
          operators.map(async (pod) => ({
            address: `${await ip(["pod", pod, "-n", RELEASE_NS])}:${String(PORTS.metrics)}`,
            labels: { namespace: RELEASE_NS, pod, role: "operator" },
          })),
        )),
      ];
      prometheus = await startPrometheus(binary, targets);
    });

    it("scrapes every target, and a PromQL query returns the decisions the suite caused", async function () {
      const url = (prometheus as Running).url;
      await eventually(
        async () => {
          const up = await query(url, "up");
          expect(up.map((s) => `${s.metric["role"] ?? ""}=${s.value[1]}`).sort()).to.deep.equal([
            "operator=1",
            "operator=1",
            "sidecar=1",
          ]);
        },
        { timeoutMs: 30_000, what: "every target up" },
      );
      const audit = await auditLines(ctx.cluster(), ctx.world().agentPod);
      const want: Record<string, number> = {};
      for (const line of audit) want[String(line["outcome"])] = (want[String(line["outcome"])] ?? 0) + 1;
      expect(want["inject"], "the suite caused injections").to.be.greaterThan(10);
      await eventually(
        async () => {
          const got: Record<string, number> = {};
          for (const s of await query(
            url,
            `sum by (outcome) (airlock_decisions_total{namespace="${AGENTS_NS}"})`,
          ))
            got[s.metric["outcome"] ?? ""] = Number(s.value[1]);
          expect(got).to.deep.equal(want);
        },
        { timeoutMs: 20_000, what: "Prometheus' decision counts equal the audit log's" },
      );
      const leading = await query(url, "sum(airlock_operator_leading)");
      expect(leading[0]?.value[1], "exactly one operator replica leads").to.equal("1");
    });

    it("promtool checks every PrometheusRule and dashboard expression; each evaluates without error", async function () {
      const promtool = ctx.cluster().settings.promtool;
      if (promtool === undefined || promtool === "")
        throw new Error("promtool is not installed: apt-get install prometheus");
      const groups = await ruleGroups(ctx.cluster());
      const dashboard = dashboardExpressions();
      expect(dashboard.length).to.be.greaterThan(5);
      const file = join((prometheus as Running).dir, "rules.yml");
      const all: Groups = {
        groups: [
          ...groups.groups,
          {
            name: "dashboard",
            rules: dashboard.map((expr, i) => ({ record: `airlock_e2e:dashboard_${String(i)}`, expr })),
          },
        ],
      };
      writeFileSync(file, dump(all));
      const checked = await run(promtool, ["check", "rules", file]);
      expect(checked.code, checked.stdout + checked.stderr).to.equal(0);
      const expressions = all.groups.flatMap((g) => g.rules.map((r) => String(r["expr"])));
      for (const expr of expressions) await query((prometheus as Running).url, expr);
    });
  });
}
