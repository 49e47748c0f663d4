import { expect } from "chai";
import { compile } from "./compile.ts";
import { decide, decideTunnel } from "./decide.ts";
import { load } from "./load.ts";
import { credential, mustCompile, policy } from "./test-fixtures.ts";
import type { RequestFacts } from "./types.ts";

const bearer = credential("api", {});

/** The errors compile() reports for one rule of policy "agent", as "path: message". */
function errorsFor(rule: Record<string, unknown>): string[] {
  const result = compile({
    policies: [policy("agent", [{ name: "r", hosts: ["api.example.com"], ...rule }])],
    credentials: [bearer],
  });
  return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
}

describe("rule header edits (setHeaders, removeHeaders)", () => {
  const refused: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "a hop-by-hop header",
      { setHeaders: [{ name: "Connection", value: "close" }] },
      "spec.egress[0].setHeaders[0].name",
      /hop-by-hop/,
    ],
    ["framing", { removeHeaders: ["Transfer-Encoding"] }, "spec.egress[0].removeHeaders[0]", /framing/],
    [
      "Content-Length",
      { setHeaders: [{ name: "content-length", value: "1" }] },
      "spec.egress[0].setHeaders[0].name",
      /framing/,
    ],
    [
      "Host",
      { setHeaders: [{ name: "Host", value: "elsewhere.example.com" }] },
      "spec.egress[0].setHeaders[0].name",
      /Host of the target/,
    ],
    [
      "Proxy-Authorization",
      { removeHeaders: ["proxy-authorization"] },
      "spec.egress[0].removeHeaders[0]",
      /proxy credentials/,
    ],
    [
      "a name that is not a token",
      { setHeaders: [{ name: "X Bad", value: "v" }] },
      "spec.egress[0].setHeaders[0].name",
      /not a header name/,
    ],
    [
      "a value with a newline",
      { setHeaders: [{ name: "X-A", value: "a\r\nX-Injected: 1" }] },
      "spec.egress[0].setHeaders[0].value",
      /control characters/,
    ],
    [
      "a value that is not a string",
      { setHeaders: [{ name: "X-A", value: 1 }] },
      "spec.egress[0].setHeaders[0].value",
      /must be a string/,
    ],
    [
      "the same header twice, in any case",
      {
        setHeaders: [
          { name: "X-A", value: "1" },
          { name: "x-a", value: "2" },
        ],
      },
      "spec.egress[0].setHeaders[1].name",
      /again/,
    ],
    [
      "an unknown field",
      { setHeaders: [{ name: "X-A", value: "1", secret: true }] },
      "spec.egress[0].setHeaders[0].secret",
      /unknown field/,
    ],
    ["an empty list", { removeHeaders: [] }, "spec.egress[0].removeHeaders", /must not be empty/],
    [
      "the credential's header",
      { credential: "api", setHeaders: [{ name: "authorization", value: "x" }] },
      "spec.egress[0].setHeaders[0].name",
      /Credential api: the credential is attached as it/,
    ],
    [
      "the credential's header, removed",
      { credential: "api", removeHeaders: ["Authorization"] },
      "spec.egress[0].removeHeaders[0]",
      /attached as it/,
    ],
    [
      "Accept-Encoding on a credential path",
      { credential: "api", setHeaders: [{ name: "Accept-Encoding", value: "gzip" }] },
      "spec.egress[0].setHeaders[0].name",
      /unencoded/,
    ],
  ];
  for (const [what, rule, path, message] of refused)
    it(`refuses ${what} at ${path}`, () => {
      const errors = errorsFor(rule);
      expect(errors, JSON.stringify(errors)).to.have.length(1);
      expect(errors[0]).to.satisfy((e: string) => e.startsWith(`${path}: `) && message.test(e));
    });

  it("accepts Accept-Encoding on a rule without a credential", () => {
    expect(errorsFor({ setHeaders: [{ name: "Accept-Encoding", value: "gzip" }] })).to.deep.equal([]);
  });

  const compiled = mustCompile({
    policies: [
      policy("agent", [
        {
          name: "api",
          hosts: ["api.example.com"],
          credential: "api",
          setHeaders: [{ name: "X-Client", value: "agent/1" }],
          removeHeaders: ["Cookie"],
        },
        { name: "docs", hosts: ["docs.example.com"], removeHeaders: ["X-Debug"] },
        { name: "plain", hosts: ["plain.example.com"] },
      ]),
    ],
    credentials: [bearer],
  });
  const loaded = load(compiled);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  const index = loaded.value;
  const facts = (host: string): RequestFacts => ({
    scheme: "https",
    host,
    port: 443,
    method: "GET",
    path: "/",
    entry: "connect",
  });

  it("compiles removals to lower case and keeps the sets as written", () => {
    const rule = compiled.rules.find((r) => r.rule === "api");
    expect(rule?.setHeaders).to.deep.equal([{ name: "X-Client", value: "agent/1" }]);
    expect(rule?.removeHeaders).to.deep.equal(["cookie"]);
    // A rule without edits compiles as before (the hash of existing policies is unchanged).
    expect(compiled.rules.find((r) => r.rule === "plain")).not.to.have.any.keys(
      "setHeaders",
      "removeHeaders",
    );
  });

  it("hands the matched rule's edits out with inject and allow decisions", () => {
    expect(decide(index, facts("api.example.com"))).to.deep.include({
      outcome: "inject",
      headers: { set: [{ name: "X-Client", value: "agent/1" }], remove: ["cookie"] },
    });
    expect(decide(index, facts("docs.example.com"))).to.deep.include({
      outcome: "allow",
      headers: { set: [], remove: ["x-debug"] },
    });
    expect(decide(index, facts("plain.example.com"))).not.to.have.property("headers");
  });

  it("intercepts a host whose allow rule edits headers (it must see the requests); passes an unedited one through", () => {
    expect(decideTunnel(index, { host: "docs.example.com", port: 443, entry: "connect" })).to.deep.equal({
      action: "intercept",
    });
    expect(decideTunnel(index, { host: "plain.example.com", port: 443, entry: "connect" }).action).to.equal(
      "passthrough",
    );
  });

  it("a pushed bundle whose removals are not lower case is refused by the sidecar", () => {
    const bad = structuredClone(compiled);
    const rule = bad.rules.find((r) => r.rule === "api");
    if (rule) rule.removeHeaders = ["Cookie"];
    const result = load(bad);
    expect(result.ok).to.equal(false);
  });
});
