// The five credential leaks of the review (plus 1xx and trailers) as one table, run through every
// entry path that injects: CONNECT (i1-reflection.test.ts) and transparent TLS
// (i1-reflection-transparent.test.ts). Each case says what to send, what the agent must see, and
// what the hostile upstream must have received. THREATS.md I1, I3, "Credentials".
import { expect } from "chai";
import { ECHO_FORMS } from "../fixtures/hostile-upstream.ts";
import { runExact, TEST_PATH, type Run } from "../helpers/pod-harness.ts";
import {
  expectNoLeak,
  expectUpstreamError,
  HEX_SECRET,
  headerOf,
  REDACTED,
  SECRET,
  type AgentView,
} from "./reflection-kit.ts";

/** Which host of the test policy a case addresses. */
export type CaseHost = "echo" | "hex" | "allow";

/** Host names of the test policy: two inject rules without `methods`, one allow rule with paths. */
export const HOSTS: Record<CaseHost, string> = {
  echo: "echo.example.test",
  hex: "hex.example.test",
  allow: "allow.example.test",
};

/** The secret each host's rule injects (as `Authorization: Bearer <value>`), if any. */
export const SECRET_OF: Record<CaseHost, string | undefined> = {
  echo: SECRET,
  hex: HEX_SECRET,
  allow: undefined,
};

/** One request and what must come of it. */
export interface ReflectionCase {
  title: string;
  host: CaseHost;
  method: string;
  path: string;
  /** The final status the agent must get. */
  status: number;
  /** What the upstream must have received: the credential, a request without one, or nothing. */
  sent: "credential" | "plain" | "nothing";
  /** Further checks of the exact bytes the agent received. */
  check?: (view: AgentView) => void;
}

const REASONS: Record<number, string> = { 200: "OK", 403: "Forbidden", 502: "Bad Gateway" };

const blocked = (view: AgentView): void => {
  expect(headerOf(view.final, "x-airlock-decision")).to.equal("block");
};

const encodingCases = (host: CaseHost, forms: readonly string[]): ReflectionCase[] =>
  forms.map((form) => ({
    title: `(4) encodings: ${form} of the ${host} credential reaches the agent as ${REDACTED}`,
    host,
    method: "GET",
    path: `/echo-encodings?form=${form}`,
    status: 200,
    sent: "credential",
    check: (view) => {
      expect(headerOf(view.final, "x-echo"), "X-Echo header").to.include(REDACTED);
      expect(view.body.toString("latin1"), "body").to.include(REDACTED);
    },
  }));

/** Every case, in the order of the review's findings. */
export const CASES: ReflectionCase[] = [
  {
    title: "(1) status line: a reason phrase carrying the value becomes the standard one",
    host: "echo",
    method: "GET",
    path: "/status-line",
    status: 200,
    sent: "credential",
    check: (view) => expect(view.final.statusLine).to.equal("HTTP/1.1 200 OK"),
  },
  {
    title: `(2) header names: a header named with the value is dropped, one valued with it is ${REDACTED}`,
    host: "echo",
    method: "GET",
    path: "/header-name",
    status: 200,
    sent: "credential",
    check: (view) => {
      const names = view.final.headers.map(([n]) => n.toLowerCase());
      expect(
        names.filter((n) => n.startsWith("x-leak")),
        "header names",
      ).to.deep.equal([]);
      expect(headerOf(view.final, "x-echo")).to.equal(REDACTED);
    },
  },
  ...["TRACE", "PROPFIND", "MKCOL"].map((method): ReflectionCase => ({
    title: `(3) methods: ${method} to an inject rule without methods is blocked, nothing sent`,
    host: "echo",
    method,
    path: "/trace-echo",
    status: 403,
    sent: "nothing",
    check: blocked,
  })),
  ...["TRACE", "PROPFIND"].map((method): ReflectionCase => ({
    title: `(3) methods: ${method} to an intercepted allow-only rule without methods is blocked`,
    host: "allow",
    method,
    path: "/trace-echo",
    status: 403,
    sent: "nothing",
    check: blocked,
  })),
  ...["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].map((method): ReflectionCase => ({
    title: `(3) methods: ${method} to an inject rule without methods still gets the credential`,
    host: "echo",
    method,
    path: "/ordinary",
    status: 200,
    sent: "credential",
  })),
  ...encodingCases(
    "echo",
    ECHO_FORMS.filter((f) => f !== "upper-case"),
  ),
  ...encodingCases("hex", ECHO_FORMS),
  ...["/te-gzip", "/double-gzip"].map((path): ReflectionCase => ({
    title: `(5) codings: ${path} is answered with the sidecar's 502, never the compressed payload`,
    host: "echo",
    method: "GET",
    path,
    status: 502,
    sent: "credential",
    check: (view) => {
      expectUpstreamError(view, path);
      expect(view.unwrapped, "gzip layers in the agent's body").to.deep.equal([]);
    },
  })),
  {
    title: "1xx: a 103 Early Hints carrying the value does not reach the agent unscrubbed",
    host: "echo",
    method: "GET",
    path: "/early-hints",
    status: 200,
    sent: "credential",
    check: (view) => expect(view.body.toString("latin1")).to.equal("ok"),
  },
  {
    title: "trailers: chunked trailers carrying the value do not reach the agent unscrubbed",
    host: "echo",
    method: "GET",
    path: "/trailers",
    status: 200,
    sent: "credential",
    check: (view) => expect(view.body.toString("latin1")).to.equal("ok"),
  },
];

