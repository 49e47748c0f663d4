// The `airlock` command as users run it: validate, explain, run (a real process with curl through
// it, metrics scraped over HTTP, audit lines on stdout, SIGHUP reloads), and demo.
import { expect } from "chai";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { canary } from "./helpers/canary.ts";
import { airlock, ROOT, startAirlock, type RunningCommand } from "./helpers/cli.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { eventually } from "./helpers/eventually.ts";

const INVALID = join(ROOT, "crds/samples/invalid");
const VALID = join(ROOT, "crds/samples/valid");

describe("cli: airlock validate", function () {
  it("accepts every valid sample (exit 0)", async function () {
    const res = await airlock(["validate", "--policy", VALID]);
    expect(res.stderr).to.equal("");
    expect(res.code).to.equal(0);
    expect(res.stdout).to.match(/^ok: \d+ file\(s\)/);
  });

  for (const file of readdirSync(INVALID).filter((f) => f.endsWith(".yaml"))) {
    it(`rejects invalid sample ${file} at the field its header names (exit 2)`, async function () {
      const path = join(INVALID, file);
      const expected = /^# expect: (\S+)/m.exec(readFileSync(path, "utf8"))?.[1];
      expect(expected, `${file} must start with "# expect: <field path>"`).to.be.a("string");
      const res = await airlock(["validate", "--policy", path]);
      expect(res.code).to.equal(2);
      expect(res.stderr).to.include(`${path}: ${expected ?? ""}: `);
    });
  }

  it("reports every error of every file, each located, in one run", async function () {
    const dir = mkdtempSync(join(tmpdir(), "airlock-validate-"));
    writeFileSync(join(dir, "a.yaml"), readFileSync(join(INVALID, "bare-star-host.yaml")));
    writeFileSync(join(dir, "b.yaml"), readFileSync(join(INVALID, "trace-method.yaml")));
    writeFileSync(join(dir, "c.yaml"), "kind: [unclosed");
    const res = await airlock(["validate", "--policy", dir]);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.include(`${join(dir, "a.yaml")}: spec.egress[0].hosts[0]: `);
    expect(res.stderr).to.include(`${join(dir, "b.yaml")}: spec.egress[0].methods[0]: `);
    expect(res.stderr).to.include(`${join(dir, "c.yaml")}: not valid YAML`);
  });

  it("a missing file or an unknown flag is a usage error (exit 2)", async function () {
    expect((await airlock(["validate", "--policy", "/nonexistent/p.yaml"])).code).to.equal(2);
    const flag = await airlock(["validate", "--polcy", VALID]);
    expect(flag.code).to.equal(2);
    expect(flag.stderr).to.include("usage: airlock validate");
  });
});

describe("cli: airlock explain", function () {
  const demo = join(ROOT, "examples/demo/policy.yaml");
  const cases = [
    {
      url: "https://api.example.test/v1/items",
      want: { outcome: "inject", reason: "RuleMatched", credential: "default/example-api" },
    },
    {
      url: "https://registry.example.test/x",
      want: { outcome: "allow", reason: "RuleMatched", rule: "registry" },
    },
    { url: "https://evil.example.test/", want: { outcome: "block", reason: "NoRuleMatched" } },
    { url: "http://api.example.test/v1/items", want: { outcome: "block", reason: "CredentialRequiresTls" } },
    {
      url: "http://169.254.169.254/latest/meta-data",
      want: { outcome: "block", reason: "AddressForbidden" },
    },
  ];
  for (const c of cases) {
    it(`GET ${c.url} → ${c.want.outcome} (${c.want.reason})`, async function () {
      const res = await airlock(["explain", "--json", "--policy", demo, "GET", c.url]);
      expect(res.code).to.equal(0);
      expect(JSON.parse(res.stdout)).to.include(c.want);
    });
  }
});

