// One HTTP request through the boundary: reduce it to canonical facts, decide, then forward it
// (credential attached for inject) to the address the sidecar resolved and checked itself.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Dispatcher } from "undici";
import {
  awsScopeOf,
  canonicalHost,
  normalizePath,
  type HeaderEdits,
  type RequestFacts,
} from "../policy/index.ts";
import type { AuditRecord } from "../observe/audit.ts";
import type { CredentialResult, Gate } from "./gate.ts";
import type { PreparedInjection } from "./inject.ts";
import { encodedForms } from "./scrub-forms.ts";
import { scrubPatterns } from "./scrub.ts";
import { EMPTY_PAYLOAD, isQueryAuth, payloadHash, signatureHeaders, UNSIGNED_PAYLOAD } from "./sigv4.ts";
import {
  forwardableHeaders,
  injectedHeaderNames,
  pairHeaders,
  rewriteQuery,
  withoutClientClaims,
  type HeaderList,
} from "./inject.ts";
import { forwardableTrailers, h2HasBody, h2RequestLine, isH2Request } from "./h2.ts";
import { relay, relayedResponse, scrubHeaders, type BodySink } from "./response.ts";
import { requestTarget, type RequestLine, type TargetContext } from "./target.ts";
import type { DialAddress } from "./resolve.ts";
import { UpstreamPools } from "./upstream-pool.ts";
import { relayWebSocket, type RelayedSocket } from "./websocket.ts";
import { DECISION_HEADER } from "../constants.ts";
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
export type Upstreams = UpstreamPools;

/** Creates the keep-alive pools; upstream TLS is always verified against `roots`. */
export function createUpstreams(roots: string[], timeoutMs = 30_000): Upstreams {
  return new UpstreamPools(roots, timeoutMs);
}

/** Handles one request end to end. Never throws; every failure becomes an answer to the agent. */
export async function handleRequest(
  gate: Gate,
  upstreams: Upstreams,
  req: IncomingMessage,
  res: ServerResponse,
  ctx: ConnContext,
  upgrade?: WebSocketUpgrade,
): Promise<void> {
  const started = performance.now();
  const base = { entry: ctx.entry, method: req.method ?? "", client: ctx.client };
  const target = requestTarget(requestLine(req).line, ctx);
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

  const admitted = await admit(gate, req, verdict, facts);
  if (!admitted.ok) {
    blockWith({ ...admitted.verdict, policy: verdict.policy, rule: verdict.rule });
    return;
  }
  verdict = admitted.verdict;
  const resolved = await gate.resolve(facts.host, facts.port);
  // The agent may have gone while the name resolved: nothing left to answer, nothing to dial.
  if (res.destroyed || req.destroyed) {
    gate.record(verdict, { ...withPath, status: 0, durationMs: performance.now() - started });
    return;
  }
  if (!resolved.ok) {
    if (resolved.kind === "forbidden") blockWith(blockVerdict("AddressForbidden", resolved.message));
    else answerDnsFailure(gate, res, verdict, { ...withPath, durationMs: performance.now() - started });
    return;
  }
  await forward(gate, upstreams, req, res, {
    facts,
    refuse: (refused) => {
      blockWith({ ...refused, policy: verdict.policy, rule: verdict.rule });
    },
    ...outgoing(req, facts, normalized.query, admitted, upgrade),
    address: resolved.addresses[0],
    credential: verdict.credential,
    upgrade,
    trailers: isH2Request(req),
    onDone: (status, bytes) => {
      gate.record(verdict, { ...withPath, status, bytes, durationMs: performance.now() - started });
    },
  });
}

/** An allowed request ready to go: its verdict, credential, placeholder swap and body read whole. */
type Admitted = Extract<Awaited<ReturnType<typeof admit>>, { ok: true }>;

/**
 * What an allowed request needs before it goes: its credential (a Secret's value at once; a minted
 * token may need an exchange first), then its rule's hook's answer (whose edits join the rule's).
 * Either can refuse it.
 */
async function admit(
  gate: Gate,
  req: IncomingMessage,
  verdict: Verdict,
  facts: RequestFacts,
): Promise<
  | {
      ok: true;
      verdict: Verdict;
      injection?: Extract<CredentialResult, { ok: true }>;
      swap?: PlaceholderSwap;
      body?: Buffer;
    }
  | { ok: false; verdict: Verdict }
