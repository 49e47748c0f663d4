// Regression: refusals written on a raw socket (CONNECT, Upgrade, parser errors) carry the
// standard reason phrase of their status. A 400 used to go out as "HTTP/1.1 400 Forbidden".
import { expect } from "chai";
import { exchange, parseResponse } from "./helpers/raw.ts";
import { policy, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

describe("refusal status lines on the explicit proxy's raw socket", function () {
  let sidecar: TestSidecar;

  before(async function () {
    sidecar = await startTestSidecar({
      policies: [policy("agent", [{ name: "open", hosts: ["open.example.test"], ports: [443] }])],
      pins: { "open.example.test": "127.0.0.1" },
    });
  });
  after(async function () {
    await sidecar.close();
  });

  const CASES: { name: string; request: string; line: string; reason?: string }[] = [
    {
      name: "a CONNECT without host:port",
      request: "CONNECT nohostport HTTP/1.1\r\nHost: nohostport\r\n\r\n",
      line: "HTTP/1.1 400 Bad Request",
      reason: "InvalidRequest",
    },
    {
      name: "a CONNECT to an invalid host name",
      request: "CONNECT bad_host!.test:443 HTTP/1.1\r\nHost: bad_host!.test:443\r\n\r\n",
      line: "HTTP/1.1 400 Bad Request",
      reason: "InvalidRequest",
    },
    {
      name: "a CONNECT the policy blocks",
      request: "CONNECT blocked.example.test:443 HTTP/1.1\r\nHost: blocked.example.test:443\r\n\r\n",
      line: "HTTP/1.1 403 Forbidden",
      reason: "NoRuleMatched",
    },
    {
      name: "a protocol upgrade other than WebSocket (h2c)",
      request:
        "GET http://open.example.test:443/ HTTP/1.1\r\nHost: open.example.test:443\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
      line: "HTTP/1.1 403 Forbidden",
      reason: "UnsupportedProtocol",
    },
    {
      name: "headers larger than the limit",
      request: `GET http://open.example.test:443/ HTTP/1.1\r\nHost: open.example.test:443\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
      line: "HTTP/1.1 431 Request Header Fields Too Large",
    },
  ];

  for (const c of CASES) {
    it(`${c.name}: ${c.line}`, async function () {
      const text = await exchange(sidecar.proxyAddress.port, c.request);
      expect(text.split("\r\n")[0]).to.equal(c.line);
      const res = parseResponse(text);
      expect(res.headers["connection"]).to.equal("close");
      if (c.reason === undefined) {
        expect(res.body).to.equal("");
        return;
      }
      expect(res.headers["x-airlock-decision"]).to.equal("block");
      expect(res.headers["content-type"]).to.equal("application/json");
      expect((JSON.parse(res.body) as { reason: string }).reason).to.equal(c.reason);
    });
  }
});
