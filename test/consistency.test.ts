// I3: one decision per canonical tuple, whatever the entry path. Each target is sent through the
// explicit proxy in absolute form and inside a CONNECT tunnel; both must give the same outcome and
// reason, and that outcome must be the one the policy core gives for the tuple.
import { expect } from "chai";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { httpInsideConnect, parseResponse, exchange } from "./helpers/raw.ts";
import {
  credential,
  parseJson,
  policy,
  secret,
  startTestSidecar,
  type TestSidecar,
} from "./helpers/sidecar.ts";

interface Row {
  name: string;
  host: string;
  method: string;
  path: string;
  want: { outcome: "allow" | "block"; reason: string };
}

const ROWS: Row[] = [
  {
    name: "exact host, any path",
    host: "open.example.test",
    method: "GET",
    path: "/a/b",
    want: { outcome: "allow", reason: "RuleMatched" },
  },
  {
    name: "upper case and trailing dot are the same name",
    host: "OPEN.Example.TEST.",
    method: "GET",
    path: "/",
    want: { outcome: "allow", reason: "RuleMatched" },
  },
  {
    name: "path inside the allowed pattern",
    host: "docs.example.test",
    method: "GET",
    path: "/public/x/y",
    want: { outcome: "allow", reason: "RuleMatched" },
  },
  {
    name: "path outside the allowed pattern",
    host: "docs.example.test",
    method: "GET",
    path: "/private",
    want: { outcome: "block", reason: "NoRuleMatched" },
  },
  {
    name: "dot segments are resolved before matching",
    host: "docs.example.test",
    method: "GET",
    path: "/public/../private",
    want: { outcome: "block", reason: "NoRuleMatched" },
  },
  {
    name: "encoded dot segments too",
    host: "docs.example.test",
    method: "GET",
    path: "/public/%2e%2E/private",
    want: { outcome: "block", reason: "NoRuleMatched" },
  },
  {
    name: "method not in the rule",
    host: "docs.example.test",
    method: "POST",
    path: "/public/x",
    want: { outcome: "block", reason: "NoRuleMatched" },
  },
  {
    name: "wildcard matches a subdomain at any depth",
    host: "a.b.svc.example.test",
    method: "GET",
    path: "/",
    want: { outcome: "allow", reason: "RuleMatched" },
  },
  {
    name: "wildcard does not match the apex",
    host: "svc.example.test",
    method: "GET",
    path: "/",
    want: { outcome: "block", reason: "NoRuleMatched" },
  },
  {
    name: "unknown host",
    host: "evil.example.test",
    method: "GET",
    path: "/",
    want: { outcome: "block", reason: "NoRuleMatched" },
  },
  {
    name: "inject rule over cleartext",
    host: "api.example.test",
    method: "GET",
    path: "/v1",
    want: { outcome: "block", reason: "CredentialRequiresTls" },
  },
];

describe("consistency: the same target gets the same outcome through plain HTTP and CONNECT", function () {
  let upstream: EchoUpstream;
  let sidecar: TestSidecar;
  before(async function () {
    upstream = await startEchoUpstream();
    const ports = [upstream.port];
    const pins: Record<string, string> = {};
    for (const row of ROWS) pins[row.host.toLowerCase().replace(/\.$/, "")] = "127.0.0.1";
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          { name: "open", hosts: ["open.example.test"], ports },
          { name: "docs", hosts: ["docs.example.test"], ports, methods: ["GET"], paths: ["/public/**"] },
          { name: "svc", hosts: ["*.svc.example.test"], ports },
          { name: "api", hosts: ["api.example.test"], ports, credential: "api" },
        ]),
      ],
      credentials: [credential("api", "api", { header: { name: "Authorization", valuePrefix: "Bearer " } })],
      secrets: [secret("agents", "api", { token: "never-over-cleartext" })],
      pins,
    });
  });
  after(async function () {
    await sidecar.close();
    await upstream.close();
  });

  for (const row of ROWS) {
    it(row.name, async function () {
      const authority = `${row.host}:${upstream.port}`;
      const before = upstream.received.length;
      const plain = parseResponse(
        await exchange(
          sidecar.proxyAddress.port,
          `${row.method} http://${authority}${row.path} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
        ),
      );
      const tunnelled = await httpInsideConnect(
        sidecar.proxyAddress.port,
        { host: row.host, port: upstream.port },
        `${row.method} ${row.path} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
      const inner = tunnelled.connect.status === 200 ? tunnelled.response : tunnelled.connect;
      for (const [entry, res] of [
        ["plain HTTP", plain],
        ["CONNECT", inner],
      ] as const) {
        expect(res, entry).to.not.equal(undefined);
        expect(res?.headers["x-airlock-decision"], `${entry} outcome`).to.equal(row.want.outcome);
        if (row.want.outcome === "block") {
          expect(res?.status, `${entry} status`).to.equal(403);
          expect(parseJson(res?.body ?? "{}").reason, `${entry} reason`).to.equal(row.want.reason);
        } else {
          expect(res?.status, `${entry} status`).to.equal(200);
        }
      }
      const forwarded = upstream.received.length - before;
      expect(forwarded).to.equal(row.want.outcome === "allow" ? 2 : 0);
    });
  }
});
