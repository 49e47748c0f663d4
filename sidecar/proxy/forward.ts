// One HTTP request through the boundary: reduce it to canonical facts, decide, then forward it
// (credential attached for inject) to the address the sidecar resolved and checked itself.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import tls from "node:tls";
import { canonicalHost, normalizePath } from "../policy/index.ts";
import type { RequestFacts } from "../policy/index.ts";
import type { AuditRecord } from "../observe/audit.ts";
import type { Gate } from "./gate.ts";
import {
  forwardableHeaders,
  injectedHeaderNames,
  pairHeaders,
  rewriteQuery,
  withoutClientClaims,
  type HeaderList,
} from "./inject.ts";
import { relayedResponse, sendRelayed } from "./response.ts";
import { requestTarget, type TargetContext } from "./target.ts";
import type { DialAddress } from "./resolve.ts";
import {
  blockVerdict,
  sendBlock,
  sendUpstreamError,
  upstreamErrorKind,
  type UpstreamErrorKind,
  type Verdict,
} from "./verdict.ts";

/** How the connection a request arrived on was established, and who opened it. */
export interface ConnContext extends TargetContext {
  client?: string;
}

/** Upstream connection pools shared by every request of one sidecar. */
export interface Upstreams {
  http: http.Agent;
  https: https.Agent;
  timeoutMs: number;
}

/**
 * Creates the keep-alive pools; upstream TLS is always verified against `roots`. The roots are
 * parsed once into one SecureContext that every upstream connection shares: passing `ca` to the
 * agent instead would parse the whole bundle for each new connection and, worse, make the bundle
 * (~200 KB of PEM) part of the pool key that https.Agent#getName rebuilds and hashes several
 * times per request. The pool key still names host, port and server name, so TLS sessions are
 * cached and resumed per upstream (the agent's session cache, 100 by default).
 */
export function createUpstreams(roots: string[], timeoutMs = 30_000): Upstreams {
  const common = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64, timeout: timeoutMs };
  const secureContext = tls.createSecureContext({ ca: roots, minVersion: "TLSv1.2" });
  return {
    http: new http.Agent(common),
    https: new https.Agent({ ...common, secureContext, rejectUnauthorized: true }),
    timeoutMs,
  };
}

/** Handles one request end to end. Never throws; every failure becomes an answer to the agent. */
export async function handleRequest(
  gate: Gate,
  upstreams: Upstreams,
  req: IncomingMessage,
  res: ServerResponse,
  ctx: ConnContext,
): Promise<void> {
  const started = performance.now();
  const base = { entry: ctx.entry, method: req.method ?? "", client: ctx.client };
  const target = requestTarget(req, ctx);
  if (!target.ok) {
    const bound = { host: ctx.bound?.host ?? "", port: ctx.bound?.port ?? 0 };
    refuseUndecidable(gate, res, blockVerdict(target.reason, target.message), { ...base, ...bound });
    return;
  }
  const normalized = normalizePath(target.pathAndQuery);
  const record = { ...base, host: target.host, port: target.port };
  if (!normalized.ok) {
    const verdict = blockVerdict("InvalidRequest", `bad path: ${normalized.message}`);
    refuseUndecidable(gate, res, verdict, record, target.host);
    return;
  }
  const facts: RequestFacts = {
    scheme: ctx.scheme,
    host: target.host,
    port: target.port,
    method: (req.method ?? "").toUpperCase(),
    path: normalized.path,
    entry: ctx.entry,
  };
  const withPath = { ...record, path: facts.path };
  const blockWith = (verdict: Verdict): void => {
    sendBlock(res, verdict, facts.host);
    gate.record(verdict, { ...withPath, status: res.statusCode, durationMs: performance.now() - started });
  };
  let verdict: Verdict = gate.evaluate(facts);
  if (verdict.outcome === "block") {
    blockWith(verdict);
    return;
  }

  let injection: ReturnType<Gate["credential"]> | undefined;
  if (verdict.outcome === "inject" && verdict.credential !== undefined) {
    injection = gate.credential(verdict.credential);
    if (!injection.ok) {
      blockWith({ ...injection.verdict, policy: verdict.policy, rule: verdict.rule });
      return;
    }
  }
  const resolved = await gate.resolve(facts.host, facts.port);
  // The agent may have gone while the name resolved: nothing left to answer, nothing to dial.
  if (res.destroyed || req.destroyed) {
    gate.record(verdict, { ...withPath, status: 0, durationMs: performance.now() - started });
    return;
  }
  if (!resolved.ok) {
    if (resolved.kind === "forbidden") {
      blockWith(blockVerdict("AddressForbidden", resolved.message));
      return;
    }
    gate.metrics.upstreamErrors.inc({ kind: "dns" });
    sendUpstreamError(res, "dns", verdict.outcome);
    gate.record(verdict, { ...withPath, status: res.statusCode, durationMs: performance.now() - started });
    return;
  }

  const credentialed = injection?.ok === true ? injection : undefined;
  if (!credentialed) verdict = { ...verdict, credential: undefined };
  const { headers, path, patterns } = outgoing(req, facts, normalized.query, credentialed);
  forward(gate, upstreams, req, res, {
    facts,
    path,
    headers,
    address: resolved.addresses[0],
    patterns,
    credential: verdict.credential,
    onDone: (status, bytes) => {
      gate.record(verdict, { ...withPath, status, bytes, durationMs: performance.now() - started });
    },
  });
}

