// Shared by the I1 reflection tests (THREATS.md I1, "Credentials"): every recoverable form of a
// secret to search for, a parser of the exact bytes an agent received (1xx, status line, each
// header, body decoded from chunked and from any gzip layers, trailers), and a raw CONNECT client.
import { expect } from "chai";
import net from "node:net";
import tls from "node:tls";
import zlib from "node:zlib";

/** The marker the sidecar writes where a credential stood. */
export const REDACTED = "[airlock:redacted]";

/**
 * The bearer secret: only tchar characters (so an upstream can put it in a header NAME), with
 * '+' and '|' (so its URL encoding differs) and a base64 that holds '+' (so base64url differs).
 */
export const SECRET = "k3y~~~Value+with|tchars_Z9w";
/** A hex-looking secret (40 lower-case hex digits): its upper-cased echo is the same value. */
export const HEX_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f00a1b2c3d";

/** One searchable form of a secret. */
export interface LeakForm {
  name: string;
  text: string;
  /** Searched case-insensitively (hex digits and escapes carry the value in either case). */
  anyCase: boolean;
}

// The base64 characters fixed by `value` alone when it follows `align` other bytes: whatever
// precedes or follows it, an encoding of it at that alignment contains this substring.
function base64Core(value: Buffer, align: number): string {
  const encoded = Buffer.concat([Buffer.alloc(align), value]).toString("base64");
  const start = align === 0 ? 0 : Math.ceil((align * 8) / 6);
  const end = Math.floor(((align + value.length) * 8) / 6);
  return encoded.slice(start, end);
}

