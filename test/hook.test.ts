// Decision hooks against a real HTTPS hook service and upstream (explicit proxy, curl): allow with
// header edits, deny with the hook's reason, fail closed on a timeout, on a hook that is down and
// on an edit the hook may not make; answers reused for cacheSeconds; the hook gets its token from
// a Secret and the opted-in headers, never the agent's Authorization or the credential.
import { expect } from "chai";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { curl, pemBundle } from "./helpers/curl.ts";
import { startTlsServer, type TlsTestServer } from "./helpers/tls-server.ts";
import {
  credential,
  parseJson,
  policy,
  secret,
  startTestSidecar,
  type TestSidecar,
} from "./helpers/sidecar.ts";

const HOOK_TOKEN = "hook-t0ken-6e1f0a";
const API_SECRET = "hook-api-s3cr3t-91c2";

interface Question {
  authorization: string;
  body: {
    request: { host: string; path: string; method: string };
    decision: { outcome: string; policy: string; rule: string; credential?: string };
    headers?: Record<string, string>;
  };
}

describe("decision hooks (a real hook service, fail closed)", function () {
  let sidecar: TestSidecar;
  let hook: TlsTestServer;
  let up: EchoUpstream;
  let bundle = "";
  const questions: Question[] = [];

  before(async function () {
    up = await startEchoUpstream({ tls: true });
    hook = await startTlsServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Question["body"];
        questions.push({ authorization: req.headers.authorization ?? "", body });
        const reply = (answer: unknown): void => {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
        };
        const path = body.request.path;
        if (path.startsWith("/denied")) reply({ allow: false, reason: "ticket required\r\nX-Evil: 1" });
        else if (path.startsWith("/slow"))
          setTimeout(() => {
            reply({ allow: true });
          }, 1500);
        else if (path.startsWith("/bad-edit"))
          reply({ allow: true, setHeaders: [{ name: "Authorization", value: "x" }] });
        else if (path.startsWith("/broken")) res.writeHead(500).end();
        else
          reply({
            allow: true,
            setHeaders: [{ name: "X-Hook", value: "approved" }],
            removeHeaders: ["X-Drop"],
          });
      });
    });
    const hookAt = (extra: Record<string, unknown> = {}) => ({
      url: `https://hook.example.test:${String(hook.port)}/check`,
      tokenSecretRef: { name: "hook", key: "token" },
      timeoutMs: 300,
      includeHeaders: ["x-request-id"],
      ...extra,
    });
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "api", hosts: ["api.example.test"], ports: [up.port], credential: "api", hook: hookAt() },
          { name: "open", hosts: ["open.example.test"], ports: [up.port], hook: hookAt() },
          {
            name: "cached",
            hosts: ["cached.example.test"],
            ports: [up.port],
            hook: hookAt({ cacheSeconds: 60 }),
          },
          {
            name: "down",
            hosts: ["down.example.test"],
            ports: [up.port],
            hook: { url: "https://hook.example.test:1/check" },
          },
        ]),
      ],
      credentials: [credential("api", "api", { header: { name: "Authorization", valuePrefix: "Bearer " } })],
      secrets: [
        secret("agents", "api", { token: API_SECRET }),
        secret("agents", "hook", { token: HOOK_TOKEN }),
      ],
      pins: Object.fromEntries(
        ["api", "open", "cached", "down", "hook"].map((n) => [`${n}.example.test`, "127.0.0.1"]),
      ),
      upstreamCa: [up.caPem, hook.ca.certificatePem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });

  after(async function () {
    await sidecar.close();
    await up.close();
    await hook.close();
  });

  const get = (host: string, path: string, extra: string[] = []) =>
    curl(["-x", sidecar.proxyUrl, "--cacert", bundle, ...extra, `https://${host}:${String(up.port)}${path}`]);

  it("allow with edits: the hook's header is set, the one it removes is gone, the credential still attached", async function () {
    const res = await get("api.example.test", "/items", [
      ...["-H", "X-Drop: agent", "-H", "X-Request-Id: r-1", "-H", "Authorization: Bearer agent-own"],
    ]);
    expect(res.status, res.body).to.equal(200);
    const seen = up.received.at(-1);
    expect(seen?.headers["x-hook"]).to.equal("approved");
    expect(seen?.headers["x-drop"]).to.equal(undefined);
    expect(seen?.headers.authorization).to.equal(`Bearer ${API_SECRET}`);
    const asked = questions.at(-1);
    expect(asked?.authorization).to.equal(`Bearer ${HOOK_TOKEN}`);
    expect(asked?.body.request).to.deep.include({ host: "api.example.test", path: "/items", method: "GET" });
    expect(asked?.body.decision).to.deep.include({
      outcome: "inject",
      policy: "agents/agent",
      rule: "api",
      credential: "api",
    });
    // Only the opted-in header; never the agent's Authorization, never the credential.
    expect(asked?.body.headers).to.deep.equal({ "x-request-id": "r-1" });
    expect(JSON.stringify(questions)).not.to.include(API_SECRET);
  });

  it("deny: 403 HookDenied with the hook's reason (control characters dropped); nothing sent upstream", async function () {
    const before = up.received.length;
    const res = await get("open.example.test", "/denied");
    expect(res.status).to.equal(403);
    const body = parseJson(res.body);
    expect(body).to.include({ reason: "HookDenied", rule: "open" });
    expect(String(body.message)).to.match(/denied the request: ticket requiredX-Evil: 1$/);
    expect(up.received.length).to.equal(before);
    expect(sidecar.audit.some((line) => line.reason === "HookDenied")).to.equal(true);
  });

  for (const [what, host, path, message] of [
    ["a hook slower than its timeout", "open.example.test", "/slow", /did not answer within 300 ms/],
    ["a hook that answers 500", "open.example.test", "/broken", /answered 500/],
    ["a hook that is down", "down.example.test", "/x", /could not be reached/],
    [
      "an edit of the credential's header",
      "api.example.test",
      "/bad-edit",
      /Authorization belongs to the credential/,
    ],
  ] as const)
    it(`fails closed on ${what}: 403 HookUnavailable, nothing sent upstream`, async function () {
      const before = up.received.length;
      const res = await get(host, path);
      expect(res.status).to.equal(403);
      const body = parseJson(res.body);
      expect(body.reason).to.equal("HookUnavailable");
      expect(String(body.message)).to.match(message);
      expect(up.received.length).to.equal(before);
    });

  it("an answer is reused for the same facts for cacheSeconds; other facts are asked about", async function () {
    const asked = () => questions.filter((q) => q.body.request.host === "cached.example.test").length;
    for (let i = 0; i < 3; i++) expect((await get("cached.example.test", "/same")).status).to.equal(200);
    expect(asked()).to.equal(1);
    expect((await get("cached.example.test", "/other")).status).to.equal(200);
    expect(asked()).to.equal(2);
  });
});
