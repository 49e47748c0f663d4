// The sidecar's control port (THREATS.md I4, I5): only bundles signed by the operator's key, for
// this process, and newer than what is applied are loaded; everything else is refused and changes
// nothing. A bundle that fails to load is NACKed with its errors and the last good policy stays.
import { expect } from "chai";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import https from "node:https";
import { signBundle, type BundlePayload } from "../sidecar/control/bundle.ts";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { createAuditLog } from "../sidecar/observe/audit.ts";
import { parseCidr } from "../sidecar/net/address.ts";
import { compile } from "../sidecar/policy/compile.ts";
import type { CompiledPolicy } from "../sidecar/policy/types.ts";
import { StaticSecrets } from "../sidecar/proxy/secrets.ts";
import { startSidecar, type RunningSidecar } from "../sidecar/runtime.ts";
import { exchange, parseResponse } from "./helpers/raw.ts";
import { policy } from "./helpers/sidecar.ts";

function call(
  port: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        rejectUnauthorized: false,
        headers: { "content-type": "application/json" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>,
          });
        });
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body));
  });
}

describe("control port: signed, versioned bundles with ACK/NACK", function () {
  let upstream: EchoUpstream;
  let sidecar: RunningSidecar;
  let operatorKey: KeyObject;
  let control: number;
  const hosts = ["first.example.test", "second.example.test"];

  const compiled = (host: string): CompiledPolicy => {
    const result = compile({
      policies: [policy("agent", [{ name: "only", hosts: [host], ports: [upstream.port] }])],
      credentials: [],
    });
    if (!result.ok) throw new Error("test policy must compile");
    return result.value;
  };
  const payload = (generation: number, host: string, bootId = sidecar.bootId ?? ""): BundlePayload => ({
    apiVersion: "airlock.dev/v1alpha1",
    kind: "PolicyBundle",
    generation,
    bootId,
    issuedAt: new Date().toISOString(),
    policy: compiled(host),
  });
  const outcome = async (host: string): Promise<string> => {
    const authority = `${host}:${upstream.port}`;
    const res = parseResponse(
      await exchange(
        sidecar.proxyAddress.port,
        `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
      ),
    );
    return res.headers["x-airlock-decision"] ?? "";
  };
  const readyz = async (): Promise<number> =>
    parseResponse(
      await exchange(
        sidecar.metricsAddress.port,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      ),
    ).status;

  before(async function () {
    upstream = await startEchoUpstream();
    const keys = generateKeyPairSync("ed25519");
    operatorKey = keys.privateKey;
    const allow = parseCidr("127.0.0.1/32");
    if (!allow.ok) throw new Error("cidr");
    sidecar = await startSidecar({
      listen: { host: "127.0.0.1", port: 0 },
      metrics: { host: "127.0.0.1", port: 0 },
      control: { listen: { host: "127.0.0.1", port: 0 }, publicKey: keys.publicKey },
      secrets: new StaticSecrets(),
      log: createAuditLog({}, { level: "silent" }),
      pins: new Map(hosts.map((h) => [h, ["127.0.0.1"]])),
      allowAddresses: [allow.value],
    });
    control = sidecar.controlAddress?.port ?? 0;
  });
  after(async function () {
    await sidecar.close();
    await upstream.close();
  });

  it("before the first bundle: not ready, everything blocks with NoPolicyLoaded", async function () {
    expect(await readyz()).to.equal(503);
    expect(await outcome("first.example.test")).to.equal("block");
    const status = await call(control, "GET", "/v1/status");
    expect(status.json).to.include({ generation: 0, ready: false, hash: null });
    expect(status.json.bootId).to.be.a("string").with.length(32);
  });

  it("a bundle signed by the operator for this process is ACKed and enforced", async function () {
    const answer = await call(
      control,
      "POST",
      "/v1/bundle",
      signBundle(payload(1, "first.example.test"), operatorKey),
    );
    expect(answer.status).to.equal(200);
    expect(answer.json).to.include({ result: "ACK", generation: 1 });
    expect(await readyz()).to.equal(200);
    expect(await outcome("first.example.test")).to.equal("allow");
    expect(await outcome("second.example.test")).to.equal("block");
  });

  const refusals: { name: string; body: () => unknown; reason: string }[] = [
    {
      name: "forged (signed with another key)",
      body: () => signBundle(payload(2, "second.example.test"), generateKeyPairSync("ed25519").privateKey),
      reason: "BadSignature",
    },
    {
      name: "unsigned",
      body: () => ({ ...signBundle(payload(2, "second.example.test"), operatorKey), signature: "" }),
      reason: "Unsigned",
    },
    {
      name: "tampered after signing",
      body: () => {
        const signed = signBundle(payload(2, "first.example.test"), operatorKey);
        const text = Buffer.from(signed.payload, "base64")
          .toString()
          .replace("first.example.test", "second.example.test");
        return { ...signed, payload: Buffer.from(text).toString("base64") };
      },
      reason: "BadSignature",
    },
    {
      name: "replayed (same generation)",
      body: () => signBundle(payload(1, "second.example.test"), operatorKey),
      reason: "StaleGeneration",
    },
    {
      name: "signed for another sidecar process",
      body: () => signBundle(payload(9, "second.example.test", "0".repeat(32)), operatorKey),
      reason: "WrongBoot",
    },
    { name: "not JSON", body: () => "{{", reason: "Malformed" },
  ];
  for (const r of refusals) {
    it(`refuses a bundle that is ${r.name}, and nothing changes`, async function () {
      const answer = await call(control, "POST", "/v1/bundle", r.body());
      expect(answer.status).to.equal(409);
      expect(answer.json).to.include({ result: "NACK", reason: r.reason, generation: 1 });
      expect(await outcome("first.example.test")).to.equal("allow");
      expect(await outcome("second.example.test")).to.equal("block");
    });
  }

  it("a signed bundle that fails to load is NACKed with its errors; the last good policy stays", async function () {
    const bad = payload(2, "second.example.test");
    bad.policy = { ...bad.policy, hash: "sha256:" + "0".repeat(64) };
    const answer = await call(control, "POST", "/v1/bundle", signBundle(bad, operatorKey));
    expect(answer.status).to.equal(422);
    expect(answer.json).to.include({ result: "NACK", reason: "LoadFailed", generation: 1 });
    expect(JSON.stringify(answer.json.errors)).to.include("hash");
    expect(await outcome("first.example.test")).to.equal("allow");
  });

  it("a newer good bundle replaces the policy", async function () {
    const answer = await call(
      control,
      "POST",
      "/v1/bundle",
      signBundle(payload(3, "second.example.test"), operatorKey),
    );
    expect(answer.json).to.include({ result: "ACK", generation: 3 });
    expect(await outcome("first.example.test")).to.equal("block");
    expect(await outcome("second.example.test")).to.equal("allow");
  });
});
