// `airlock inject` as users run it (bin/airlock): outputs pinned by golden files, injecting twice
// equals injecting once, refusals exit 2 with every field path and print nothing.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INPUT_DIR, OUTPUT_DIR, readInput, REFUSAL_PATHS } from "../operator/inject/test-fixtures.ts";
import { AIRLOCK, airlock, ROOT, type CommandResult } from "./helpers/cli.ts";
import { assertNoStaleGoldens, expectGolden } from "./helpers/golden.ts";

const KEY = ["--bundle-key", `${INPUT_DIR}/bundle-key.pem`];
const GOLDEN_FLAGS = ["--image", "airlock:golden", ...KEY];

// `airlock inject -f -` with `input` on stdin.
function airlockStdin(args: string[], input: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(AIRLOCK, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

const CASES: { name: string; input: string; output: string; flags?: string[] }[] = [
  { name: "plain pod", input: "plain-pod.yaml", output: "plain-pod.yaml" },
  {
    name: "pod with init containers, security contexts and volumes",
    input: "pod-full.yaml",
    output: "pod-full.yaml",
  },
  { name: "a pod as JSON", input: "pod.json", output: "pod-json.yaml" },
  { name: "Deployment", input: "deployment.yaml", output: "deployment.yaml" },
  { name: "StatefulSet", input: "statefulset.yaml", output: "statefulset.yaml" },
  { name: "DaemonSet", input: "daemonset.yaml", output: "daemonset.yaml" },
  { name: "ReplicaSet", input: "replicaset.yaml", output: "replicaset.yaml" },
  { name: "Job", input: "job.yaml", output: "job.yaml" },
  { name: "CronJob", input: "cronjob.yaml", output: "cronjob.yaml" },
  { name: "other kinds, empty documents and a List", input: "mixed.yaml", output: "mixed.yaml" },
  {
    name: "pull policy and upstream CA",
    input: "plain-pod.yaml",
    output: "plain-pod-upstream-ca.yaml",
    flags: ["--image-pull-policy", "Always", "--upstream-ca", `${INPUT_DIR}/upstream-ca.pem`],
  },
];

describe("airlock inject", function () {
  this.timeout(60_000);
  const used = new Set<string>([`${INPUT_DIR}/bundle-key.pem`, `${INPUT_DIR}/upstream-ca.pem`]);
  let scratch = "";
  before(() => {
    scratch = mkdtempSync(join(tmpdir(), "airlock-inject-"));
  });
  after(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  for (const c of CASES)
    it(`${c.name}: output pinned, and injecting it again changes nothing`, async () => {
      used.add(`${INPUT_DIR}/${c.input}`).add(`${OUTPUT_DIR}/${c.output}`);
      const flags = [...GOLDEN_FLAGS, ...(c.flags ?? [])];
      const once = await airlock(["inject", "-f", `${INPUT_DIR}/${c.input}`, ...flags]);
      expect(once.stderr).to.equal("");
      expect(once.code).to.equal(0);
      expectGolden(`${OUTPUT_DIR}/${c.output}`, once.stdout);
      const path = join(scratch, c.output);
      writeFileSync(path, once.stdout);
      const twice = await airlock(["inject", "-f", path, ...flags]);
      expect(twice.code).to.equal(0);
      expect(twice.stdout, "injecting twice differs from injecting once").to.equal(once.stdout);
    });

  it("reads stdin with -f - and defaults the image to airlock:<package version>", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const result = await airlockStdin(["inject", "-f", "-", ...KEY], readInput("plain-pod.yaml"));
    expect(result.code).to.equal(0);
    expect(result.stdout).to.contain(`image: airlock:${version}\n`);
  });

  it("refuses every unsafe manifest with exit 2, each reason at its path, and prints nothing", async () => {
    used.add(`${INPUT_DIR}/refusals.yaml`);
    const file = `${INPUT_DIR}/refusals.yaml`;
    const result = await airlock(["inject", "-f", file, ...KEY]);
    expect(result.code).to.equal(2);
    expect(result.stdout).to.equal("");
    const got: Record<string, string[]> = {};
    for (const line of result.stderr.trimEnd().split("\n")) {
      const match = /^(.+?): document (\d+) \((\w+)\/([\w-]+)\): (\S+): (.+; .+)$/.exec(line);
      if (!match) throw new Error(`not FILE: document N (Kind/name): PATH: MESSAGE; hint: ${line}`);
      expect(match[1]).to.equal(file);
      const name = match[4] ?? "";
      (got[name] ??= []).push(match[5] ?? "");
    }
    expect(got).to.deep.equal(REFUSAL_PATHS);
  });

  it("one refused manifest among good ones: nothing printed at all", async () => {
    const bad =
      "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {hostNetwork: true, containers: []}\n";
    const result = await airlockStdin(
      ["inject", "-f", "-", ...KEY],
      `${readInput("plain-pod.yaml")}---\n${bad}`,
    );
    expect(result).to.deep.equal({
      code: 2,
      stdout: "",
      stderr:
        "<stdin>: document 2 (Pod/bad): spec.hostNetwork: the pod would share the node's network, outside the " +
        "capture rules; remove hostNetwork\n",
    });
  });

  const usage: { name: string; args: string[]; stderr: RegExp }[] = [
    {
      name: "no --bundle-key",
      args: ["-f", `${INPUT_DIR}/plain-pod.yaml`],
      stderr: /--bundle-key is required/,
    },
    {
      name: "a --bundle-key that holds no public key",
      args: ["-f", `${INPUT_DIR}/plain-pod.yaml`, "--bundle-key", `${INPUT_DIR}/upstream-ca.pem`],
      stderr: /--bundle-key .*no PEM public key/,
    },
    { name: "no -f", args: KEY, stderr: /-f FILE is required/ },
    {
      name: "a missing file",
      args: ["-f", "no/such.yaml", ...KEY],
      stderr: /-f no\/such.yaml: cannot read it \(ENOENT\)/,
    },
    {
      name: "an unknown pull policy",
      args: ["-f", `${INPUT_DIR}/plain-pod.yaml`, ...KEY, "--image-pull-policy", "Sometimes"],
      stderr: /expected one of Always, IfNotPresent, Never/,
    },
  ];
  for (const c of usage)
    it(`${c.name}: exit 2 with a clear error`, async () => {
      const result = await airlock(["inject", ...c.args]);
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal("");
      expect(result.stderr).to.match(c.stderr);
    });

  it("input that is not YAML: exit 2 naming it", async () => {
    const result = await airlockStdin(["inject", "-f", "-", ...KEY], "kind: [Pod\n");
    expect(result.code).to.equal(2);
    expect(result.stdout).to.equal("");
    expect(result.stderr).to.match(/^<stdin>: not YAML or JSON: /);
  });

  it("--help says the key is required and nothing is read from a cluster", async () => {
    const result = await airlock(["inject", "--help"]);
    expect(result.code).to.equal(0);
    expect(result.stdout)
      .to.match(/--bundle-key PEM +required/)
      .and.match(/Offline: nothing is read from a cluster/);
  });

  it("every file in test/golden/inject is used by a case", () => {
    assertNoStaleGoldens("test/golden/inject", used);
  });
});