> {
  let injection: Extract<CredentialResult, { ok: true }> | undefined;
  if (verdict.outcome === "inject" && verdict.credential !== undefined) {
    const pending = gate.credential(verdict.credential);
    const got = pending instanceof Promise ? await pending : pending;
    if (!got.ok) return got;
    injection = got;
  }
  let admitted: Verdict = injection ? verdict : { ...verdict, credential: undefined };
  if (verdict.hook !== undefined) {
    const answer = await gate.hooks.ask(
      verdict.hook,
      { ...verdict, ...(injection ? { credential: injection.credential } : { credential: undefined }) },
      facts,
      requestLine(req).line.rawHeaders,
    );
    if (!answer.ok) return answer;
    if (answer.edits !== undefined) {
      // The hook's sets replace the rule's of the same name.
      const before = admitted.headers ?? { set: [], remove: [] };
      const replaced = new Set(answer.edits.set.map(({ name }) => name.toLowerCase()));
      const set = [
        ...before.set.filter(({ name }) => !replaced.has(name.toLowerCase())),
        ...answer.edits.set,
      ];
      admitted = { ...admitted, headers: { set, remove: [...before.remove, ...answer.edits.remove] } };
    }
  }
  const placeholders = gate.hasPlaceholders ? await checkPlaceholders(gate, req, injection) : undefined;
  if (placeholders?.ok === false) return placeholders;
  return {
    ok: true,
    verdict: admitted,
    ...(injection ? { injection } : {}),
    ...(placeholders?.swap ? { swap: placeholders.swap } : {}),
    ...(placeholders?.body ? { body: placeholders.body } : {}),
  };
}

/** A placeholder the agent sent, and the real value it stands for on this request. */
export interface PlaceholderSwap {
  placeholder: string;
  value: string;
}

/** Largest body scanned for placeholders (read whole when its length is known and at most this). */
const MAX_PLACEHOLDER_BODY_BYTES = 64 * 1024;

/**
 * Looks for credentials' placeholders in the request's headers, URL and (a known length up to
 * 64 KiB) body. One belonging to the credential this request is attached to is swapped for its
 * value; any other is refused (PlaceholderOffHost): the agent is sending a stand-in for a
 * credential where that credential never goes.
 */
async function checkPlaceholders(
  gate: Gate,
  req: IncomingMessage,
  injection: Extract<CredentialResult, { ok: true }> | undefined,
): Promise<{ ok: true; swap?: PlaceholderSwap; body?: Buffer } | { ok: false; verdict: Verdict }> {
  const { line } = requestLine(req);
  const found = new Map<string, string>();
  for (const text of [line.url ?? "", ...line.rawHeaders])
    for (const [p, id] of gate.placeholdersIn(text)) found.set(p, id);
  let body: Buffer | undefined;
  const length = Number(req.headers["content-length"] ?? NaN);
  if (hasBody(req) && length <= MAX_PLACEHOLDER_BODY_BYTES) {
    body = await readWhole(req, MAX_PLACEHOLDER_BODY_BYTES);
    if (body === undefined)
      return { ok: false, verdict: blockVerdict("InvalidRequest", "the request body was cut short") };
    for (const [p, id] of gate.placeholdersIn(body.toString("latin1"))) found.set(p, id);
  }
  const mine = injection?.credential.placeholder;
  for (const [placeholder, id] of found)
    if (placeholder !== mine)
      return {
        ok: false,
        verdict: blockVerdict(
          "PlaceholderOffHost",
          `the request holds the placeholder of credential ${id}, which is not attached to this request; send it only where a rule attaches that credential`,
        ),
      };
  const value = injection?.injection.sent[0];
  const swap =
    mine !== undefined && found.has(mine) && value !== undefined ? { placeholder: mine, value } : undefined;
  return { ok: true, ...(swap ? { swap } : {}), ...(body ? { body } : {}) };
}

/** The name did not resolve: a 502 (`dns`), counted and recorded. */
function answerDnsFailure(
  gate: Gate,
  res: ServerResponse,
  verdict: Verdict,
  record: Omit<AuditRecord, "outcome" | "reason">,
): void {
  gate.metrics.upstreamErrors.inc({ kind: "dns" });
  sendUpstreamError(res, "dns", verdict.outcome);
  gate.record(verdict, { ...record, status: res.statusCode });
}

