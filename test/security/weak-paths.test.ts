// Dot segments hidden from the path rule (THREATS.md I3): `..;`, `..%2F`, `..%5C` and their
// spellings are ordinary segments to a strict normaliser, but Tomcat, Spring and friends walk up
// the tree on them. Through the real proxy, inside an intercepted CONNECT tunnel, each is refused
// with 400 InvalidRequest before anything is dialled; an encoded slash inside a name still passes.
import { expect } from "chai";
import tls from "node:tls";
import { startEchoUpstream, type EchoUpstream } from "../../sidecar/demo/echo-upstream.ts";
import { connect, parseResponse, readUntil, type RawResponse } from "../helpers/raw.ts";
import { parseJson, policy, startTestSidecar, type TestSidecar } from "../helpers/sidecar.ts";

const HOST = "paths.example.test";

describe("weak paths: dot segments a lenient upstream would resolve are refused", function () {
  let up: EchoUpstream;
  let sidecar: TestSidecar;

  before(async function () {
    up = await startEchoUpstream({ tls: true });
    sidecar = await startTestSidecar({
      // A path rule makes the host intercepted: every request inside the tunnel is decided.
      policies: [
        policy("agent", [
          { name: "public", hosts: [HOST], ports: [up.port], paths: ["/public/**", "/projects/*"] },
        ]),
      ],
      pins: { [HOST]: "127.0.0.1" },
      upstreamCa: [up.caPem],
    });
  });
  after(async function () {
    await sidecar.close();
    await up.close();
  });

  /** One raw request line inside an intercepted TLS tunnel; the whole answer, once closed. */
  async function inside(target: string): Promise<RawResponse> {
    const socket = await connect(sidecar.proxyAddress.port);
    socket.write(`CONNECT ${HOST}:${up.port} HTTP/1.1\r\nHost: ${HOST}:${up.port}\r\n\r\n`);
    expect(await readUntil(socket, (t) => t.includes("\r\n\r\n"))).to.match(/^HTTP\/1\.1 200/);
    const secure = tls.connect({ socket, servername: HOST, ca: sidecar.ca.certificatePem });
    await new Promise((resolve) => secure.once("secureConnect", resolve));
    secure.write(`GET ${target} HTTP/1.1\r\nHost: ${HOST}:${up.port}\r\nConnection: close\r\n\r\n`);
    const text = await readUntil(secure, () => false);
    secure.destroy();
    return parseResponse(text);
  }

  const HIDDEN = [
    "/public/..;/admin",
    "/public/..;jsessionid=x/admin",
    "/public/.;/admin",
    "/public/..%3B/admin",
    "/public/..%2Fadmin",
    "/public/..%2fadmin",
    "/public/%2e%2e%2fadmin",
    "/public/..%5Cadmin",
    "/public/..%5cadmin",
    "/public/.%2Fadmin",
    "/public/x%2F..%2F..%2Fadmin",
  ];
  for (const target of HIDDEN) {
    it(`${target}: 400 InvalidRequest with the fix, nothing reaches the upstream`, async function () {
      const before = up.received.length;
      const res = await inside(target);
      expect(res.status).to.equal(400);
      const body = parseJson(res.body);
      expect(body.reason).to.equal("InvalidRequest");
      expect(String(body.message)).to.include("send the path it resolves to");
      expect(up.received.length).to.equal(before);
    });
  }

  it("/public/..\\admin (literal backslash): 400, nothing reaches the upstream", async function () {
    const before = up.received.length;
    const res = await inside("/public/..\\admin");
    expect(res.status).to.equal(400);
    expect(up.received.length).to.equal(before);
  });

  it("/projects/a%2Fb (an encoded slash inside a name) reaches the upstream unchanged", async function () {
    const before = up.received.length;
    const res = await inside("/projects/a%2Fb");
    expect(res.status).to.equal(200);
    expect(up.received.slice(before).map((r) => r.url)).to.deep.equal(["/projects/a%2Fb"]);
  });

  it("a plain '..' is still resolved before matching, as before", async function () {
    const before = up.received.length;
    const res = await inside("/public/x/../y");
    expect(res.status).to.equal(200);
    expect(up.received.slice(before).map((r) => r.url)).to.deep.equal(["/public/y"]);
  });
});
