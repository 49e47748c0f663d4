// The answer map, pinned: for every reason and every answer the sidecar writes itself, the exact
// status line (standard reason phrase), headers in order, and body.
import { expect } from "chai";
import {
  blockAnswer,
  clientErrorAnswer,
  controlAnswer,
  rawAnswer,
  statusLine,
  tlsRefusal,
  upstreamErrorAnswer,
  type Answer,
  type UpstreamErrorKind,
} from "./answers.ts";
import { blockVerdict, type Reason } from "./verdict.ts";

/** The status line of every block reason (a Record, so a new reason cannot go unpinned). */
const BLOCK_LINES: Record<Reason, string> = {
  InvalidRequest: "HTTP/1.1 400 Bad Request",
  AddressForbidden: "HTTP/1.1 403 Forbidden",
  CredentialUnavailable: "HTTP/1.1 403 Forbidden",
  HostMismatch: "HTTP/1.1 403 Forbidden",
  UnsupportedProtocol: "HTTP/1.1 403 Forbidden",
  OriginalPortUnknown: "HTTP/1.1 403 Forbidden",
  RuleMatched: "HTTP/1.1 403 Forbidden",
  NoRuleMatched: "HTTP/1.1 403 Forbidden",
  NoPolicyLoaded: "HTTP/1.1 403 Forbidden",
  RuleConflict: "HTTP/1.1 403 Forbidden",
  CredentialHostMismatch: "HTTP/1.1 403 Forbidden",
  CredentialRequiresTls: "HTTP/1.1 403 Forbidden",
  AuditWouldBlock: "HTTP/1.1 403 Forbidden",
  HookDenied: "HTTP/1.1 403 Forbidden",
  HookUnavailable: "HTTP/1.1 403 Forbidden",
  PlaceholderOffHost: "HTTP/1.1 403 Forbidden",
};

/** The first line of an answer as written on a socket. */
function firstLine(answer: Answer): string {
  return rawAnswer(answer).split("\r\n")[0] ?? "";
}

describe("answers: every answer the sidecar writes, from one map", function () {
  for (const [reason, line] of Object.entries(BLOCK_LINES) as [Reason, string][]) {
    it(`block ${reason}: ${line}, JSON body naming the reason, decision header`, function () {
      const body = JSON.stringify({
        error: "egress_blocked",
        outcome: "block",
        reason,
        host: "api.example.test",
        message: "why",
      });
      const answer = blockAnswer(blockVerdict(reason, "why"), "api.example.test");
      expect(firstLine(answer)).to.equal(line);
      expect(answer).to.deep.equal({
        status: Number(line.split(" ")[1]),
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "x-airlock-decision": "block",
        },
        body,
      });
    });
  }

  it("block with close, a policy and a rule, no host: connection close, policy and rule in the body", function () {
    const verdict = { ...blockVerdict("NoRuleMatched", "no rule"), policy: "agents/p", rule: "r" };
    const body =
      '{"error":"egress_blocked","outcome":"block","reason":"NoRuleMatched","host":null,"policy":"agents/p","rule":"r","message":"no rule"}';
    expect(blockAnswer(verdict, undefined, true)).to.deep.equal({
      status: 403,
      headers: {
        "content-type": "application/json",
        "content-length": body.length,
        "x-airlock-decision": "block",
        connection: "close",
      },
      body,
    });
  });

  it("a block without a message says it was blocked by airlock", function () {
    const answer = blockAnswer({ outcome: "block", reason: "NoPolicyLoaded" }, "h");
    expect(JSON.parse(answer.body)).to.include({ message: "blocked by airlock" });
  });

  /** The status line of every upstream failure kind (a Record: a new kind cannot go unpinned). */
  const UPSTREAM: Record<UpstreamErrorKind, string> = {
    connect: "HTTP/1.1 502 Bad Gateway",
    dns: "HTTP/1.1 502 Bad Gateway",
    tls: "HTTP/1.1 502 Bad Gateway",
    reset: "HTTP/1.1 502 Bad Gateway",
    protocol: "HTTP/1.1 502 Bad Gateway",
    timeout: "HTTP/1.1 504 Gateway Timeout",
  };
  for (const [kind, line] of Object.entries(UPSTREAM) as [UpstreamErrorKind, string][]) {
    it(`upstream ${kind}: ${line}, the kind only, the outcome in the decision header`, function () {
      const body = JSON.stringify({
        error: "upstream_error",
        kind,
        message: `airlock could not complete the request upstream (${kind})`,
      });
      const answer = upstreamErrorAnswer(kind, "inject");
      expect(firstLine(answer)).to.equal(line);
      expect(answer.headers).to.deep.equal({
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "x-airlock-decision": "inject",
      });
      expect(answer.body).to.equal(body);
    });
  }

  const CLIENT_ERRORS: { code: string | undefined; want: string }[] = [
    {
      code: "HPE_HEADER_OVERFLOW",
      want: "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    },
    {
      code: "HPE_INVALID_METHOD",
      want: "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    },
    { code: undefined, want: "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n" },
  ];
  for (const { code, want } of CLIENT_ERRORS) {
    it(`parser error ${code ?? "(no code)"}: ${want.split("\r\n")[0] ?? ""}, empty body`, function () {
      expect(rawAnswer(clientErrorAnswer(code))).to.equal(want);
    });
  }

  const CONTROL: { status: number; line: string }[] = [
    { status: 200, line: "HTTP/1.1 200 OK" },
    { status: 404, line: "HTTP/1.1 404 Not Found" },
    { status: 409, line: "HTTP/1.1 409 Conflict" },
    { status: 413, line: "HTTP/1.1 413 Payload Too Large" },
    { status: 422, line: "HTTP/1.1 422 Unprocessable Entity" },
  ];
  for (const { status, line } of CONTROL) {
    it(`control port ${status}: ${line}, JSON body`, function () {
      const answer = controlAnswer(status, { error: "x" });
      expect(firstLine(answer)).to.equal(line);
      expect(answer).to.deep.equal({
        status,
        headers: { "content-type": "application/json", "content-length": 13 },
        body: '{"error":"x"}',
      });
    });
  }

  it("a raw answer is the status line, the headers in order, a blank line and the body", function () {
    const answer: Answer = { status: 403, headers: { a: "1", b: 2 }, body: "{}" };
    expect(rawAnswer(answer)).to.equal("HTTP/1.1 403 Forbidden\r\na: 1\r\nb: 2\r\n\r\n{}");
  });

  it("a status without a standard phrase still gets a well-formed status line", function () {
    expect(statusLine(599)).to.equal("HTTP/1.1 599 Unknown");
  });

  it("a refused TLS stream gets one fatal handshake_failure alert record", function () {
    expect([...tlsRefusal()]).to.deep.equal([21, 3, 3, 0, 2, 2, 40]);
  });
});
