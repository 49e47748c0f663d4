// Agent claims about the client (THREATS.md I3, "HTTP parsing"): `Forwarded`, `X-Forwarded-*` and
// `X-Real-IP` are claims the boundary cannot vouch for, and upstreams trust them for access
// decisions and logs. None crosses the sidecar, on the inject, intercepted-allow and plain paths.
import { expect } from "chai";
import { startEchoUpstream, type EchoUpstream } from "../../sidecar/demo/echo-upstream.ts";
import { curl, pemBundle } from "../helpers/curl.ts";
import { credential, policy, secret, startTestSidecar, type TestSidecar } from "../helpers/sidecar.ts";

const CLAIMS = [
  "Forwarded: for=10.0.0.1;host=admin.internal;proto=https",
  "X-Forwarded-For: 127.0.0.1",
  "X-Forwarded-Host: admin.internal",
  "x-forwarded-proto: https",
  "X-Real-IP: 10.0.0.1",
];

describe("I3 client claims: Forwarded and X-Forwarded-* never cross the boundary", function () {
  let tlsUp: EchoUpstream;
  let plainUp: EchoUpstream;
  let sidecar: TestSidecar;
  let bundle: string;

  before(async function () {
    tlsUp = await startEchoUpstream({ tls: true });
    plainUp = await startEchoUpstream();
    sidecar = await startTestSidecar({
      policies: [
        policy("claims", [
          { name: "inject", hosts: ["inject.example.test"], ports: [tlsUp.port], credential: "c" },
          { name: "intercepted", hosts: ["paths.example.test"], ports: [tlsUp.port], paths: ["/**"] },
          { name: "plain", hosts: ["plain.example.test"], ports: [plainUp.port] },
        ]),
      ],
      credentials: [
        credential("c", "c-token", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
      ],
      secrets: [secret("agents", "c-token", { token: "claims-secret-0b7e5d3a" })],
      pins: {
        "inject.example.test": "127.0.0.1",
        "paths.example.test": "127.0.0.1",
        "plain.example.test": "127.0.0.1",
      },
      upstreamCa: [tlsUp.caPem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem, tlsUp.caPem);
  });
  after(async function () {
    await sidecar.close();
    await tlsUp.close();
    await plainUp.close();
  });

  const cases = [
    { name: "inject (CONNECT, intercepted)", url: () => `https://inject.example.test:${tlsUp.port}/x` },
    { name: "allow with a path rule (intercepted)", url: () => `https://paths.example.test:${tlsUp.port}/x` },
    { name: "allow over plain HTTP", url: () => `http://plain.example.test:${plainUp.port}/x` },
  ];
  for (const c of cases) {
    it(`${c.name}: the upstream sees none of the agent's claims, other headers pass`, async function () {
      const up = c.url().startsWith("https") ? tlsUp : plainUp;
      const before = up.received.length;
      const headers = [...CLAIMS, "X-Agent-Note: kept"].flatMap((h) => ["-H", h]);
      const res = await curl(["-x", sidecar.proxyUrl, "--cacert", bundle, ...headers, c.url()]);
      expect(res.status, res.stderr).to.equal(200);
      const got = up.received.slice(before);
      expect(got).to.have.length(1);
      const names = Object.keys(got[0]?.headers ?? {});
      expect(names).to.include("x-agent-note");
      for (const name of names) expect(name).not.to.match(/^(forwarded|x-forwarded-|x-real-ip)/);
    });
  }
});
