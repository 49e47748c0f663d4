// What the end-to-end suite needs to drive any cluster: its settings from the environment (a
// kubeconfig and image references, so the same suite runs on the node test/e2e/node.sh builds and
// on kind), kubectl and helm that throw with their stderr, `kubectl exec` into a pod, and the test
// upstream's record of what arrived.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../helpers/cli.ts";

/** The suite's inputs; test/e2e/run.sh sets them, a kind workflow sets them the same way. */
export interface E2eSettings {
  kubeconfig: string;
  kubectl: string;
  helm: string;
  /** The Airlock image (repository:tag) the chart installs and the webhook injects. */
  image: string;
  /** The agent image: curl, python3, git, node, iptables, ping (test/e2e/agent.Containerfile). */
  agentImage: string;
  pullPolicy: string;
  /** Where helm keeps its own state (a private folder). */
  helmHome: string;
  /** Prometheus and promtool binaries, and whether pod IPs are reachable from here. */
  prometheus: string | undefined;
  promtool: string | undefined;
}

function required(name: string, what: string): string {
  const value = process.env[name];
  if (value === undefined || value === "")
    throw new Error(`${name} is not set: ${what} (make e2e sets it; see docs/testing.md)`);
  return value;
}

/** Reads the settings; throws naming the first missing variable. */
export function e2eSettings(): E2eSettings {
  return {
    kubeconfig: required("AIRLOCK_E2E_KUBECONFIG", "the kubeconfig of the cluster under test"),
    kubectl: required("AIRLOCK_E2E_KUBECTL", "the kubectl binary"),
    helm: required("AIRLOCK_E2E_HELM", "the helm binary"),
    image: required("AIRLOCK_E2E_IMAGE", "the Airlock image, REPOSITORY:TAG"),
    agentImage: required("AIRLOCK_E2E_AGENT_IMAGE", "the agent image, REPOSITORY:TAG"),
    pullPolicy: process.env["AIRLOCK_E2E_PULL_POLICY"] ?? "Never",
    helmHome: required("AIRLOCK_E2E_HELM_HOME", "a private folder for helm's state"),
    prometheus: process.env["AIRLOCK_E2E_PROMETHEUS"],
    promtool: process.env["AIRLOCK_E2E_PROMTOOL"],
  };
}

/** The result of a finished program. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file args`, feeding `input`; never throws for a non-zero exit. */
export function run(
  file: string,
  args: string[],
  options: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${err.message}`, { cause: err }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === null ? 1 : 128), stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** kubectl and helm bound to the settings. */
export class Cluster {
  readonly settings: E2eSettings;
  constructor(settings: E2eSettings) {
    this.settings = settings;
  }

  /** kubectl ARGS; throws with stderr on a non-zero exit. */
  async kubectl(args: string[], input?: string, env?: Record<string, string>): Promise<string> {
    const res = await this.kubectlRun(args, input, env);
    if (res.code !== 0)
      throw new Error(`kubectl ${args.join(" ")} exited ${String(res.code)}: ${res.stderr}`);
    return res.stdout;
  }

  kubectlRun(args: string[], input?: string, env?: Record<string, string>): Promise<Run> {
    return run(this.settings.kubectl, ["--kubeconfig", this.settings.kubeconfig, ...args], {
      ...(input === undefined ? {} : { input }),
      ...(env === undefined ? {} : { env }),
    });
  }

  /** `kubectl apply -f -` of YAML or JSON text. */
  apply(text: string): Promise<string> {
    return this.kubectl(["apply", "-f", "-"], text);
  }

  /** helm ARGS with HOME and helm's folders private; throws with stderr on a non-zero exit. */
  async helm(args: string[]): Promise<string> {
    const home = this.settings.helmHome;
    const res = await run(this.settings.helm, ["--kubeconfig", this.settings.kubeconfig, ...args], {
      env: {
        HOME: home,
        HELM_CACHE_HOME: join(home, "cache"),
        HELM_CONFIG_HOME: join(home, "config"),
        HELM_DATA_HOME: join(home, "data"),
      },
      timeoutMs: 600_000,
    });
    if (res.code !== 0) throw new Error(`helm ${args.join(" ")} exited ${String(res.code)}: ${res.stderr}`);
    return res.stdout;
  }

  /** `kubectl exec` into `pod`'s `container`: the command's own exit code and output. */
  exec(
    namespace: string,
    pod: string,
    container: string,
    command: string[],
    env: Record<string, string> = {},
  ) {
    const assignments = Object.entries(env).map(([name, value]) => `${name}=${value}`);
    const argv = assignments.length === 0 ? command : ["env", ...assignments, ...command];
    return this.kubectlRun(["exec", "-n", namespace, pod, "-c", container, "--", ...argv]);
  }

  /** A JSON field of an object (`kubectl get -o jsonpath`). */
  async jsonpath(args: string[], path: string): Promise<string> {
    return this.kubectl(["get", ...args, "-o", `jsonpath=${path}`]);
  }
}

/** One arrival at the test upstream (test/e2e/upstream.ts writes these as JSON lines). */
export interface Arrival {
  kind: "http" | "udp" | "ready";
  scheme?: string;
  method?: string;
  url?: string;
  headers?: Record<string, string | string[] | undefined>;
  from?: string;
  bytes?: number;
}

/** Everything the upstream pod has recorded so far. */
export async function arrivals(cluster: Cluster, namespace: string, pod: string): Promise<Arrival[]> {
  const logs = await cluster.kubectl(["logs", "-n", namespace, pod]);
  return logs
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Arrival);
}

/** A fresh marker to put in a request path, so its arrival can be told from every other. */
export function marker(label: string): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