/**
 * What a request is addressed by: an HTTP/2 stream's :authority and :path read as HTTP/1.1's Host
 * and URL (h2.ts), an HTTP/1.1 request as it came.
 */
function requestLine(req: IncomingMessage): { line: RequestLine; h2: boolean } {
  return isH2Request(req) ? { line: h2RequestLine(req), h2: true } : { line: req, h2: false };
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
  rawQuery: string,
  admitted: Admitted,
  upgrade: WebSocketUpgrade | undefined,
): {
  headers: HeaderList;
  path: string;
  patterns: Buffer[];
  sigv4?: PreparedInjection["sigv4"];
  body?: Buffer;
} {
  const { line, h2 } = requestLine(req);
  const { injection, swap } = admitted;
  const edits = admitted.verdict.headers;
  let query = swap ? rawQuery.replaceAll(swap.placeholder, encodeURIComponent(swap.value)) : rawQuery;
  let headers: HeaderList = withoutClientClaims(pairHeaders(line.rawHeaders));
  // No WebSocket extension is offered upstream: a compressed frame could not be scrubbed.
  if (upgrade) headers = forwardableHeaders(headers, ["sec-websocket-extensions"]);
  // No compression asked for on the credential path: a compressed body (or gRPC message) could
  // not be scrubbed. The agent's copies of the credential's header go too.
  const owned = injection
    ? [...injectedHeaderNames(injection.credential), "accept-encoding", "grpc-accept-encoding"]
    : [];
  headers = forwardableHeaders(headers, owned);
  // The rule's static edits, after hygiene and before the credential (which they cannot touch).
  if (edits) headers = forwardableHeaders(applyHeaderEdits(headers, edits), owned);
  // The agent's placeholder becomes the value, where it put it (before the credential goes on).
  let body = admitted.body;
  if (swap) {
    headers = headers.map(([name, value]) => [name, value.replaceAll(swap.placeholder, swap.value)]);
    if (body !== undefined) {
      body = Buffer.from(body.toString("latin1").replaceAll(swap.placeholder, swap.value), "latin1");
      headers = headers.map(([name, value]) => [
        name,
        name.toLowerCase() === "content-length" ? String(body?.length ?? 0) : value,
      ]);
    }
  }
  let patterns: Buffer[] = [];
  if (injection) {
    const prepared = injection.injection;
    headers.push(["Accept-Encoding", "identity"]);
    if (prepared.header) headers.push(prepared.header);
    if (prepared.query) query = rewriteQuery(query, prepared.query[0], prepared.query[1]);
    // A presigned URL's own signature goes: the sidecar signs with its keys in headers.
    if (prepared.sigv4) query = withoutQueryAuth(query);
    patterns = prepared.patterns;
  }
  // An HTTP/2 agent that takes trailers says so (gRPC does); it gets the upstream's (TE: trailers).
  if (h2 && acceptsTrailers(line.rawHeaders)) headers.push(["te", "trailers"]);
  const defaultPort = facts.scheme === "https" ? 443 : 80;
  const hostHeader = facts.host.includes(":") ? `[${facts.host}]` : facts.host;
  headers.unshift(["Host", facts.port === defaultPort ? hostHeader : `${hostHeader}:${facts.port}`]);
  const path = query === "" ? facts.path : `${facts.path}?${query}`;
  const sigv4 = injection?.injection.sigv4;
  return { headers, path, patterns, ...(sigv4 ? { sigv4 } : {}), ...(body ? { body } : {}) };
}

