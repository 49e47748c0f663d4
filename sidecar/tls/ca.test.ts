import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority } from "./ca.ts";

describe("CertificateAuthority", function () {
  const ca = new CertificateAuthority();

  it("is a P-256 CA certificate, self-signed, limited to signing leaves", function () {
    const cert = new X509Certificate(ca.certificatePem);
    expect(cert.ca).to.equal(true);
    expect(cert.verify(cert.publicKey)).to.equal(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).to.equal("prime256v1");
  });

  it("issues a leaf for exactly the name asked, which openssl verifies for TLS servers", function () {
    const leafPem = ca.leafPemFor("api.example.test");
    const leaf = new X509Certificate(leafPem);
    expect(leaf.subjectAltName).to.equal("DNS:api.example.test");
    expect(leaf.checkHost("api.example.test")).to.equal("api.example.test");
    expect(leaf.checkHost("other.example.test")).to.equal(undefined);
    expect(leaf.ca).to.equal(false);
    expect(leaf.checkIssued(new X509Certificate(ca.certificatePem))).to.equal(true);
    const dir = mkdtempSync(join(tmpdir(), "airlock-ca-test-"));
    writeFileSync(join(dir, "ca.pem"), ca.certificatePem);
    writeFileSync(join(dir, "leaf.pem"), leafPem);
    const out = execFileSync("openssl", [
      "verify",
      "-CAfile",
      join(dir, "ca.pem"),
      "-purpose",
      "sslserver",
      "-verify_hostname",
      "api.example.test",
      join(dir, "leaf.pem"),
    ]).toString();
    expect(out).to.include("OK");
  });

  it("caches leaves: the same name is signed once", function () {
    const before = ca.issuedCount;
    const first = ca.leafPemFor("cache.example.test");
    expect(ca.leafPemFor("cache.example.test")).to.equal(first);
    expect(ca.issuedCount).to.equal(before + 1);
  });

  it("every CA is a new key: certificates of one are not trusted by another", function () {
    const other = new CertificateAuthority();
    const leaf = new X509Certificate(other.leafPemFor("api.example.test"));
    expect(leaf.checkIssued(new X509Certificate(ca.certificatePem))).to.equal(false);
  });
});