/** Checks common to every case: status, its standard reason, no form of either secret anywhere. */
export function expectAgentView(c: ReflectionCase, view: AgentView): void {
  const label = `${c.method} ${HOSTS[c.host]}${c.path}`;
  expect(view.final.status, `${label}:\n${view.raw.toString("latin1")}`).to.equal(c.status);
  expectNoLeak(view, [SECRET, HEX_SECRET], label);
  const reason = REASONS[c.status];
  if (reason !== undefined) expect(view.final.statusLine, label).to.equal(`HTTP/1.1 ${c.status} ${reason}`);
  c.check?.(view);
}

/** Checks what the upstream got for one case (its records of the case's path, after the request). */
export function expectUpstreamSaw(
  c: ReflectionCase,
  records: { method: string; headers: [string, string][] }[],
): void {
  const label = `${c.method} ${HOSTS[c.host]}${c.path}`;
  if (c.sent === "nothing") {
    expect(records, `${label} reached the upstream`).to.deep.equal([]);
    return;
  }
  expect(records.length, `${label} never reached the upstream`).to.equal(1);
  const auth = records[0]?.headers.filter(([n]) => n.toLowerCase() === "authorization").map(([, v]) => v);
  const secret = SECRET_OF[c.host];
  expect(auth, `${label}: Authorization the upstream got`).to.deep.equal(
    c.sent === "credential" && secret !== undefined ? [`Bearer ${secret}`] : [],
  );
  expect(records[0]?.method).to.equal(c.method);
}

/** curl's flags for a case's method (HEAD needs --head, or curl waits for a body). */
export function curlMethodArgs(method: string): string[] {
  if (method === "GET") return [];
  if (method === "HEAD") return ["--head"];
  return ["-X", method];
}

/** The status of the last final response curl printed with `-D -` (0: none). */
export function curlStatus(stdout: string): number {
  // Skips the proxy's answer to CONNECT (curl prints it first) and any 1xx.
  const all = [...stdout.matchAll(/^HTTP\/[\d.]+ (\d{3})(.*)$/gm)]
    .filter((m) => !(m[1] === "200" && /^ connection established/i.test(m[2] ?? "")))
    .map((m) => Number(m[1]));
  return all.filter((s) => s >= 200).at(-1) ?? 0;
}

/** Runs a command to completion; exit code, stdout and stderr (never throws). */
export function runCommand(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<Run> {
  return runExact(
    args,
    { PATH: TEST_PATH, HOME: "/tmp", ...env },
    { timeoutMs, encoding: "latin1", maxBuffer: 16 * 1024 * 1024, rejectMissing: true },
  );
}
