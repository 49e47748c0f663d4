// `airlock operator` as a real process against the real API server (control plane): it takes the
// Lease, writes status on what is applied with kubectl, and releases the Lease when stopped.
import { expect } from "chai";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump, loadAll } from "js-yaml";
import { airlock, ROOT, startAirlock, type RunningCommand } from "./helpers/cli.ts";
import {
  CONTROL_PLANE_TIMEOUT_MS,
  installAirlockCrds,
  serviceAccountCan,
  sharedControlPlane,
  writeTokenKubeconfig,
  type ControlPlane,
} from "./helpers/control-plane.ts";
import { eventuallyMatch } from "./helpers/eventually.ts";

const INVALID = join(ROOT, "crds/samples/invalid");

describe("airlock operator command (control plane): a real operator process", function () {
  let cp: ControlPlane;
  let operator: RunningCommand;
  const ns = `airlock-opcli-${randomBytes(3).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "airlock-opcli-"));
  const keyPath = join(dir, "signing-key.pem");
  const kubeconfig = join(dir, "operator.kubeconfig");

  const jsonpath = async (args: string[]): Promise<string> =>
    (await cp.kubectl([...args, "-n", ns])).stdout.trim();
  const eventually = (read: () => Promise<string>, want: RegExp): Promise<string> =>
    eventuallyMatch(read, want, { intervalMs: 250 });
  const apply = async (yaml: string): Promise<void> => {
    const res = await cp.kubectl(["apply", "-n", ns, "-f", "-"], { input: yaml });
    if (res.code !== 0) throw new Error(res.stderr);
  };
  const policyYaml = (name: string, path: string): string => `apiVersion: airlock.dev/v1alpha1
kind: EgressPolicy
metadata: {name: ${name}}
spec:
  podSelector: {matchLabels: {app: nobody-yet}}
  egress:
    - {name: docs, hosts: [docs.example.test], paths: ["${path}"]}
`;

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await sharedControlPlane();
    await installAirlockCrds(cp);
    for (const args of [["create", "namespace", ns]]) {
      const res = await cp.kubectl(args);
      if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    }
    // The operator runs as a ServiceAccount bound to exactly operator/rbac/clusterrole.yaml, not as admin.
    for (const args of [
      ["apply", "-f", join(ROOT, "operator/rbac/clusterrole.yaml")],
      ["-n", ns, "create", "serviceaccount", "airlock-operator"],
      [
        "create",
        "clusterrolebinding",
        ns,
        "--clusterrole=airlock-operator",
        `--serviceaccount=${ns}:airlock-operator`,
      ],
      // Its own Secrets (webhook certificate) in the namespace it runs in (--lease-namespace).
      [
        ...["-n", ns, "create", "rolebinding", "airlock-operator"],
        ...["--clusterrole=airlock-operator-namespace", `--serviceaccount=${ns}:airlock-operator`],
      ],
    ]) {
      const res = await cp.kubectl(args);
      if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    }
    const token = await cp.serviceAccountToken(ns, "airlock-operator");
    writeTokenKubeconfig(cp, kubeconfig, token);
    writeFileSync(
      keyPath,
      generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      { mode: 0o600 },
    );
    operator = await startAirlock(
      [
        "operator",
        "--kubeconfig",
        kubeconfig,
        "--signing-key",
        keyPath,
        "--lease-namespace",
        ns,
        "--identity",
        "op-a",
        "--resync",
        "1",
        // The defaults (0.0.0.0:9443, 0.0.0.0:15090) would clash with any other operator here.
        "--webhook",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
      ],
      /operator op-a started/,
    );
  });
  after(async function () {
    if (operator.child.exitCode === null) {
      operator.child.kill("SIGKILL");
      await operator.exited;
    }
  });

  it("refuses to start without a usable signing key (exit 2)", async function () {
    const res = await airlock([
      "operator",
      "--kubeconfig",
      cp.kubeconfig,
      "--signing-key",
      join(dir, "missing.pem"),
      "--webhook",
      "127.0.0.1:0",
    ]);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.include("--signing-key");
  });

  it("its ServiceAccount can do what it needs and no more", async function () {
    const can = (...args: string[]) => serviceAccountCan(cp, ns, "airlock-operator", ...args);
    expect(await can("list", "egresspolicies.airlock.dev", "-A")).to.equal("yes");
    expect(await can("patch", "egresspolicies.airlock.dev", "--subresource=status", "-n", ns)).to.equal(
      "yes",
    );
    expect(await can("create", "roles", "-n", ns)).to.equal("yes");
    expect(await can("update", "egresspolicies.airlock.dev", "-n", ns)).to.equal("no");
    expect(await can("delete", "secrets", "-n", ns)).to.equal("no");
    // Secrets: watch (metadata only) and get by name; never list, which would return every value.
    expect(await can("get", "secrets", "-n", ns)).to.equal("yes");
    expect(await can("watch", "secrets", "-A")).to.equal("yes");
    expect(await can("list", "secrets", "-A")).to.equal("no");
    expect(await can("create", "pods", "-n", ns)).to.equal("no");
    expect(await can("create", "clusterroles")).to.equal("no");
    expect(await can("create", "clusterrolebindings")).to.equal("no");
  });

  it("takes the Lease and becomes ready (/readyz: namespace, CRDs and RBAC all there)", async function () {
    await eventually(
      () => jsonpath(["get", "lease", "airlock-operator", "-o", "jsonpath={.spec.holderIdentity}"]),
      /^op-a$/,
    );
    const metrics = /metrics on (http:\/\/\S+)/.exec(operator.stderr())?.[1] ?? "";
    await eventually(async () => {
      const res = await fetch(`${metrics}/readyz`);
      return `${String(res.status)} ${await res.text()}`;
    }, /^200 /);
  });

  it("writes Ready on a valid policy (Compiled: it selects no injected pod yet)", async function () {
    await apply(policyYaml("valid", "/public/**"));
    const reason = await eventually(
      () =>
        jsonpath([
          "get",
          "egresspolicy",
          "valid",
          "-o",
          'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
        ]),
      /^Compiled$/,
    );
    expect(reason).to.equal("Compiled");
    expect(
      await jsonpath(["get", "egresspolicy", "valid", "-o", "jsonpath={.status.observedGeneration}"]),
    ).to.equal("1");
  });

  it("reports an invalid policy as InvalidSpec with its field path", async function () {
    await apply(policyYaml("invalid", "/a/***"));
    await eventually(
      () =>
        jsonpath([
          "get",
          "egresspolicy",
          "invalid",
          "-o",
          'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
        ]),
      /^InvalidSpec$/,
    );
    const message = await jsonpath([
      "get",
      "egresspolicy",
      "invalid",
      "-o",
      'jsonpath={.status.conditions[?(@.type=="Ready")].message}',
    ]);
    expect(message).to.include("spec.egress[0].paths[0]");
  });

  // Each sample goes in as kubectl would send it; the API server refuses it at the field path, or
  // it is stored and the operator reports InvalidSpec with that path (CompileFailed when the error
  // is between objects: a rule against the Credential it names).
  for (const file of readdirSync(INVALID).filter((f) => f.endsWith(".yaml"))) {
    it(`invalid sample ${file}: refused by the API server, or InvalidSpec or CompileFailed, at its field path`, async function () {
      const text = readFileSync(join(INVALID, file), "utf8");
      const expected = /^# expect: (\S+)/m.exec(text)?.[1] ?? "";
      expect(expected, `${file} must start with "# expect: <field path>"`).to.not.equal("");
      const items = loadAll(text).map((doc) => {
        const obj = doc as { kind: string; metadata: { name: string; namespace?: string } };
        obj.metadata.namespace = ns;
        return obj;
      });
      const res = await cp.kubectl(["apply", "-f", "-"], {
        input: items.map((item) => dump(item)).join("---\n"),
      });
      if (res.code !== 0) {
        // Where the API server's own message locates it, when that differs (e.g. a duplicate list key).
        const apiExpected = /^# expect-api: (\S+)/m.exec(text)?.[1] ?? expected;
        const escaped = apiExpected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        expect(res.stderr).to.match(new RegExp(`${escaped}(: |")`)); // "path: problem" or unknown field "path"
        return;
      }
      const cr = items.find((o) => o.kind === "EgressPolicy" || o.kind === "Credential");
      if (cr === undefined) throw new Error(`${file} holds no EgressPolicy or Credential`);
      const condition = (field: string) =>
        jsonpath([
          "get",
          cr.kind.toLowerCase(),
          cr.metadata.name,
          "-o",
          `jsonpath={.status.conditions[?(@.type=="Ready")].${field}}`,
        ]);
      // kubectl creates the objects one by one: a reconcile between them may report what is missing
      // yet (the Credential, before it is created) until the next one sees them all.
      const escaped = expected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      await eventually(() => condition("message"), new RegExp(escaped));
      expect(await condition("reason")).to.match(/^(InvalidSpec|CompileFailed)$/);
    });
  }

  it("stops on SIGTERM (exit 0) and releases the Lease", async function () {
    operator.child.kill("SIGTERM");
    expect(await operator.exited).to.equal(0);
    const holder = await jsonpath([
      "get",
      "lease",
      "airlock-operator",
      "-o",
      "jsonpath={.spec.holderIdentity}",
    ]);
    expect(holder).to.not.equal("op-a");
  });
});
