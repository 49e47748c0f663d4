// `airlock sidecar --bundle-key-env NAME` (issue 8, items 1 and 5): the webhook hands the operator's
// public key(s) to the sidecar in an environment variable; during a key rotation it holds two, and
// a bundle signed by either is applied while one signed by any other key is refused.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signBundle } from "../sidecar/control/bundle.ts";
import { compile } from "../sidecar/policy/compile.ts";
import { CertificateAuthority } from "../sidecar/tls/ca.ts";
import { stopProcess } from "./helpers/agent-pods.ts";
import { AIRLOCK, ROOT, startAirlock, type RunningCommand } from "./helpers/cli.ts";
import { policy } from "./helpers/sidecar.ts";

const ENV = "AIRLOCK_BUNDLE_KEYS";
const pem = (key: KeyObject): string => key.export({ type: "spki", format: "pem" }).toString();

function post(port: number, path: string, body?: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: body === undefined ? "GET" : "POST",
        rejectUnauthorized: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          resolve(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
        });
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Runs `airlock sidecar ...args` with `env` added, to completion (for the refusals). */
function sidecarExit(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(AIRLOCK, ["sidecar", ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.once("exit", (code) => {
      resolve({ code, err });
    });
  });
}

describe("airlock sidecar --bundle-key-env: the operator's keys from the environment", function () {
  this.timeout(30_000);
  const current = generateKeyPairSync("ed25519");
  const next = generateKeyPairSync("ed25519");
  const stranger = generateKeyPairSync("ed25519");
  const loopback = ["--listen", "--metrics", "--transparent", "--dns", "--control"].flatMap((f) => [
    f,
    "127.0.0.1:0",
  ]);
  let dir: string;
  let sidecar: RunningCommand | undefined;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), "airlock-bundle-keys-"));
  });
  after(async function () {
    if (sidecar) await stopProcess(sidecar);
    rmSync(dir, { recursive: true, force: true });
  });

  it("with two keys (a rotation) applies bundles signed by either and refuses any other signer", async function () {
    // startAirlock passes this process's environment on: set the variable for that one spawn.
    process.env[ENV] = `${pem(current.publicKey)}${pem(next.publicKey)}`;
    try {
      sidecar = await startAirlock(
        ["sidecar", ...loopback, "--bundle-key-env", ENV, "--trust-bundle", join(dir, "trust.pem")],
        /listening on/,
      );
    } finally {
      delete process.env.AIRLOCK_BUNDLE_KEYS;
    }
    const port = Number(/control on https:\/\/\S+:(\d+)/.exec(sidecar.stderr())?.[1]);
    expect(port, sidecar.stderr()).to.be.greaterThan(0);
    const { bootId } = (await post(port, "/v1/status")) as { bootId: string };
    const compiled = compile({
      policies: [policy("agent", [{ name: "a", hosts: ["a.test"] }])],
      credentials: [],
    });
    if (!compiled.ok) throw new Error("test policy must compile");
    const bundle = (generation: number, key: KeyObject) =>
      signBundle(
        {
          apiVersion: "airlock.dev/v1alpha1",
          kind: "PolicyBundle",
          generation,
          bootId,
          issuedAt: new Date().toISOString(),
          policy: compiled.value,
        },
        key,
      );
    expect(await post(port, "/v1/bundle", bundle(1, current.privateKey))).to.include({
      result: "ACK",
      generation: 1,
    });
    expect(await post(port, "/v1/bundle", bundle(2, next.privateKey))).to.include({
      result: "ACK",
      generation: 2,
    });
    expect(await post(port, "/v1/bundle", bundle(3, stranger.privateKey))).to.include({
      result: "NACK",
      reason: "BadSignature",
      generation: 2,
    });
  });

  it("refuses, exit 2 naming the flag, an unset variable, a non-Ed25519 key, and both flags", async function () {
    const unset = await sidecarExit([...loopback, "--bundle-key-env", "AIRLOCK_NO_SUCH_VAR"], {});
    expect(unset.code).to.equal(2);
    expect(unset.err).to.match(/--bundle-key-env AIRLOCK_NO_SUCH_VAR: .*not set/);
    const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey;
    const wrong = await sidecarExit([...loopback, "--bundle-key-env", ENV], { [ENV]: pem(ec) });
    expect(wrong.code).to.equal(2);
    expect(wrong.err).to.match(/--bundle-key-env AIRLOCK_BUNDLE_KEYS: key 1 of 1: expected an Ed25519/);
    const both = await sidecarExit([...loopback, "--bundle-key", "/dev/null", "--bundle-key-env", ENV], {
      [ENV]: pem(current.publicKey),
    });
    expect(both.code).to.equal(2);
    expect(both.err).to.include("give one of them, not both");
  });

  it("--upstream-ca-env: the roots in the variable join the agent's trust bundle; an empty one is refused", async function () {
    const upstreamCa = new CertificateAuthority().certificatePem;
    const trust = join(dir, "trust-env.pem");
    const started = await sidecarStarted(
      [...loopback, "--upstream-ca-env", "AIRLOCK_UPSTREAM_CA", "--trust-bundle", trust],
      {
        AIRLOCK_UPSTREAM_CA: upstreamCa,
      },
    );
    try {
      expect(readFileSync(trust, "utf8")).to.include(upstreamCa.trim());
    } finally {
      await stopProcess(started);
    }
    const empty = await sidecarExit([...loopback, "--upstream-ca-env", "AIRLOCK_UPSTREAM_CA"], {
      AIRLOCK_UPSTREAM_CA: "",
    });
    expect(empty.code).to.equal(2);
    expect(empty.err).to.match(
      /--upstream-ca-env AIRLOCK_UPSTREAM_CA: the variable holds no PEM certificate/,
    );
  });
});

/** Starts `airlock sidecar ...args` with `env` added to this process's environment for that spawn. */
async function sidecarStarted(args: string[], env: Record<string, string>): Promise<RunningCommand> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await startAirlock(["sidecar", ...args], /listening on/);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = v;
    }
  }
}
