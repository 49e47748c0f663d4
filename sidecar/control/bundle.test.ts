import { expect } from "chai";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { openBundle, readPublicKeys, signBundle, type BundlePayload } from "./bundle.ts";

const pem = (key: KeyObject): string => key.export({ type: "spki", format: "pem" }).toString();

const payload: BundlePayload = {
  apiVersion: "airlock.dev/v1alpha1",
  kind: "PolicyBundle",
  generation: 1,
  bootId: "b".repeat(32),
  issuedAt: "2025-01-01T00:00:00Z",
  // openBundle does not look inside the policy (Gate.apply does).
  policy: {} as BundlePayload["policy"],
};

describe("bundle keys: one or several operator keys (key rotation)", function () {
  const current = generateKeyPairSync("ed25519");
  const next = generateKeyPairSync("ed25519");
  const stranger = generateKeyPairSync("ed25519");

  it("a bundle signed by any listed key opens; one signed by an unlisted key is BadSignature", function () {
    const keys = [current.publicKey, next.publicKey];
    for (const signer of [current, next]) {
      const opened = openBundle(signBundle(payload, signer.privateKey), keys);
      expect(opened.ok, "signed by a listed key").to.equal(true);
    }
    const forged = openBundle(signBundle(payload, stranger.privateKey), keys);
    expect(forged).to.include({ ok: false, reason: "BadSignature" });
    expect(openBundle(signBundle(payload, next.privateKey), [])).to.include({ reason: "BadSignature" });
  });

  it("a single key still works as before", function () {
    expect(openBundle(signBundle(payload, current.privateKey), current.publicKey).ok).to.equal(true);
    expect(openBundle(signBundle(payload, next.privateKey), current.publicKey)).to.include({
      reason: "BadSignature",
    });
  });

  it("readPublicKeys reads one or several concatenated PEM keys, in order", function () {
    expect(readPublicKeys(pem(current.publicKey))).to.have.length(1);
    const both = readPublicKeys(`${pem(current.publicKey)}\n${pem(next.publicKey)}`);
    expect(both.map(pem)).to.deep.equal([pem(current.publicKey), pem(next.publicKey)]);
    // Concatenated without a newline between them, as `cat a.pem b.pem` of files lacking one gives.
    const glued = `${pem(current.publicKey).trimEnd()}${pem(next.publicKey)}`;
    expect(readPublicKeys(glued)).to.have.length(2);
  });

  it("readPublicKeys refuses no key, a non-Ed25519 key and garbage, naming the key", function () {
    expect(() => readPublicKeys("")).to.throw(/no PEM public key/);
    expect(() => readPublicKeys("not a key")).to.throw(/no PEM public key/);
    const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey;
    expect(() => readPublicKeys(pem(current.publicKey) + pem(ec))).to.throw(
      /key 2 of 2: expected an Ed25519 public key, got ec/,
    );
    const broken = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    expect(() => readPublicKeys(broken)).to.throw(/key 1 of 1/);
  });
});
