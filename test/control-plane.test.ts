// The test control plane itself (DESIGN.md §8): the pinned kube-apiserver with RBAC on, the
// Airlock CRDs and samples accepted by the real API server, kubectl and helm working against it,
// and a missing prerequisite failing with a message that names it.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { ROOT, type CommandResult } from "./helpers/cli.ts";
import { BUILD_SCRIPT, ensureBinaries } from "./helpers/control-plane-processes.ts";
import { CONTROL_PLANE_TIMEOUT_MS, sharedControlPlane, type ControlPlane } from "./helpers/control-plane.ts";

const VALID = join(ROOT, "crds/samples/valid");
const PINNED = /^KUBERNETES_VERSION=(\S+)$/m.exec(
  readFileSync(join(ROOT, "test/k8s/versions.env"), "utf8"),
)?.[1];
let serial = 0;

/** A namespace name no earlier run used: deleted namespaces never finish deleting here. */
function freshName(prefix: string): string {
  serial += 1;
  return `${prefix}-${Date.now().toString(36)}-${serial}`;
}

function ok(res: CommandResult, what: string): string {
  expect(res.code, `${what} failed:\n${res.stderr}`).to.equal(0);
  return res.stdout;
}

describe("control plane (builds etcd and kube-apiserver on first run)", function () {
  let cp: ControlPlane;

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await sharedControlPlane();
  });

  it("reports the pinned Kubernetes version at /version", async function () {
    const version = JSON.parse(ok(await cp.kubectl(["get", "--raw", "/version"]), "get /version")) as {
      gitVersion: string;
      major: string;
      minor: string;
    };
    expect(PINNED, "test/k8s/versions.env names KUBERNETES_VERSION").to.be.a("string");
    expect(version.gitVersion).to.equal(`v${PINNED ?? ""}`);
    expect(`${version.major}.${version.minor}`).to.equal(PINNED?.split(".").slice(0, 2).join("."));
    expect(cp.version).to.equal(version.gitVersion);
  });

  it("enforces RBAC: a ServiceAccount may not list Secrets until granted", async function () {
    const ns = freshName("rbac");
    ok(await cp.kubectl(["create", "namespace", ns]), "create namespace");
    ok(await cp.kubectl(["create", "serviceaccount", "agent", "-n", ns]), "create serviceaccount");
    const token = await cp.serviceAccountToken(ns, "agent");
    const denied = await cp.kubectl(["get", "secrets", "-n", ns], { token });
    expect(denied.code).to.not.equal(0);
    expect(denied.stderr).to.match(
      /Forbidden.*system:serviceaccount:[\w-]+:agent.*cannot list resource "secrets"/,
    );
    const canI = ["auth", "can-i", "list", "secrets", "-n", ns];
    expect((await cp.kubectl(canI, { token })).stdout.trim()).to.equal("no");
    expect((await cp.kubectl(canI)).stdout.trim()).to.equal("yes");
    ok(await cp.kubectl(["create", "role", "read", "--verb=list", "--resource=secrets", "-n", ns]), "role");
    const bind = ["create", "rolebinding", "read", "--role=read", `--serviceaccount=${ns}:agent`, "-n", ns];
    ok(await cp.kubectl(bind), "rolebinding");
    ok(await cp.kubectl(["get", "secrets", "-n", ns], { token }), "list secrets once granted");
  });

  it("runs helm against it with HOME in a private folder", async function () {
    expect(ok(await cp.helm(["version", "--short"]), "helm version")).to.match(/^v\d+\.\d+\.\d+/);
    ok(await cp.helm(["list", "--all-namespaces"]), "helm list");
  });

  describe("with the Airlock CRDs applied from crds/", function () {
    before(async function () {
      this.timeout(120_000);
      ok(await cp.kubectl(["apply", "-f", join(ROOT, "crds")]), "kubectl apply -f crds/");
      const crds = ["crd/egresspolicies.airlock.dev", "crd/credentials.airlock.dev"];
      ok(await cp.kubectl(["wait", "--for=condition=Established", "--timeout=60s", ...crds]), "wait");
    });

    it("serves both kinds", async function () {
      const resources = ok(
        await cp.kubectl(["api-resources", "--api-group=airlock.dev", "-o", "name"]),
        "list",
      );
      expect(resources.split("\n").filter(Boolean).sort()).to.deep.equal([
        "credentials.airlock.dev",
        "egresspolicies.airlock.dev",
      ]);
    });

    for (const file of readdirSync(VALID).filter((f) => f.endsWith(".yaml"))) {
      it(`accepts valid sample ${file} in a fresh namespace`, async function () {
        const ns = freshName("sample");
        ok(await cp.kubectl(["create", "namespace", ns]), "create namespace");
        const items = loadAll(readFileSync(join(VALID, file), "utf8"))
          .filter(
            (doc): doc is { metadata: Record<string, unknown> } => typeof doc === "object" && doc !== null,
          )
          .map((doc) => ({ ...doc, metadata: { ...doc.metadata, namespace: ns } }));
        const list = JSON.stringify({ apiVersion: "v1", kind: "List", items });
        const applied = ok(await cp.kubectl(["apply", "-f", "-"], { input: list }), `apply ${file}`);
        expect(applied.split("\n").filter(Boolean)).to.have.length(items.length);
        const names = ok(
          await cp.kubectl(["get", "egresspolicies,credentials", "-n", ns, "-o", "name"]),
          "get",
        );
        expect(names).to.include("egresspolicy.airlock.dev/");
      });
    }
  });
});