/** Every recoverable form of `value` the agent must never see (THREATS.md "Credentials"). */
export function leakForms(value: string): LeakForm[] {
  const bytes = Buffer.from(value);
  const hexLike = /^[0-9a-f]+$/i.test(value);
  const forms: LeakForm[] = [
    { name: "raw", text: value, anyCase: hexLike },
    { name: "url-encoded", text: encodeURIComponent(value), anyCase: true },
    { name: "hex", text: bytes.toString("hex"), anyCase: true },
    {
      name: "json-u",
      text: [...bytes].map((b) => `\\u${b.toString(16).padStart(4, "0")}`).join(""),
      anyCase: true,
    },
  ];
  for (const align of [0, 1, 2]) {
    const core = base64Core(bytes, align);
    forms.push({ name: `base64@${align}`, text: core, anyCase: false });
    forms.push({
      name: `base64url@${align}`,
      text: core.replace(/\+/g, "-").replace(/\//g, "_"),
      anyCase: false,
    });
  }
  return forms;
}

/** Names of the forms of any of `values` found in `text` (empty: no leak). */
export function findLeaks(text: string, values: string[]): string[] {
  const lower = text.toLowerCase();
  const found: string[] = [];
  for (const value of values)
    for (const form of leakForms(value)) {
      const hit = form.anyCase ? lower.includes(form.text.toLowerCase()) : text.includes(form.text);
      if (hit) found.push(`${form.name} of ${value.slice(0, 6)}…`);
    }
  return [...new Set(found)];
}

/** One response head as the agent received it. */
export interface Head {
  statusLine: string;
  status: number;
  reason: string;
  headers: [string, string][];
}

/** Everything an agent received on one exchange, parsed. */
export interface AgentView {
  raw: Buffer;
  /** 1xx responses before the final one. */
  informational: Head[];
  final: Head;
  /** The body after chunked decoding (the bytes the agent's client hands on). */
  body: Buffer;
  trailers: [string, string][];
  /** Every gzip layer the body unwraps to (to search compressed reflections too). */
  unwrapped: Buffer[];
}

function parseHeadText(text: string): Head {
  const [statusLine = "", ...lines] = text.split("\r\n");
  const match = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/.exec(statusLine);
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { statusLine, status: Number(match?.[1] ?? 0), reason: match?.[2] ?? "", headers };
}

function dechunk(data: Buffer): { body: Buffer; trailers: [string, string][] } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf("\r\n", at);
    if (eol === -1) return { body: Buffer.concat([...parts, data.subarray(at)]), trailers: [] };
    const size = parseInt(data.subarray(at, eol).toString("latin1").split(";")[0] ?? "", 16);
    if (!Number.isFinite(size)) return { body: Buffer.concat([...parts, data.subarray(at)]), trailers: [] };
    if (size === 0) {
      const rest = data.subarray(eol + 2).toString("latin1");
      return { body: Buffer.concat(parts), trailers: parseHeadText(`HTTP/1.1 000\r\n${rest}`).headers };
    }
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

function gunzipLayers(body: Buffer): Buffer[] {
  const layers: Buffer[] = [];
  let current = body;
  while (current.length > 2 && current[0] === 0x1f && current[1] === 0x8b && layers.length < 8) {
    try {
      current = zlib.gunzipSync(current);
    } catch {
      break;
    }
    layers.push(current);
  }
  return layers;
}

/** Parses the bytes of one exchange (1xx heads, the final head, its body read to the close). */
export function parseAgentView(raw: Buffer): AgentView {
  const informational: Head[] = [];
  let at = 0;
  for (;;) {
    const end = raw.indexOf("\r\n\r\n", at);
    const head = parseHeadText(raw.subarray(at, end === -1 ? raw.length : end).toString("latin1"));
    at = end === -1 ? raw.length : end + 4;
    if (head.status >= 100 && head.status < 200 && end !== -1) {
      informational.push(head);
      continue;
    }
    const rest = raw.subarray(at);
    const te = head.headers.find(([n]) => n.toLowerCase() === "transfer-encoding")?.[1] ?? "";
    const { body, trailers } = /chunked/i.test(te) ? dechunk(rest) : { body: rest, trailers: [] };
    return { raw, informational, final: head, body, trailers, unwrapped: gunzipLayers(body) };
  }
}

/** The value of the first header `name` of a head (case-insensitive). */
export function headerOf(head: Head, name: string): string | undefined {
  return head.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

/** Asserts that no form of any of `values` is anywhere in what the agent received. */
export function expectNoLeak(view: AgentView, values: string[], label: string): void {
  const texts = [view.raw, view.body, ...view.unwrapped].map((b) => b.toString("latin1"));
  const leaks = findLeaks(texts.join("\n"), values);
  expect(
    leaks,
    `${label}: the agent received ${leaks.join(", ")}:\n${view.raw.toString("latin1")}`,
  ).to.deep.equal([]);
}

/** Asserts the sidecar's own 502 for an unreadable upstream response on an inject path. */
export function expectUpstreamError(view: AgentView, label: string): void {
  expect(view.final.status, `${label}:\n${view.raw.toString("latin1")}`).to.equal(502);
  expect(headerOf(view.final, "x-airlock-decision")).to.equal("inject");
  expect(JSON.parse(view.body.toString("utf8"))).to.include({ error: "upstream_error" });
}

/** Collects every byte from `socket` until it ends (rejecting after `ms`). */
export function readToEnd(socket: net.Socket | tls.TLSSocket, ms = 8000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`no end of response within ${ms} ms; got:\n${Buffer.concat(chunks).toString("latin1")}`),
      );
    }, ms);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.on("error", () => undefined);
  });
}

/**
 * CONNECTs to host:port through the explicit proxy on `proxyPort`, handshakes TLS inside the
 * tunnel trusting `ca`, sends `request` (which should ask for Connection: close) and returns
 * every byte the agent received after the handshake.
 */
export async function connectExchange(
  proxyPort: number,
  target: { host: string; port: number; ca: string },
  request: string,
): Promise<Buffer> {
  const socket = net.connect({ host: "127.0.0.1", port: proxyPort });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const authority = `${target.host}:${target.port}`;
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const established = await new Promise<string>((resolve) => {
    let text = "";
    const onData = (c: Buffer): void => {
      text += c.toString("latin1");
      if (text.includes("\r\n\r\n")) {
        socket.off("data", onData);
        resolve(text);
      }
    };
    socket.on("data", onData);
    socket.once("close", () => {
      resolve(text);
    });
  });
  if (!/^HTTP\/1\.1 200/.test(established)) {
    socket.destroy();
    throw new Error(`CONNECT ${authority} was refused:\n${established}`);
  }
  const secure = tls.connect({ socket, servername: target.host, ca: target.ca });
  await new Promise<void>((resolve, reject) => {
    secure.once("secureConnect", resolve);
    secure.once("error", reject);
  });
  const done = readToEnd(secure);
  secure.write(request);
  return done;
}

/** A minimal request with Connection: close. */
export function rawRequest(method: string, host: string, path: string): string {
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: agent\r\nAccept: */*\r\nConnection: close\r\n\r\n`;
}