/** Answers a request that cannot be reduced to facts (the connection then closes) and records it. */
function refuseUndecidable(
  gate: Gate,
  res: ServerResponse,
  verdict: Verdict,
  record: Omit<AuditRecord, "outcome" | "reason">,
  host?: string,
): void {
  sendBlock(res, verdict, host, true);
  gate.record(verdict, { ...record, status: res.statusCode });
}

/**
 * The request as it leaves: the agent's headers less client claims and those that never cross the
 * proxy, the credential attached (agent copies removed, identity encoding asked so reflections can
 * be found), the canonical Host; the normalised path with the rewritten query; the scrub patterns.
 */
function outgoing(
  req: IncomingMessage,
  facts: RequestFacts,
  query: string,
  injection: Extract<ReturnType<Gate["credential"]>, { ok: true }> | undefined,
): { headers: HeaderList; path: string; patterns: Buffer[] } {
  let headers: HeaderList = withoutClientClaims(pairHeaders(req.rawHeaders));
  let patterns: Buffer[] = [];
  if (injection) {
    const prepared = injection.injection;
    headers = forwardableHeaders(headers, [...injectedHeaderNames(injection.credential), "accept-encoding"]);
    headers.push(["Accept-Encoding", "identity"]);
    if (prepared.header) headers.push(prepared.header);
    if (prepared.query) query = rewriteQuery(query, prepared.query[0], prepared.query[1]);
    patterns = prepared.patterns;
  } else headers = forwardableHeaders(headers);
  const defaultPort = facts.scheme === "https" ? 443 : 80;
  const hostHeader = facts.host.includes(":") ? `[${facts.host}]` : facts.host;
  headers.unshift(["Host", facts.port === defaultPort ? hostHeader : `${hostHeader}:${facts.port}`]);
  return { headers, path: query === "" ? facts.path : `${facts.path}?${query}`, patterns };
}

interface ForwardPlan {
  facts: RequestFacts;
  path: string;
  headers: HeaderList;
  address: DialAddress;
  patterns: Buffer[];
  credential: string | undefined;
  onDone: (status: number, bytes: number) => void;
}

/** Options that dial exactly the address the sidecar resolved and checked, with the pools' TLS. */
function requestOptions(upstreams: Upstreams, plan: ForwardPlan): https.RequestOptions {
  const { facts } = plan;
  const pinned: LookupFunction = (_host, options, callback) => {
    if (options.all === true)
      callback(null, [{ address: plan.address.address, family: plan.address.family }]);
    else callback(null, plan.address.address, plan.address.family);
  };
  const secure = facts.scheme === "https";
  const isIpHost = canonicalHost(facts.host).kind === "ip";
  return {
    host: facts.host,
    port: facts.port,
    method: facts.method,
    path: plan.path,
    headers: plan.headers.flat(),
    setHost: false,
    lookup: pinned,
    agent: secure ? upstreams.https : upstreams.http,
    timeout: upstreams.timeoutMs,
    ...(secure && !isIpHost ? { servername: facts.host } : {}),
  };
}

function forward(
  gate: Gate,
  upstreams: Upstreams,
  req: IncomingMessage,
  res: ServerResponse,
  plan: ForwardPlan,
): void {
  const { facts } = plan;
  const secure = facts.scheme === "https";
  const options = requestOptions(upstreams, plan);
  let bytes = 0;
  let finished = false;
  const done = (status: number): void => {
    if (finished) return;
    finished = true;
    plan.onDone(status, bytes);
  };
  const outcome = plan.credential !== undefined ? "inject" : "allow";
  let response: IncomingMessage | undefined;
  let answered = false;
  // The one way a failure reaches the agent: a 502/504 while nothing of the response has been
  // sent, else the connection cut (a truncated body must not look complete).
  const fail = (kind: UpstreamErrorKind): void => {
    if (answered) return;
    answered = true;
    gate.metrics.upstreamErrors.inc({ kind });
    if (res.headersSent) res.destroy();
    else sendUpstreamError(res, kind, outcome);
    done(res.statusCode);
  };
  const upstream = (secure ? https : http).request(options, (upRes) => {
    response = upRes;
    const relayed = relayedResponse(upRes, {
      method: facts.method,
      patterns: plan.patterns,
      outcome,
      onScrub: (count) => {
        gate.metrics.credentialScrubbed.inc({ credential: plan.credential ?? "" }, count);
      },
    });
    if (!relayed.ok) {
      upRes.destroy();
      gate.log.warn({ reason: relayed.unreadable.reason, host: facts.host }, "response refused: unreadable");
      fail("protocol");
      return;
    }
    sendRelayed(
      res,
      relayed,
      (count) => (bytes += count),
      (err) => {
        if (err) {
          fail("protocol");
          return;
        }
        answered = true;
        done(res.statusCode);
      },
    );
  });
  upstream.on("timeout", () => {
    upstream.destroy(Object.assign(new Error("upstream timed out"), { code: "UpstreamTimeout" }));
  });
  upstream.on("error", (err) => {
    // Bytes after a complete response (a HEAD answered with a body) are the upstream's fault,
    // not the response's: the agent keeps what it was sent in full.
    if (response?.complete === true) {
      gate.metrics.upstreamErrors.inc({ kind: "protocol" });
      return;
    }
    fail(upstreamErrorKind(err));
  });
  res.on("close", () => {
    // The agent went away: stop the upstream side too.
    if (!res.writableFinished) upstream.destroy();
    done(res.statusCode);
  });
  // Not pipeline(): an upstream failure must leave the agent's connection open for the 502.
  req.on("error", () => upstream.destroy());
  req.pipe(upstream);
}
