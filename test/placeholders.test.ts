// Placeholders through the data path (explicit proxy, real curl, real TLS upstream): the agent holds
// a credential's placeholder; where a rule attaches that credential, the placeholder is swapped for
// the real value in headers, the query and a body; anywhere else — another host, also one the agent
// reaches by following a redirect itself — the request is blocked with PlaceholderOffHost.
import { expect } from "chai";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { placeholderFor } from "../sidecar/policy/index.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { parseJson, policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

const SECRET = "sk-live-ph-9d2c7e41b0aa";
const PLACEHOLDER = placeholderFor("agents", "llm");

describe("placeholders (explicit proxy, curl)", function () {
  let up: EchoUpstream;
  let sidecar: TestSidecar;
  let bundle = "";

  before(async function () {
    up = await startEchoUpstream({
      tls: true,
      respond: (req, res) => {
        if (req.url.startsWith("/redirect")) {
          res
            .writeHead(302, {
              location: `https://other.example.test:${String(up.port)}/landing?key=${PLACEHOLDER}`,
            })
            .end();
          return true;
        }
        return false;
      },
    });
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "llm", hosts: ["llm.example.test"], ports: [up.port], credential: "llm" },
          { name: "other", hosts: ["other.example.test"], ports: [up.port], paths: ["/**"] },
        ]),
      ],
      credentials: [
        {
          apiVersion: "airlock.dev/v1alpha1",
          kind: "Credential",
          metadata: { name: "llm", namespace: "agents" },
          spec: {
            secretRef: { name: "llm", key: "token" },
            injection: { header: { name: "Authorization", valuePrefix: "Bearer " } },
            placeholder: true,
          },
        },
      ],
      secrets: [secret("agents", "llm", { token: SECRET })],
      pins: { "llm.example.test": "127.0.0.1", "other.example.test": "127.0.0.1" },
      upstreamCa: [up.caPem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });

  after(async function () {
    await sidecar.close();
    await up.close();
  });

  const call = (url: string, extra: string[] = []) =>
    curl(["-x", sidecar.proxyUrl, "--cacert", bundle, ...extra, url]);
  const llm = (path: string): string => `https://llm.example.test:${String(up.port)}${path}`;
  const other = (path: string): string => `https://other.example.test:${String(up.port)}${path}`;

  it("is derived from the Credential's name, not its value (no prefix of it)", function () {
    expect(PLACEHOLDER).to.match(/^airlock_ph_[0-9a-f]{32}$/);
    expect(SECRET.startsWith(PLACEHOLDER)).to.equal(false);
    expect(placeholderFor("agents", "other")).to.not.equal(PLACEHOLDER);
  });

  it("swapped for the value in a header, the query and the body where the credential is attached", async function () {
    const body = JSON.stringify({ api_key: PLACEHOLDER, prompt: "hi" });
    const res = await call(llm(`/v1/chat?key=${PLACEHOLDER}&x=1`), [
      ...["-H", `X-Api-Key: ${PLACEHOLDER}`, "-H", "Content-Type: application/json", "--data-binary", body],
    ]);
    expect(res.status, res.body).to.equal(200);
    const seen = up.received.at(-1);
    expect(seen?.headers["x-api-key"]).to.equal(SECRET);
    expect(seen?.url).to.equal(`/v1/chat?key=${encodeURIComponent(SECRET)}&x=1`);
    expect(seen?.body).to.equal(JSON.stringify({ api_key: SECRET, prompt: "hi" }));
    expect(seen?.headers["content-length"]).to.equal(String(seen?.body.length));
    expect(seen?.headers.authorization).to.equal(`Bearer ${SECRET}`);
    // The echo of the value is scrubbed on its way back.
    expect(res.body).not.to.include(SECRET);
  });

  for (const [where, extra, path] of [
    ["a header", ["-H", `Authorization: Bearer ${PLACEHOLDER}`], "/h"],
    ["the query", [], `/q?key=${PLACEHOLDER}`],
    ["the body", ["--data-binary", `{"key":"${PLACEHOLDER}"}`], "/b"],
  ] as const)
    it(`blocked on another host (in ${where}) with PlaceholderOffHost, nothing sent`, async function () {
      const before = up.received.length;
      const res = await call(other(path), [...extra]);
      expect(res.status).to.equal(403);
      expect(parseJson(res.body)).to.include({ reason: "PlaceholderOffHost" });
      expect(up.received.length).to.equal(before);
    });

  it("blocked when the agent follows a redirect that carries it to another host; counted", async function () {
    const before = up.received.length;
    const res = await call(llm("/redirect"), ["-L"]);
    expect(res.status).to.equal(403);
    expect(parseJson(res.body)).to.include({ reason: "PlaceholderOffHost" });
    // The redirect itself came from the upstream; the followed request never left.
    expect(up.received.length).to.equal(before + 1);
    const metrics = await fetch(`http://127.0.0.1:${String(sidecar.metricsAddress.port)}/metrics`).then((r) =>
      r.text(),
    );
    expect(metrics).to.match(/airlock_decisions_total\{[^}]*reason="PlaceholderOffHost"[^}]*\} [1-9]/);
  });

  it("an allowed host without placeholders is unaffected", async function () {
    const res = await call(other("/plain"));
    expect(res.status).to.equal(200);
    expect(up.received.at(-1)?.url).to.equal("/plain");
  });
});