/** `query` without the parameters of a presigned URL's SigV4 auth (X-Amz-Signature, …). */
function withoutQueryAuth(query: string): string {
  return query
    .split("&")
    .filter((pair) => !isQueryAuth(safeDecode(pair.split("=", 1)[0] ?? "")))
    .join("&");
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Largest body read whole to be hashed for a SigV4 signature. */
const MAX_SIGNED_BODY_BYTES = 8 * 1024 * 1024;

/**
 * The headers that sign `plan`'s request (SigV4), and the body when it had to be read whole to
 * hash it, or the verdict refusing it: no region and service for the host, a body too large.
 */
async function signRequest(
  req: IncomingMessage,
  plan: ForwardPlan,
  keys: NonNullable<PreparedInjection["sigv4"]>,
): Promise<{ ok: true; headers: HeaderList; body?: Buffer } | { ok: false; verdict: Verdict }> {
  const scope = awsScopeOf(plan.facts.host);
  const region = keys.region ?? scope?.region;
  const service = keys.service ?? scope?.service;
  if (region === undefined || service === undefined)
    return {
      ok: false,
      verdict: blockVerdict(
        "CredentialUnavailable",
        `${plan.facts.host} is not an *.amazonaws.com endpoint; set region and service on the Credential's awsSigV4`,
      ),
    };
  let body = plan.body;
  let payload = EMPTY_PAYLOAD;
  if (body !== undefined) payload = keys.unsignedPayload ? UNSIGNED_PAYLOAD : payloadHash(body);
  else if (hasBody(req)) {
    if (keys.unsignedPayload) payload = UNSIGNED_PAYLOAD;
    else {
      body = await readWhole(req, MAX_SIGNED_BODY_BYTES);
      if (body === undefined)
        return {
          ok: false,
          verdict: blockVerdict(
            "InvalidRequest",
            `a body over ${MAX_SIGNED_BODY_BYTES} bytes cannot be hashed for its signature; for S3 set unsignedPayload: true`,
          ),
        };
      payload = payloadHash(body);
    }
  }
  const at = plan.path.indexOf("?");
  const headers = signatureHeaders(
    { ...keys, region, service },
    {
      method: plan.facts.method,
      path: at === -1 ? plan.path : plan.path.slice(0, at),
      query: at === -1 ? "" : plan.path.slice(at + 1),
      host: plan.headers[0]?.[1] ?? plan.facts.host,
      payload,
    },
    new Date(),
  );
  return body === undefined ? { ok: true, headers } : { ok: true, headers, body };
}

/** The whole body of `req`, or undefined when it is over `limit` bytes (or cut short). */
function readWhole(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      resolve(Buffer.concat(chunks));
    });
    req.on("error", () => {
      resolve(undefined);
    });
  });
}

/** `headers` less every header the rule removes or sets, then the ones it sets (in its order). */
function applyHeaderEdits(headers: HeaderList, edits: HeaderEdits): HeaderList {
  const drop = new Set(edits.remove);
  for (const { name } of edits.set) drop.add(name.toLowerCase());
  const out = headers.filter(([name]) => !drop.has(name.toLowerCase()));
  for (const { name, value } of edits.set) out.push([name, value]);
  return out;
}

/** True when the request's TE header names `trailers`. */
function acceptsTrailers(raw: string[]): boolean {
  for (let i = 0; i + 1 < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === "te" && /(^|,)\s*trailers\s*(;|,|$)/i.test(raw[i + 1] as string))
      return true;
  return false;
}

interface ForwardPlan {
  facts: RequestFacts;
  path: string;
  headers: HeaderList;
  address: DialAddress;
  patterns: Buffer[];
  credential: string | undefined;
  upgrade?: WebSocketUpgrade | undefined;
  /** awsSigV4: the request is signed (headers added) before it goes. */
  sigv4?: PreparedInjection["sigv4"];
  /** The body, when it was read whole (to hash it for a signature). */
  body?: Buffer;
  /** Answers the agent with a block instead (and records it). */
  refuse: (verdict: Verdict) => void;
  /** The agent reads trailers (HTTP/2): the upstream's are relayed, scrubbed as headers are. */
  trailers: boolean;
  onDone: (status: number, bytes: number) => void;
}

/** A WebSocket upgrade request: the agent's connection and what followed the request on it. */
export interface WebSocketUpgrade {
  socket: RelayedSocket;
  head: Buffer;
}

/** The options of one upstream request: exactly what `outgoing` built, nothing added. */
function dispatchOptions(
  req: IncomingMessage,
  upstreams: Upstreams,
  plan: ForwardPlan,
): Dispatcher.DispatchOptions {
  return {
    path: plan.path,
    method: plan.facts.method,
    headers: plan.headers.flat(),
    // The agent's body streams through as it arrives (chunked again when it came chunked).
    body: plan.body ?? (hasBody(req) ? req : null),
    headersTimeout: upstreams.timeoutMs,
    bodyTimeout: upstreams.timeoutMs,
    // undici writes Connection: upgrade and Upgrade: websocket itself.
    ...(plan.upgrade ? { upgrade: "websocket" } : {}),
  };
}

/** True when the agent's request carries a body (Node's parser framed one). */
function hasBody(req: IncomingMessage): boolean {
  if (isH2Request(req)) return h2HasBody(req);
  const length = req.headers["content-length"];
  if (length !== undefined) return length !== "0";
  return req.headers["transfer-encoding"] !== undefined;
}

