import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { CertificateAuthority } from "../tls/ca.ts";
import { trustBundlePem, writeTrustBundle } from "./trust-bundle.ts";

const CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

describe("the agent's trust bundle", function () {
  let dir: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), "airlock-trust-"));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it("holds the system roots, every upstream CA and the interception CA, each a whole certificate", function () {
    const upstream = [new CertificateAuthority(), new CertificateAuthority()].map((c) => c.certificatePem);
    const interception = new CertificateAuthority().certificatePem;
    // An upstream PEM without a trailing newline must not glue onto the next certificate.
    const text = trustBundlePem([upstream[0]?.trimEnd() ?? "", upstream[1] ?? ""], interception);
    const certs = text.match(CERT) ?? [];
    expect(certs).to.have.length(rootCertificates.length + 3);
    const fingerprints = new Set(certs.map((pem) => new X509Certificate(pem).fingerprint256));
    for (const pem of [...upstream, interception])
      expect(fingerprints.has(new X509Certificate(pem).fingerprint256)).to.equal(true);
    expect(text.replace(CERT, "").trim()).to.equal("");
  });

  it("is written 0644 whatever the umask, replaced atomically, leaving no temp file", function () {
    const path = join(dir, "trust", "ca-bundle.pem");
    const old = process.umask(0o077);
    try {
      writeTrustBundle(path, "first\n");
      const inode = statSync(path).ino;
      writeTrustBundle(path, "second\n");
      expect(readFileSync(path, "utf8")).to.equal("second\n");
      // Replaced by rename (a new inode), never rewritten in place.
      expect(statSync(path).ino).to.not.equal(inode);
    } finally {
      process.umask(old);
    }
    expect(statSync(path).mode & 0o777).to.equal(0o644);
    // The folder it had to create is searchable by the agent's UID.
    expect(statSync(join(dir, "trust")).mode & 0o001).to.equal(0o001);
    expect(readdirSync(join(dir, "trust"))).to.deep.equal(["ca-bundle.pem"]);
  });

  it("makes an existing folder searchable by others; a folder it cannot create fails with the path", function () {
    const trust = join(dir, "trust");
    mkdirSync(trust);
    chmodSync(trust, 0o700);
    writeTrustBundle(join(trust, "ca-bundle.pem"), "x\n");
    expect(statSync(trust).mode & 0o777).to.equal(0o701);
    const plainFile = join(dir, "file");
    writeTrustBundle(plainFile, "x\n");
    // A folder path that is a file cannot be created.
    expect(() => {
      writeTrustBundle(join(plainFile, "ca-bundle.pem"), "x\n");
    }).to.throw(/trust bundle .*file\/ca-bundle\.pem: cannot create/);
  });
});
