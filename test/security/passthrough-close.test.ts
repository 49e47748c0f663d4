// Availability on the passthrough path: an upstream that sends its answer and closes at once
// must not lose the bytes the sidecar still holds for a slow agent. The tunnel closes only after
// what it relayed has been written.
import { expect } from "chai";
import net from "node:net";
import tls from "node:tls";
import { CertificateAuthority } from "../../sidecar/tls/ca.ts";
import { policy, startTestSidecar, type TestSidecar } from "../helpers/sidecar.ts";

const HOST = "bulk.example.test";
const SIZE = 4 * 1024 * 1024;

describe("passthrough: an upstream that closes right after a large answer", function () {
  this.timeout(30_000);
  let sidecar: TestSidecar;
  let server: tls.Server;
  let port: number;
  let ca: CertificateAuthority;
  // Resolved each time the upstream's side of a connection has fully closed.
  let upstreamClosed: Promise<void>;
  let markClosed: () => void = () => undefined;

  before(async function () {
    ca = new CertificateAuthority();
    server = tls.createServer(ca.serverCredentials(HOST), (socket) => {
      socket.on("error", () => socket.destroy());
      socket.once("close", () => {
        markClosed();
      });
      socket.end(Buffer.alloc(SIZE, 0x61));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
    sidecar = await startTestSidecar({
      policies: [policy("bulk", [{ name: "bulk", hosts: [HOST], ports: [port] }])],
      pins: { [HOST]: "127.0.0.1" },
    });
  });
  after(async function () {
    await sidecar.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it("the agent, reading only after the upstream has gone, still receives every byte", async function () {
    upstreamClosed = new Promise((resolve) => (markClosed = resolve));
    const raw = net.connect(sidecar.proxyAddress.port, "127.0.0.1");
    raw.write(`CONNECT ${HOST}:${port} HTTP/1.1\r\nHost: ${HOST}:${port}\r\n\r\n`);
    await new Promise<void>((resolve, reject) => {
      raw.once("data", (chunk: Buffer) => {
        if (chunk.toString().startsWith("HTTP/1.1 200")) resolve();
        else reject(new Error(chunk.toString()));
      });
    });
    const secure = tls.connect({ socket: raw, servername: HOST, ca: ca.certificatePem });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    // A slow reader: the sidecar's writes to the agent back up while the upstream finishes.
    let received = 0;
    secure.on("data", (chunk: Buffer) => {
      received += chunk.length;
      secure.pause();
      setTimeout(() => secure.resume(), 2);
    });
    const ended = await new Promise<string>((resolve) => {
      secure.once("end", () => {
        resolve("end");
      });
      secure.once("error", (err: Error) => {
        resolve(`error: ${err.message}`);
      });
    });
    await upstreamClosed;
    secure.destroy();
    expect({ ended, received }).to.deep.equal({ ended: "end", received: SIZE });
  });
});