/** The undici handler's view of the request it serves. */
interface Controller {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
  rawHeaders?: Buffer[] | string[] | Record<string, unknown> | null;
}

async function forward(
  gate: Gate,
  upstreams: Upstreams,
  req: IncomingMessage,
  res: ServerResponse,
  given: ForwardPlan,
): Promise<void> {
  let plan = given;
  if (plan.sigv4) {
    const signed = await signRequest(req, plan, plan.sigv4);
    if (!signed.ok) {
      plan.refuse(signed.verdict);
      return;
    }
    // The signature is the secret key's work on this request: an upstream echoing it (as S3's
    // SignatureDoesNotMatch does) must not hand it to the agent, who could replay the request.
    const authorization = signed.headers.find(([name]) => name === "Authorization")?.[1] ?? "";
    const signature = authorization.slice(authorization.lastIndexOf("=") + 1);
    plan = {
      ...plan,
      headers: [...plan.headers, ...signed.headers],
      patterns: scrubPatterns([...plan.patterns, ...encodedForms([authorization, signature])]),
    };
    if (signed.body) plan.body = signed.body;
  }
  const { facts } = plan;
  const exchange = new Exchange(gate, res, plan);
  res.on("close", () => {
    exchange.agentClosed();
  });
  const pool = upstreams.pool({
    secure: facts.scheme === "https",
    host: facts.host,
    port: facts.port,
    address: plan.address.address,
    family: plan.address.family,
    isIp: canonicalHost(facts.host).kind === "ip",
    // undici speaks WebSocket over HTTP/1.1 only; every other request may go over HTTP/2.
    http1Only: plan.upgrade !== undefined,
  });
  pool.dispatch(dispatchOptions(req, upstreams, plan), exchange);
}

/**
 * One request's exchange with its upstream: the HTTP client's handler (undici calls the on*
 * methods), and what the agent is told. The one way a failure reaches the agent is `fail`: a
 * 502/504 while nothing of the response has been sent, else the connection cut (a truncated body
 * must not look complete).
 */
class Exchange {
  #gate: Gate;
  #res: ServerResponse;
  #plan: ForwardPlan;
  #outcome: "inject" | "allow";
  #bytes = 0;
  #finished = false;
  #answered = false;
  #agentGone = false;
  #controller: Controller | undefined;
  #sink: BodySink | undefined;
  /** The status the agent got when it was not written through `res` (a 101). */
  #statusCode: number | undefined;

  constructor(gate: Gate, res: ServerResponse, plan: ForwardPlan) {
    this.#gate = gate;
    this.#res = res;
    this.#plan = plan;
    this.#outcome = plan.credential !== undefined ? "inject" : "allow";
  }

