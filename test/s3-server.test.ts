// SigV4 credentials against a real S3-compatible server: gofakes3 (built from the Go module proxy
// on first use), behind a TLS front with a certificate for the S3 name. Through the sidecar, with
// keys the agent never holds, curl creates a bucket, uploads a streamed object, lists and reads it
// back. gofakes3 does not check signatures (test/aws-sigv4.test.ts has botocore do that): this is
// the S3 round trip through the signing path — path-style addressing, UNSIGNED-PAYLOAD uploads,
// XML listings.
import { expect } from "chai";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { CertificateAuthority } from "../sidecar/tls/ca.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { eventually } from "./helpers/eventually.ts";
import { policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

const run = promisify(execFile);
const VERSION = "v1.2.0";
const S3 = "s3.eu-west-1.amazonaws.com";

/** The gofakes3 binary, built once into the cache (`go install`); fails saying what is missing. */
async function gofakes3(): Promise<string> {
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "airlock", `gofakes3-${VERSION}`);
  const binary = join(dir, "gofakes3");
  if (existsSync(binary)) return binary;
  try {
    await run("go", ["install", `github.com/johannesboyne/gofakes3/cmd/gofakes3@${VERSION}`], {
      env: { ...process.env, GOBIN: dir, GOFLAGS: "-mod=mod" },
    });
  } catch (err) {
    throw new Error(
      `gofakes3 (the S3-compatible server of this test) could not be built with Go from the module proxy: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return binary;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

describe("SigV4 against a real S3-compatible server (gofakes3)", function () {
  this.timeout(300_000);
  let s3: ChildProcess;
  let front: tls.Server;
  let frontPort = 0;
  let sidecar: TestSidecar;
  let bundle = "";
  let dir = "";
  const seen: string[] = [];

  before(async function () {
    const binary = await gofakes3();
    const port = await freePort();
    s3 = spawn(binary, ["-host", `127.0.0.1:${String(port)}`, "-backend", "memory", "-quiet"], {
      stdio: "ignore",
    });
    await eventually(
      () =>
        new Promise<void>((resolve, reject) => {
          const probe = net.connect({ host: "127.0.0.1", port }, () => {
            probe.destroy();
            resolve();
          });
          probe.on("error", reject);
        }),
      { what: "gofakes3 listening" },
    );
    // TLS in front of it, with a certificate for the S3 name (the sidecar sends credentials only over TLS).
    const ca = new CertificateAuthority();
    const sni = (name: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
      cb(null, ca.contextFor(name));
    };
    front = tls.createServer({ SNICallback: sni }, (socket) => {
      const upstream = net.connect({ host: "127.0.0.1", port });
      // What crossed, as text: each request's Authorization is checked below.
      socket.on("data", (chunk: Buffer) => {
        seen.push(chunk.toString("latin1"));
      });
      socket.pipe(upstream).pipe(socket);
      socket.on("error", () => upstream.destroy());
      upstream.on("error", () => socket.destroy());
    });
    await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
    frontPort = (front.address() as net.AddressInfo).port;
    sidecar = await startTestSidecar({
      policies: [policy("agent", [{ name: "s3", hosts: [S3], ports: [frontPort], credential: "aws" }])],
      credentials: [
        {
          apiVersion: "airlock.dev/v1alpha1",
          kind: "Credential",
          metadata: { name: "aws", namespace: "agents" },
          spec: {
            secretRef: { name: "aws", key: "secret_access_key" },
            injection: { awsSigV4: { accessKeyIdKey: "access_key_id", unsignedPayload: true } },
          },
        },
      ],
      secrets: [
        secret("agents", "aws", {
          access_key_id: "AKIDGOFAKES3",
          secret_access_key: "gofakes3-s3cr3t-key-0f1e",
        }),
      ],
      pins: { [S3]: "127.0.0.1" },
      upstreamCa: [ca.certificatePem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
    dir = mkdtempSync(join(tmpdir(), "airlock-s3-"));
  });

  after(async function () {
    await sidecar.close();
    front.close();
    s3.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (method: string, path: string, extra: string[] = []) =>
    curl([
      "-x",
      sidecar.proxyUrl,
      "--cacert",
      bundle,
      "-X",
      method,
      ...extra,
      `https://${S3}:${String(frontPort)}${path}`,
    ]);

  it("creates a bucket, uploads a streamed object, lists it and reads it back", async function () {
    const created = await call("PUT", "/reports");
    expect(created.status, created.body).to.equal(200);
    const body = "id,value\n".repeat(40_000);
    const file = join(dir, "data.csv");
    writeFileSync(file, body);
    const put = await call("PUT", "/reports/data.csv", [
      "--data-binary",
      `@${file}`,
      "-H",
      "Content-Type: text/csv",
    ]);
    expect(put.status, put.body).to.equal(200);
    const listed = await call("GET", "/reports?list-type=2");
    expect(listed.status).to.equal(200);
    expect(listed.body).to.match(/<Key>data\.csv<\/Key>/);
    expect(listed.body).to.include(`<Size>${String(body.length)}</Size>`);
    const read = await call("GET", "/reports/data.csv");
    expect(read.status).to.equal(200);
    expect(read.body).to.equal(body);
    // Every request reached the server signed with the Credential's keys, none with the agent's.
    const authorizations = seen.join("").match(/^authorization: .*$/gim) ?? [];
    expect(authorizations).to.have.length(4);
    for (const line of authorizations)
      expect(line).to.match(/AWS4-HMAC-SHA256 Credential=AKIDGOFAKES3\/\d{8}\/eu-west-1\/s3\//i);
  });
});