function buildScript(env: NodeJS.ProcessEnv): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile("bash", [BUILD_SCRIPT], { env, encoding: "utf8", timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe("control plane build script: a missing prerequisite fails, naming it", function () {
  let cache: string;
  beforeEach(() => (cache = mkdtempSync(join(tmpdir(), "airlock-k8s-cache-"))));
  afterEach(() => {
    rmSync(cache, { recursive: true, force: true });
  });

  it("names Go when it must build and there is no Go command", async function () {
    const res = await buildScript({ ...process.env, XDG_CACHE_HOME: cache, GO: "airlock-test-no-such-go" });
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.match(
      /k8s build: Go is not installed; it is needed to build etcd v[\d.]+ and kube-apiserver/,
    );
    expect(res.stderr).to.include("KUBEBUILDER_ASSETS");
  });

  it("names the step that failed when the Go command fails", async function () {
    const res = await buildScript({ ...process.env, XDG_CACHE_HOME: cache, GO: "false" });
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.match(
      /k8s build: could not download k8s.io\/kubernetes@v[\d.]+ with 'false mod download'/,
    );
  });

  it("names KUBEBUILDER_ASSETS when that folder lacks the binaries", async function () {
    const res = await buildScript({ ...process.env, XDG_CACHE_HOME: cache, KUBEBUILDER_ASSETS: cache });
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.include(
      `KUBEBUILDER_ASSETS=${cache} does not hold executable etcd and kube-apiserver`,
    );
  });

  it("uses etcd and kube-apiserver from KUBEBUILDER_ASSETS and builds nothing", async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    const built = await ensureBinaries();
    symlinkSync(built.etcd, join(cache, "etcd"));
    symlinkSync(built.kubeApiserver, join(cache, "kube-apiserver"));
    // No Go at all: had the script tried to build, it would fail.
    const res = await buildScript({
      ...process.env,
      KUBEBUILDER_ASSETS: cache,
      GO: "airlock-test-no-such-go",
    });
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.include(`ETCD=${cache}/etcd\nKUBE_APISERVER=${cache}/kube-apiserver\n`);
    expect(res.stdout).to.include(`KUBERNETES_VERSION=v${PINNED ?? ""}\n`);
  });
});