  /** Counts credential forms scrubbed from what goes back to the agent. */
  readonly #onScrub = (count: number): void => {
    this.#gate.metrics.credentialScrubbed.inc({ credential: this.#plan.credential ?? "" }, count);
  };

  /** The agent's response closed: if before it was complete, stop the upstream side too. */
  agentClosed(): void {
    if (!this.#res.writableFinished) {
      this.#agentGone = true;
      this.#controller?.abort(new Error("the agent went away"));
    }
    this.#done();
  }

  onRequestStart(controller: Controller): void {
    this.#controller = controller;
    if (this.#agentGone) controller.abort(new Error("the agent went away"));
  }

  onResponseStart(controller: Controller, status: number, _headers: unknown, statusMessage?: string): void {
    // 1xx interim responses are never relayed; the final response follows.
    if (status < 200 || this.#sink !== undefined || this.#answered) return;
    const { facts, patterns } = this.#plan;
    const relayed = relayedResponse(
      { status, statusMessage: statusMessage ?? "", rawHeaders: latin1Headers(controller.rawHeaders) },
      { method: facts.method, patterns, outcome: this.#outcome, onScrub: this.#onScrub },
    );
    if (!relayed.ok) {
      this.#gate.log.warn(
        { reason: relayed.unreadable.reason, host: facts.host },
        "response refused: unreadable",
      );
      this.#fail("protocol");
      controller.abort(new Error("response refused: unreadable"));
      return;
    }
    const flow = {
      pause: () => {
        controller.pause();
      },
      resume: () => {
        controller.resume();
      },
    };
    this.#sink = relay(
      this.#res,
      relayed,
      flow,
      (count) => (this.#bytes += count),
      (err) => {
        if (err) {
          this.#fail("protocol");
          return;
        }
        this.#answered = true;
        this.#done();
      },
    );
  }

  /** The upstream switched to WebSocket (101): answer the agent the same, then relay frames. */
  onRequestUpgrade(controller: Controller, status: number, _headers: unknown, socket: Socket): void {
    const { upgrade, patterns } = this.#plan;
    if (upgrade === undefined || this.#agentGone || this.#answered) {
      socket.destroy();
      return;
    }
    const head = switchingHead(latin1Headers(controller.rawHeaders), patterns, this.#outcome, this.#onScrub);
    if (head === undefined) {
      socket.destroy();
      this.#fail("protocol");
      return;
    }
    this.#answered = true;
    const agent = upgrade.socket;
    if (this.#res.socket) this.#res.detachSocket(this.#res.socket);
    agent.write(`HTTP/1.1 ${status} Switching Protocols\r\n${head}\r\n`);
    this.#statusCode = status;
    this.#done();
    relayWebSocket({
      agent,
      upstream: socket,
      agentHead: upgrade.head,
      patterns,
      onScrub: this.#onScrub,
      onClose: (reason) => {
        if (reason !== undefined)
          this.#gate.log.warn({ reason, host: this.#plan.facts.host }, "websocket closed: protocol or limit");
      },
    });
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    this.#sink?.data(chunk);
  }

  onResponseEnd(_controller: Controller, trailers?: Record<string, unknown> | null): void {
    if (this.#sink === undefined) return;
    if (!this.#plan.trailers) {
      this.#sink.end();
      return;
    }
    const { patterns } = this.#plan;
    const list = forwardableTrailers(trailers);
    this.#sink.end(patterns.length > 0 ? scrubHeaders(list, patterns, this.#onScrub) : list.flat());
  }

  onResponseError(_controller: Controller | null, err: Error): void {
    if (this.#sink !== undefined) this.#sink.fail(err);
    else this.#fail(upstreamErrorKind(err));
  }

  #fail(kind: UpstreamErrorKind): void {
    if (this.#answered) return;
    this.#answered = true;
    if (!this.#agentGone) {
      this.#gate.metrics.upstreamErrors.inc({ kind });
      if (this.#res.headersSent) this.#res.destroy();
      else sendUpstreamError(this.#res, kind, this.#outcome);
    }
    this.#done();
  }

  #done(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#plan.onDone(this.#statusCode ?? this.#res.statusCode, this.#bytes);
  }
}

/**
 * The header lines of the 101 the agent gets, or undefined when the upstream's cannot be relayed
 * (it agreed to an extension none was offered: its frames could be compressed). On an inject
 * path they are scrubbed as any response's headers are.
 */
function switchingHead(
  raw: string[],
  patterns: Buffer[],
  outcome: string,
  onScrub: (count: number) => void,
): string | undefined {
  const headers = pairHeaders(raw);
  if (headers.some(([name]) => name.toLowerCase() === "sec-websocket-extensions")) return undefined;
  const flat = patterns.length > 0 ? scrubHeaders(headers, patterns, onScrub) : raw;
  let head = "";
  for (let i = 0; i + 1 < flat.length; i += 2) head += `${flat[i] as string}: ${flat[i + 1] as string}\r\n`;
  return `${head}${DECISION_HEADER}: ${outcome}\r\n`;
}

/**
 * undici's raw response headers as the latin1 strings Node's own parser gives: a flat list of
 * Buffers over HTTP/1.1, an object (lower-case names, arrays for repeated fields) over HTTP/2.
 */
function latin1Headers(raw: Controller["rawHeaders"]): string[] {
  if (raw === null || raw === undefined) return [];
  if (!Array.isArray(raw)) {
    const out: string[] = [];
    for (const [name, value] of Object.entries(raw)) {
      if (name.startsWith(":")) continue;
      for (const item of Array.isArray(value) ? (value as unknown[]) : [value])
        if (typeof item === "string" || typeof item === "number") out.push(name, String(item));
    }
    return out;
  }
  const out: string[] = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const item = raw[i] as Buffer | string;
    out[i] = typeof item === "string" ? item : item.toString("latin1");
  }
  return out;
}
