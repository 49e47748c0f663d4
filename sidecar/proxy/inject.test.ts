import { expect } from "chai";
import type { CompiledCredential } from "../policy/types.ts";
import {
  forwardableHeaders,
  injectedHeaderNames,
  prepareInjection,
  rewriteQuery,
  unsafeValueReason,
  withoutClientClaims,
} from "./inject.ts";

const base = { id: "ns/c", namespace: "ns", name: "c", secretRef: { name: "s", key: "k" }, hosts: null };

describe("inject", function () {
  it("forwardableHeaders drops hop-by-hop, Connection-listed and named headers in every case", function () {
    const got = forwardableHeaders(
      [
        ["Connection", "keep-alive, X-Hop"],
        ["x-hop", "1"],
        ["Keep-Alive", "timeout=5"],
        ["Proxy-Authorization", "Basic x"],
        ["AUTHORIZATION", "agent"],
        ["authorization", "agent2"],
        ["Accept", "*/*"],
        ["TE", "trailers"],
        ["Host", "h"],
      ],
      ["authorization"],
    );
    expect(got).to.deep.equal([["Accept", "*/*"]]);
  });

  const token = Buffer.from("x-access-token:v a/l").toString("base64");
  const table: {
    name: string;
    credential: CompiledCredential;
    want: Omit<ReturnType<typeof prepareInjection>, "patterns">;
  }[] = [
    {
      name: "header with prefix",
      credential: { ...base, injection: { kind: "header", name: "Authorization", valuePrefix: "Bearer " } },
      want: { header: ["Authorization", "Bearer v a/l"], sent: ["v a/l", "Bearer v a/l"] },
    },
    {
      name: "basic auth",
      credential: { ...base, injection: { kind: "basicAuth", username: "x-access-token" } },
      want: {
        header: ["Authorization", `Basic ${token}`],
        sent: ["v a/l", "x-access-token:v a/l", token, `Basic ${token}`],
      },
    },
    {
      name: "query parameter",
      credential: { ...base, injection: { kind: "queryParam", name: "api_key" } },
      want: { query: ["api_key", "v a/l"], sent: ["v a/l", "api_key=v%20a%2Fl"] },
    },
  ];
  for (const c of table) {
    it(`prepareInjection: ${c.name}`, function () {
      const { patterns, ...rest } = prepareInjection(c.credential, "v a/l");
      expect(rest).to.deep.equal(c.want);
      // Every string sent is itself a pattern (lower-cased: matching ignores case).
      const have = new Set(patterns.map((p) => p.toString()));
      for (const sent of c.want.sent) expect(have.has(sent.toLowerCase()), sent).to.equal(true);
    });
  }

  it("withoutClientClaims drops Forwarded, X-Forwarded-* and X-Real-IP in any case", function () {
    const got = withoutClientClaims([
      ["Forwarded", "for=1.2.3.4"],
      ["X-Forwarded-For", "1.2.3.4"],
      ["x-forwarded-host", "admin.internal"],
      ["X-FORWARDED-PROTO", "https"],
      ["X-Real-IP", "10.0.0.1"],
      ["X-Forwarder", "kept: not a forwarding claim"],
      ["Accept", "*/*"],
    ]);
    expect(got).to.deep.equal([
      ["X-Forwarder", "kept: not a forwarding claim"],
      ["Accept", "*/*"],
    ]);
  });

  it("injectedHeaderNames names what each form sets", function () {
    expect(table.map((c) => injectedHeaderNames(c.credential))).to.deep.equal([
      ["authorization"],
      ["authorization"],
      [],
    ]);
  });

  const queries = [
    { name: "appends", query: "a=1", want: "a=1&api_key=v" },
    {
      name: "removes the agent's copies, also encoded and with +",
      query: "api_key=x&api%5Fkey=y&b=2",
      want: "b=2&api_key=v",
    },
    {
      name: "keeps other case (parameters are case-sensitive)",
      query: "API_KEY=x",
      want: "API_KEY=x&api_key=v",
    },
    { name: "drops undecodable names", query: "%zz=1&c=3", want: "c=3&api_key=v" },
    { name: "empty query", query: "", want: "api_key=v" },
  ];
  for (const q of queries) {
    it(`rewriteQuery ${q.name}`, function () {
      expect(rewriteQuery(q.query, "api_key", "v")).to.equal(q.want);
    });
  }

  it("unsafeValueReason refuses control characters and empty values", function () {
    expect(unsafeValueReason("ok-value")).to.equal(undefined);
    expect(unsafeValueReason("a\r\nX-Evil: 1")).to.match(/control/);
    expect(unsafeValueReason("a\u0000")).to.match(/control/);
    expect(unsafeValueReason("")).to.match(/empty/);
  });
});
