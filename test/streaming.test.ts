// Streamed responses on the credential path (issue: server-sent events held back): an upstream
// that sends one server-sent event every 100 ms, reached by real curl through the explicit proxy
// with a credential injected. The agent must see each event before the upstream sends the next,
// and a reflection of the credential split across events must still be scrubbed.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { startEchoUpstream, type EchoUpstream } from "../sidecar/demo/echo-upstream.ts";
import { pemBundle } from "./helpers/curl.ts";
import { credential, policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

const SECRET = "sse-Token-7f3a9c1e5b";
const EVENTS = 5;
const INTERVAL_MS = 100;

/** When the upstream wrote each event (ms, performance.now()). */
let sentAt: number[] = [];

describe("streaming through the credential path: server-sent events are not held back", function () {
  let up: EchoUpstream;
  let sidecar: TestSidecar;
  let bundle: string;

  before(async function () {
    up = await startEchoUpstream({
      tls: true,
      respond: (req, res) => {
        const path = new URL(req.url, "https://x").pathname;
        if (path !== "/events" && path !== "/split") return false;
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        res.flushHeaders();
        sentAt = [];
        const auth = String(req.headers.authorization);
        let n = 0;
        const tick = (): void => {
          if (n === EVENTS) {
            res.end();
            return;
          }
          // /split reflects the credential cut in two across consecutive events' writes.
          const half = Math.floor(auth.length / 2);
          const data =
            path === "/split" ? (n === 1 ? auth.slice(0, half) : n === 2 ? auth.slice(half) : "") : "";
          res.write(path === "/split" ? data : `id: ${String(n)}\ndata: event ${String(n)}\n\n`);
          sentAt.push(performance.now());
          n++;
          setTimeout(tick, INTERVAL_MS);
        };
        tick();
        return true;
      },
    });
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [{ name: "sse", hosts: ["sse.example.test"], ports: [up.port], credential: "sse" }]),
      ],
      credentials: [
        credential("sse", "tokens", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
      ],
      secrets: [secret("agents", "tokens", { token: SECRET })],
      pins: { "sse.example.test": "127.0.0.1" },
      upstreamCa: [up.caPem],
    });
    bundle = pemBundle(sidecar.ca.certificatePem);
  });
  after(async function () {
    await sidecar.close();
    await up.close();
  });

  /** Runs curl -N (no buffering) and notes when each chunk of its output arrived. */
  function stream(
    path: string,
  ): Promise<{ chunks: { at: number; text: string }[]; code: number; stderr: string }> {
    return new Promise((resolve, reject) => {
      const url = `https://sse.example.test:${String(up.port)}${path}`;
      const child = spawn("curl", [
        "-sS",
        "-N",
        "--max-time",
        "10",
        "-x",
        sidecar.proxyUrl,
        "--cacert",
        bundle,
        url,
      ]);
      const chunks: { at: number; text: string }[] = [];
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) =>
        chunks.push({ at: performance.now(), text: chunk.toString() }),
      );
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("error", (err) => {
        reject(new Error(`curl is needed for this test (apt-get install curl): ${err.message}`));
      });
      child.on("close", (code) => {
        resolve({ chunks, code: code ?? 1, stderr });
      });
    });
  }

  it("each event reaches the agent before the upstream sends the next one (curl -N, credential injected)", async function () {
    const { chunks, code, stderr } = await stream("/events");
    expect(code, stderr).to.equal(0);
    expect(up.received.at(-1)?.headers.authorization).to.equal(`Bearer ${SECRET}`);
    // When the agent had each whole event: the first chunk after which the text holds it.
    const arrivedAt = (event: string): number | undefined => {
      let text = "";
      for (const chunk of chunks) {
        text += chunk.text;
        if (text.includes(event)) return chunk.at;
      }
      return undefined;
    };
    for (let n = 0; n < EVENTS - 1; n++) {
      const at = arrivedAt(`data: event ${String(n)}\n\n`);
      expect(at, `event ${String(n)} arrived`).to.not.equal(undefined);
      expect(at, `event ${String(n)} before event ${String(n + 1)} was sent`).to.be.below(
        sentAt[n + 1] as number,
      );
    }
  });

  it("a credential reflected in two halves across streamed writes is still scrubbed", async function () {
    const { chunks, code, stderr } = await stream("/split");
    expect(code, stderr).to.equal(0);
    const text = chunks.map((c) => c.text).join("");
    expect(text).not.to.include(SECRET);
    expect(text).to.include("[airlock:redacted]");
  });
});