describe("cli: airlock explain says how each credential form goes on", function () {
  const sample = (name: string): string => join(ROOT, "crds/samples/valid", name);
  const cases: [string, string, string, Record<string, string>][] = [
    [
      "header-edits.yaml",
      "GET",
      "https://api.example.com/x",
      { edits: "remove cookie; remove x-debug; set X-Client: coding-agent/1.0" },
    ],
    [
      "oauth2.yaml",
      "GET",
      "https://api.acme.example/x",
      {
        attached:
          "header Authorization: Bearer <an OAuth2 access token (clientCredentials grant at https://auth.acme.example/oauth/token)>",
      },
    ],
    [
      "github-app.yaml",
      "GET",
      "https://github.com/acme/app.git/info/refs",
      {
        attached:
          "Authorization: Basic x-access-token:<a GitHub App installation token (app 12345, installation 6789012)>",
      },
    ],
    [
      "aws-sigv4.yaml",
      "PUT",
      "https://agent-reports.s3.eu-west-1.amazonaws.com/r.csv",
      { attached: "signed with AWS SigV4 (region from the host, service from the host, UNSIGNED-PAYLOAD)" },
    ],
    [
      "decision-hook.yaml",
      "POST",
      "https://api.payments.example/pay",
      { asks: "hook https://egress-hook.platform.example:8443/check (timeout 500 ms, answers kept 30 s)" },
    ],
  ];
  for (const [file, method, url, want] of cases)
    it(`${file}: ${method} ${url}`, async function () {
      const res = await airlock(["explain", "--json", "--policy", sample(file), method, url]);
      expect(res.code, res.stderr).to.equal(0);
      expect(JSON.parse(res.stdout)).to.include({ outcome: "inject", ...want });
    });
});

describe("cli: airlock run as a real process", function () {
  const SECRET = "run-secret-abcdef123456";
  canary.secret(SECRET, "cli.test.ts airlock run: Secret api-token key token");
  let upstream: EchoUpstream;
  let dir: string;
  let run: RunningCommand;
  let proxy: string;
  let metrics: string;
  let bundle: string;

  const policyYaml = (extraHost: string) => `apiVersion: airlock.dev/v1alpha1
kind: EgressPolicy
metadata: {name: laptop}
spec:
  podSelector: {}
  egress:
    - {name: api, hosts: [api.example.test], ports: [${upstream.port}], credential: api}
    - {name: open, hosts: [${extraHost}], ports: [${upstream.port}]}
---
apiVersion: airlock.dev/v1alpha1
kind: Credential
metadata: {name: api}
spec:
  secretRef: {name: api-token, key: token}
  injection: {header: {name: X-Api-Key}}
---
apiVersion: v1
kind: Secret
metadata: {name: api-token}
data: {token: ${Buffer.from(SECRET).toString("base64")}}
`;

  before(async function () {
    upstream = await startEchoUpstream({ tls: true });
    dir = mkdtempSync(join(tmpdir(), "airlock-run-"));
    writeFileSync(join(dir, "policy.yaml"), policyYaml("open.example.test"));
    writeFileSync(join(dir, "upstream-ca.pem"), upstream.caPem);
    run = await startAirlock(
      [
        "run",
        "--policy",
        dir,
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--upstream-ca",
        join(dir, "upstream-ca.pem"),
        "--ca-out",
        join(dir, "ca.pem"),
        "--resolve",
        "api.example.test:127.0.0.1",
        "--resolve",
        "open.example.test:127.0.0.1",
        "--resolve",
        "later.example.test:127.0.0.1",
        "--allow-address",
        "127.0.0.1/32",
      ],
      /listening on http:\/\/127\.0\.0\.1:\d+/,
    );
    proxy = /listening on (http:\/\/\S+)/.exec(run.stderr())?.[1] ?? "";
    metrics = /metrics on (http:\/\/\S+)/.exec(run.stderr())?.[1] ?? "";
    bundle = pemBundle(readFileSync(join(dir, "ca.pem"), "utf8"), upstream.caPem);
  });
  after(async function () {
    run.child.kill("SIGTERM");
    await run.exited;
    await upstream.close();
  });

  it("prints one listening line and serves the three outcomes to curl", async function () {
    expect(run.stderr().match(/listening on/g)).to.have.length(1);
    const inject = await curl([
      "-x",
      proxy,
      "--cacert",
      bundle,
      `https://api.example.test:${upstream.port}/me`,
    ]);
    expect(inject.status).to.equal(200);
    expect(upstream.received.at(-1)?.headers["x-api-key"]).to.equal(SECRET);
    expect(inject.body).not.to.include(SECRET);
    const allow = await curl([
      "-x",
      proxy,
      "--cacert",
      bundle,
      `https://open.example.test:${upstream.port}/`,
    ]);
    expect(allow.status).to.equal(200);
    const block = await curl([
      "-x",
      proxy,
      "--cacert",
      bundle,
      `https://later.example.test:${upstream.port}/`,
    ]);
    expect(block.stderr).to.match(/403/);
  });

  it("serves /metrics, /healthz and /readyz on --metrics", async function () {
    expect(metrics).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const scrape = await curl([`${metrics}/metrics`]);
    expect(scrape.status).to.equal(200);
    expect(scrape.body).to.match(
      /airlock_decisions_total\{outcome="inject",reason="RuleMatched",policy="default\/laptop",rule="api"\} 1/,
    );
    expect(scrape.body).to.match(/airlock_policy_info\{generation="1",hash="sha256:[0-9a-f]{64}"\} 1/);
    expect(scrape.body).to.include("process_cpu_seconds_total");
    expect(scrape.body).not.to.include(SECRET);
    expect((await curl([`${metrics}/healthz`])).status).to.equal(200);
    expect((await curl([`${metrics}/readyz`])).status).to.equal(200);
  });

  it("writes one JSON audit line per decision on stdout, never the secret", async function () {
    // The lines arrive on the process's stdout after the responses: wait for all three.
    const lines = await eventually(
      () => {
        const parsed = run
          .stdout()
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(parsed.map((l) => l.outcome)).to.include.members(["inject", "allow", "block"]);
        return parsed;
      },
      { timeoutMs: 5000, intervalMs: 25, what: "the audit lines of the requests above" },
    );
    expect(lines.find((l) => l.outcome === "inject")).to.include({
      credential: "default/api",
      host: "api.example.test",
      path: "/me",
    });
    expect(run.stdout() + run.stderr()).not.to.include(SECRET);
  });

  it("SIGHUP: an invalid file is refused and the running policy kept; a valid one is applied", async function () {
    writeFileSync(join(dir, "policy.yaml"), policyYaml('"*"'));
    run.child.kill("SIGHUP");
    await waitFor(() => run.stderr().includes("reload refused"), "the refused reload");
    expect(run.stderr()).to.match(/policy\.yaml: spec\.egress\[1\]\.hosts\[0\]: /);
    const stillOpen = await curl([
      "-x",
      proxy,
      "--cacert",
      bundle,
      `https://open.example.test:${upstream.port}/`,
    ]);
    expect(stillOpen.status).to.equal(200);
    writeFileSync(join(dir, "policy.yaml"), policyYaml("later.example.test"));
    run.child.kill("SIGHUP");
    await waitFor(() => run.stderr().includes("reloaded policy generation 2"), "the reload");
    const nowOpen = await curl([
      "-x",
      proxy,
      "--cacert",
      bundle,
      `https://later.example.test:${upstream.port}/`,
    ]);
    expect(nowOpen.status).to.equal(200);
  });

  it("invalid policy files: exit 2 before listening, every error located", async function () {
    const bad = mkdtempSync(join(tmpdir(), "airlock-bad-"));
    writeFileSync(join(bad, "p.yaml"), readFileSync(join(INVALID, "tld-wildcard.yaml")));
    const res = await airlock([
      "run",
      "--policy",
      bad,
      "--listen",
      "127.0.0.1:0",
      "--metrics",
      "127.0.0.1:0",
    ]);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.include(`${join(bad, "p.yaml")}: spec.egress[0].hosts[0]: `);
    expect(res.stderr).not.to.include("listening on");
  });
});

