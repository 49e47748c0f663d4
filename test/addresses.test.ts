// SSRF class (THREATS.md "Destinations"): forbidden addresses are refused whether they are named
// by an IP literal in any spelling or reached through a name a policy allows.
import { expect } from "chai";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { compile } from "../sidecar/policy/compile.ts";
import { exchange, httpInsideConnect, parseResponse } from "./helpers/raw.ts";
import { parseJson, policy, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

describe("forbidden addresses", function () {
  let upstream: EchoUpstream;
  let strict: TestSidecar;
  let loopbackAllowed: TestSidecar;
  let mixed: TestSidecar;

  before(async function () {
    upstream = await startEchoUpstream();
    const rules = [
      { name: "internal", hosts: ["internal.example.test"], ports: [upstream.port, 80] },
      { name: "metadata", hosts: ["metadata.example.test"], ports: [80] },
      { name: "mixed", hosts: ["mixed.example.test"], ports: [upstream.port] },
      { name: "good", hosts: ["good.example.test"], ports: [upstream.port] },
    ];
    const pins = {
      "internal.example.test": "127.0.0.2",
      "metadata.example.test": "169.254.169.254",
      "good.example.test": "127.0.0.1",
    };
    strict = await startTestSidecar({ policies: [policy("agent", rules)], pins, allow: [] });
    loopbackAllowed = await startTestSidecar({
      policies: [policy("agent", rules)],
      pins,
      allow: ["127.0.0.1/32"],
    });
    mixed = await startTestSidecar({
      policies: [policy("agent", rules)],
      pins: { "mixed.example.test": ["127.0.0.1", "10.0.0.7"] },
      allow: ["127.0.0.1/32"],
    });
  });
  after(async function () {
    await strict.close();
    await loopbackAllowed.close();
    await mixed.close();
    await upstream.close();
  });

  const absolute = async (sidecar: TestSidecar, authority: string) =>
    parseResponse(
      await exchange(
        sidecar.proxyAddress.port,
        `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
      ),
    );

  const SPELLINGS: { spelling: string; address: string }[] = [
    { spelling: "127.1", address: "127.0.0.1" },
    { spelling: "0x7f000001", address: "127.0.0.1" },
    { spelling: "2130706433", address: "127.0.0.1" },
    { spelling: "0177.0.0.1", address: "127.0.0.1" },
    { spelling: "127.0.0.1", address: "127.0.0.1" },
    { spelling: "[::ffff:127.0.0.1]", address: "::ffff:7f00:1" },
    { spelling: "[::1]", address: "::1" },
    { spelling: "169.254.169.254", address: "169.254.169.254" },
    { spelling: "0xa9.0xfe.0xa9.0xfe", address: "169.254.169.254" },
    { spelling: "[fd00:ec2::254]", address: "fd00:ec2::254" },
    { spelling: "100.100.100.200", address: "100.100.100.200" },
    { spelling: "10.1", address: "10.0.0.1" },
  ];

  for (const { spelling, address } of SPELLINGS) {
    it(`IP literal ${spelling} is refused as ${address}, in absolute form and in CONNECT`, async function () {
      const plain = await absolute(strict, `${spelling}:${upstream.port}`);
      expect(plain.status).to.equal(403);
      const body = parseJson(plain.body);
      expect(body.reason).to.equal("AddressForbidden");
      expect(String(body.message)).to.include(address);
      const tunnel = await httpInsideConnect(strict.proxyAddress.port, { host: spelling, port: 443 }, "");
      expect(tunnel.connect.status).to.equal(403);
      expect(parseJson(tunnel.connect.body).reason).to.equal("AddressForbidden");
    });
  }

  it("an IP literal of an allowed address still matches no rule (rules name hosts, not addresses)", async function () {
    const res = await absolute(loopbackAllowed, `127.1:${upstream.port}`);
    expect(res.status).to.equal(403);
    expect(parseJson(res.body).reason).to.equal("NoRuleMatched");
  });

  it("an allowed name that resolves to a forbidden address is refused, and nothing is dialled", async function () {
    const before = upstream.received.length;
    for (const [host, port] of [
      ["internal.example.test", upstream.port],
      ["metadata.example.test", 80],
    ] as const) {
      const res = await absolute(loopbackAllowed, `${host}:${port}`);
      expect(res.status, host).to.equal(403);
      expect(parseJson(res.body).reason, host).to.equal("AddressForbidden");
    }
    expect(upstream.received.length).to.equal(before);
  });

  it("--allow-address opens exactly the range it names", async function () {
    const ok = await absolute(loopbackAllowed, `good.example.test:${upstream.port}`);
    expect(ok.status).to.equal(200);
    const refused = await absolute(strict, `good.example.test:${upstream.port}`);
    expect(refused.status).to.equal(403);
    expect(parseJson(refused.body).reason).to.equal("AddressForbidden");
  });

  it("a name resolving to allowed and forbidden addresses at once is refused whole", async function () {
    const before = upstream.received.length;
    const res = await absolute(mixed, `mixed.example.test:${upstream.port}`);
    expect(res.status).to.equal(403);
    expect(parseJson(res.body).reason).to.equal("AddressForbidden");
    expect(upstream.received.length).to.equal(before);
  });

  it("the proxy never recurses into its own listeners", async function () {
    const recursing = await startTestSidecar({ apply: false, pins: { "self.example.test": "127.0.0.1" } });
    try {
      const own = recursing.proxyAddress.port;
      const compiled = compile({
        policies: [policy("agent", [{ name: "self", hosts: ["self.example.test"], ports: [own] }])],
        credentials: [],
      });
      if (!compiled.ok) throw new Error("test policy must compile");
      expect(recursing.gate.apply(compiled.value, 1).ok).to.equal(true);
      const loop = await absolute(recursing, `self.example.test:${own}`);
      expect(loop.status).to.equal(403);
      expect(parseJson(loop.body).reason).to.equal("AddressForbidden");
      expect(String(parseJson(loop.body).message)).to.include("this sidecar");
    } finally {
      await recursing.close();
    }
  });
});
