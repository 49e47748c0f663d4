// I4 and Availability against a hostile upstream's framing (THREATS.md): a response that breaks
// HTTP's rules gets the agent an answer (the response as far as it is sound, or a 502), never a
// hang, and the sidecar goes on serving the next request.
import { expect } from "chai";
import tls from "node:tls";
import { CertificateAuthority } from "../../sidecar/tls/ca.ts";
import { credential, policy, secret, startTestSidecar, type TestSidecar } from "../helpers/sidecar.ts";
import { connectExchange, parseAgentView, rawRequest } from "./reflection-kit.ts";

const HOST = "framing.example.test";
const SECRET = "framing-secret-5c2f9a71d3";

// Each path answers with one broken response, written by hand.
const ANSWERS: Record<string, string> = {
  "/head-with-body": "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
  "/cl-and-te": "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
  "/bad-chunk": "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
  "/not-http": "SSH-2.0-OpenSSH_9.6\r\n",
  "/ok": "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
};

function startBrokenUpstream(ca: CertificateAuthority): Promise<{ server: tls.Server; port: number }> {
  const server = tls.createServer(ca.serverCredentials(HOST), (socket) => {
    let head = "";
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end === -1) return;
      const path = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? "/";
      head = head.slice(end + 4);
      // Never answers, or hangs up without a word.
      if (path === "/silent") return;
      if (path === "/hang-up") {
        socket.destroy();
        return;
      }
      socket.write(ANSWERS[path] ?? ANSWERS["/ok"] ?? "");
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve({ server, port: typeof address === "object" && address ? address.port : 0 });
    });
  });
}

describe("I4 hostile framing: broken upstream responses on the inject path", function () {
  let sidecar: TestSidecar;
  let upstream: { server: tls.Server; port: number };

  before(async function () {
    const upstreamCa = new CertificateAuthority();
    upstream = await startBrokenUpstream(upstreamCa);
    sidecar = await startTestSidecar({
      policies: [policy("framing", [{ name: "f", hosts: [HOST], ports: [upstream.port], credential: "f" }])],
      credentials: [
        credential("f", "f-token", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
      ],
      secrets: [secret("agents", "f-token", { token: SECRET })],
      pins: { [HOST]: "127.0.0.1" },
      upstreamCa: [upstreamCa.certificatePem],
      upstreamTimeoutMs: 500,
    });
  });
  after(async function () {
    await sidecar.close();
    await new Promise((resolve) => upstream.server.close(resolve));
  });

  const through = async (method: string, path: string) =>
    parseAgentView(
      await connectExchange(
        sidecar.proxyAddress.port,
        { host: HOST, port: upstream.port, ca: sidecar.ca.certificatePem },
        rawRequest(method, `${HOST}:${upstream.port}`, path),
      ),
    );

  it("a HEAD answered with a body: the agent gets the head, and the next request works", async function () {
    const view = await through("HEAD", "/head-with-body");
    expect(view.final.status).to.equal(200);
    expect((await through("GET", "/ok")).body.toString()).to.equal("ok");
  });

  for (const path of ["/cl-and-te", "/bad-chunk", "/not-http"]) {
    it(`${path}: the agent gets a 502 saying so, and the next request works`, async function () {
      const view = await through("GET", path);
      expect(view.final.status).to.equal(502);
      expect(view.body.toString()).to.include("upstream_error");
      expect(view.body.toString()).not.to.include(SECRET);
      expect((await through("GET", "/ok")).body.toString()).to.equal("ok");
    });
  }

  for (const [path, status, kind] of [
    ["/silent", 504, "timeout"],
    ["/hang-up", 502, "reset"],
  ] as const) {
    it(`${path}: the agent gets a ${status} of kind ${kind}, counted, and the next request works`, async function () {
      const counted = async () =>
        (await sidecar.metrics.registry.getSingleMetricAsString("airlock_upstream_errors_total"))
          .split("\n")
          .find((line) => line.includes(`kind="${kind}"`));
      const before = await counted();
      const view = await through("GET", path);
      expect(view.final.status).to.equal(status);
      expect(JSON.parse(view.body.toString())).to.include({ error: "upstream_error", kind });
      expect(await counted()).to.not.equal(before);
      expect((await through("GET", "/ok")).body.toString()).to.equal("ok");
    });
  }
});
