import { expect } from "chai";
import { generateKeyPairSync } from "node:crypto";
import { createAuditLog } from "../sidecar/observe/audit.ts";
import { compile } from "../sidecar/policy/index.ts";
import type { CompiledPolicy } from "../sidecar/policy/index.ts";
import { StaticSecrets } from "../sidecar/proxy/secrets.ts";
import { startSidecar, type RunningSidecar } from "../sidecar/runtime.ts";
import { pushAll, pushBundle } from "./push.ts";

function bundle(host: string): CompiledPolicy {
  const result = compile({
    policies: [
      {
        apiVersion: "airlock.dev/v1alpha1",
        kind: "EgressPolicy",
        metadata: { name: "p", namespace: "ns" },
        spec: { podSelector: {}, egress: [{ name: "r", hosts: [host], ports: [443] }] },
      },
    ],
    credentials: [],
  });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return JSON.parse(JSON.stringify(result.value)) as CompiledPolicy;
}

describe("operator push: signed bundles to sidecars' control ports", function () {
  const keys = generateKeyPairSync("ed25519");
  const sidecars: RunningSidecar[] = [];
  let port = 0;

  before(async function () {
    for (const host of ["127.0.0.2", "127.0.0.3"]) {
      const sidecar = await startSidecar({
        listen: { host, port: 0 },
        metrics: { host, port: 0 },
        control: { listen: { host, port }, publicKey: keys.publicKey },
        secrets: new StaticSecrets([]),
        log: createAuditLog({}, { level: "silent" }),
      });
      port = sidecar.controlAddress?.port ?? 0;
      sidecars.push(sidecar);
    }
  });
  after(async function () {
    await Promise.all(sidecars.map((s) => s.close()));
  });

  const target = (ip: string, policy: CompiledPolicy) => ({
    pod: ip,
    uid: `uid-${ip}`,
    podIP: ip,
    hash: policy.hash,
    policy,
  });

  it("ACKs generation 1, then generation 2 for a new bundle, and skips a bundle already applied", async function () {
    const one = bundle("a.example.test");
    const two = bundle("b.example.test");
    const options = { privateKey: keys.privateKey, port };
    expect(await pushBundle(target("127.0.0.2", one), options)).to.deep.equal({
      generation: 1,
      hash: one.hash,
    });
    expect(await pushBundle(target("127.0.0.2", one), options)).to.deep.equal({
      generation: 1,
      hash: one.hash,
    });
    expect(await pushBundle(target("127.0.0.2", two), options)).to.deep.equal({
      generation: 2,
      hash: two.hash,
    });
    expect(sidecars[0]?.gate.policyHash).to.equal(two.hash);
  });

  it("reports a NACK with the sidecar's reason and keeps what it runs", async function () {
    const other = generateKeyPairSync("ed25519");
    const policy = bundle("c.example.test");
    const report = await pushBundle(target("127.0.0.3", policy), { privateKey: other.privateKey, port });
    expect(report).to.deep.include({ generation: 0, hash: null });
    expect(report.lastError).to.deep.include({ reason: "BadSignature", hash: policy.hash });
  });

  it("reports a bundle the sidecar cannot load as LoadFailed with its errors (what the policy status shows)", async function () {
    const good = bundle("e.example.test");
    const bad = { ...good, hash: "sha256:" + "0".repeat(64) }; // the content no longer matches its hash
    const results: string[] = [];
    const options = { privateKey: keys.privateKey, port, onResult: (r: string) => results.push(r) };
    const before = sidecars[0]?.gate.policyHash;
    const report = await pushBundle(target("127.0.0.2", bad), options);
    expect(report.lastError).to.deep.include({ reason: "LoadFailed", hash: bad.hash });
    expect(JSON.stringify(report.lastError?.errors)).to.include("hash");
    expect(sidecars[0]?.gate.policyHash).to.equal(before);
    await pushBundle(target("127.0.0.2", good), options);
    await pushBundle(target("127.0.0.2", good), options);
    expect(results).to.deep.equal(["nack", "ack", "unchanged"]);
  });

  it("reports an unreachable sidecar, keeping the previous report's hash, and pushes many at once", async function () {
    const policy = bundle("d.example.test");
    const reports = await pushAll(
      [target("127.0.0.2", policy), target("127.0.0.3", policy), target("127.0.0.4", policy)],
      { privateKey: keys.privateKey, port, timeoutMs: 2000, concurrency: 2 },
      new Map([["uid-127.0.0.4", { generation: 3, hash: "sha256:old" }]]),
    );
    expect(reports.get("uid-127.0.0.2")).to.deep.equal({ generation: 4, hash: policy.hash });
    expect(reports.get("uid-127.0.0.3")).to.deep.equal({ generation: 1, hash: policy.hash });
    const down = reports.get("uid-127.0.0.4");
    expect(down).to.deep.include({ generation: 3, hash: "sha256:old" });
    expect(down?.lastError?.reason).to.equal("Unreachable");
  });
});