describe("cli: airlock sidecar --kubeconfig", function () {
  it("a kubeconfig whose user runs a program is refused at start, naming the field (exit 2)", async function () {
    const dir = mkdtempSync(join(tmpdir(), "airlock-kubeconfig-"));
    const kubeconfig = join(dir, "config");
    writeFileSync(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]",
        "users: [{name: u, user: {exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}}}]",
        "contexts: [{name: x, context: {cluster: c, user: u}}]",
        "current-context: x",
      ].join("\n"),
    );
    const res = await airlock([
      ...["sidecar", "--kubeconfig", kubeconfig, "--policy", join(ROOT, "examples/demo/policy.yaml")],
      ...["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--transparent", "127.0.0.1:0"],
      ...["--dns", "127.0.0.1:0", "--trust-bundle", join(dir, "trust.pem")],
    ]);
    rmSync(dir, { recursive: true, force: true });
    expect(res.code).to.equal(2);
    expect(res.stderr).to.include(
      `kubeconfig ${kubeconfig}: user u: exec is not supported by the sidecar; give it a token, a tokenFile or a client certificate`,
    );
    expect(res.stderr).not.to.include("listening on");
  });
});

describe("cli: airlock demo", function () {
  it("tours inject, allow and block and exits 0", async function () {
    const res = await airlock(["demo"], 15_000);
    expect(res.stderr).to.equal("");
    expect(res.code).to.equal(0);
    expect(res.stdout).to.match(/^inject\s+200\s+GET https:\/\/api\.example\.test/m);
    expect(res.stdout).to.match(/^allow\s+200\s+GET https:\/\/registry\.example\.test/m);
    expect(res.stdout).to.match(/^block\s+403\s+GET https:\/\/evil\.example\.test/m);
    expect(res.stdout).not.to.include("demo-token-not-real");
    expect(res.stdout).to.include("[airlock:redacted]");
  });
});

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  await eventually(() => expect(predicate()).to.equal(true), { timeoutMs, intervalMs: 25, what });
}
