// The decision writer must write exactly the line pino would: readers of the audit log (the
// e2e suite, log pipelines) cannot tell which one wrote it.
import { expect } from "chai";
import { createAuditLog, decisionWriter, type AuditRecord } from "./audit.ts";

function capture(): { lines: string[]; destination: NodeJS.WritableStream } {
  const lines: string[] = [];
  const destination = {
    write: (line: string) => {
      lines.push(line);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return { lines, destination };
}

/** The line without its time value (the two writers run a moment apart). */
const timeless = (line: string | undefined): string => (line ?? "").replace(/"time":"[^"]*"/, '"time":"T"');

const RECORDS: [AuditRecord, string][] = [
  [
    {
      entry: "connect",
      method: "GET",
      client: "127.0.0.1",
      host: "api.example.test",
      port: 443,
      path: "/v1/me",
      status: 200,
      bytes: 1002,
      durationMs: 1.2345678901234,
      outcome: "inject",
      reason: "RuleMatched",
      policy: "agents/agent",
      rule: "api",
      credential: "api-token",
    },
    "decision",
  ],
  [
    {
      entry: "http",
      method: "POST",
      host: "evil.example.test",
      port: 80,
      path: '/a "quoted" \\ path \u0001 \u00e9 \u2028 \ud83d\ude00',
      status: 403,
      durationMs: 0,
      outcome: "block",
      reason: "NoRuleMatched",
      client: undefined,
    },
    'no rule allows POST http://evil.example.test:80/a "quoted"; add a rule\n',
  ],
];

describe("audit: the decision writer", function () {
  it("writes byte for byte the line pino writes (bindings, key order, escaping, undefined left out)", function () {
    const { lines, destination } = capture();
    const log = createAuditLog(
      { pod: "agent-7d9f", namespace: "agents", serviceAccount: "agent" },
      { destination },
    );
    const write = decisionWriter(log);
    expect(write, "a logger made by createAuditLog has a stream").to.not.equal(undefined);
    for (const [record, msg] of RECORDS) {
      log.info(record, msg);
      write?.(record, msg);
      const [byPino, byWriter] = lines.splice(0, 2);
      expect(timeless(byWriter)).to.equal(timeless(byPino));
      expect(JSON.parse(byWriter ?? "")).to.include({ level: "info", pod: "agent-7d9f", msg });
    }
  });

  it("writes nothing when the level leaves info out, as log.info does", function () {
    const { lines, destination } = capture();
    const log = createAuditLog({}, { destination, level: "warn" });
    const [record, msg] = RECORDS[0] as [AuditRecord, string];
    log.info(record, msg);
    decisionWriter(log)?.(record, msg);
    expect(lines).to.deep.equal([]);
  });
});
