// One POST the sidecar makes on its own behalf (a token endpoint, a decision hook): to the address
// it resolved and checked itself (the same address rules as any upstream), over TLS verified
// against the sidecar's roots for the URL's name, within a deadline, reading at most 64 KiB back.
import https from "node:https";
import { isIP } from "node:net";
import type { ResolveResult } from "./resolve.ts";

/** What a POST needs from the sidecar. */
export interface PostDeps {
  /** The sidecar's resolver with its address checks (Gate.resolve). */
  resolve: (host: string, port: number) => Promise<ResolveResult>;
  /** PEM roots the endpoint's certificate is verified against. */
  roots: string[];
}

/** The answer's status and body, or why there is none (never a secret). */
export type PostAnswer = { ok: true; status: number; body: string } | { ok: false; message: string };

/** Largest answer read. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** POSTs `body` to the https URL `target`; the whole exchange ends within `timeoutMs`. */
export async function post(
  deps: PostDeps,
  target: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<PostAnswer> {
  const url = new URL(target);
  const port = url.port === "" ? 443 : Number(url.port);
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const resolved = await deps.resolve(host, port);
  if (!resolved.ok) return { ok: false, message: resolved.message };
  const [address] = resolved.addresses;
  return new Promise((resolve) => {
    let settled = false;
    const settle = (answer: PostAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      resolve(answer);
    };
    const req = https.request(
      {
        host: address.address,
        family: address.family,
        port,
        method: "POST",
        path: `${url.pathname}${url.search}`,
        headers: { ...headers, host: url.host, "content-length": Buffer.byteLength(body) },
        ca: deps.roots,
        // An IP literal is verified as the address it is (TLS sends no SNI for it).
        ...(isIP(host) === 0 ? { servername: host } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy();
            settle({ ok: false, message: `its answer is over ${MAX_ANSWER_BYTES} bytes` });
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => {
          settle({ ok: true, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", () => {
          settle({ ok: false, message: "the answer was cut short" });
        });
      },
    );
    const deadline = setTimeout(() => {
      req.destroy();
      settle({ ok: false, message: `did not answer within ${timeoutMs} ms` });
    }, timeoutMs);
    req.on("error", (err: Error & { code?: string }) => {
      settle({ ok: false, message: `could not be reached (${err.code ?? err.message})` });
    });
    req.end(body);
  });
}
