// Test double of a sidecar's control port (sidecar/control/server.ts) as a small state machine: it
// holds the applied generation and hash, answers GET /v1/status, and answers POST /v1/bundle with
// an ACK (verifying the operator's signature) or, in a NACK mode, the chosen refusal. Each bundle
// it receives is appended to the shared write log, so pushes can be ordered against cluster writes.

import { randomBytes, type KeyObject } from "node:crypto";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { openBundle, type PushAnswer } from "../sidecar/control/bundle.ts";
import { CertificateAuthority } from "../sidecar/tls/ca.ts";
import type { WriteEvent } from "./test-memory-cluster.ts";

/** How the sidecar answers the next bundles. */
export type SidecarMode = "ACK" | "BadSignature" | "LoadFailed";

const ca = new CertificateAuthority();

/** A fake sidecar listening on `host` (a loopback address standing for the pod IP). */
export class FakeSidecar {
  mode: SidecarMode = "ACK";
  generation = 0;
  hash: string | null = null;
  /** Called as a bundle arrives, before it is answered (to look at the cluster at push time). */
  onPush: (() => void) | undefined;
  readonly bootId = randomBytes(8).toString("hex");
  readonly pod: string;
  readonly publicKey: KeyObject;
  readonly log: WriteEvent[];
  readonly #server: https.Server;

  private constructor(pod: string, publicKey: KeyObject, log: WriteEvent[]) {
    this.pod = pod;
    this.publicKey = publicKey;
    this.log = log;
    this.#server = https.createServer(ca.serverCredentials("control.airlock.internal"), (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body =
          req.method === "POST" ? this.#post(Buffer.concat(chunks).toString("utf8")) : this.#status();
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
      });
    });
  }

  /** Starts the sidecar of pod `pod` on `host:port` (port 0: any). */
  static async start(
    pod: string,
    host: string,
    port: number,
    publicKey: KeyObject,
    log: WriteEvent[],
  ): Promise<FakeSidecar> {
    const sidecar = new FakeSidecar(pod, publicKey, log);
    await new Promise<void>((resolve, reject) => {
      sidecar.#server.once("error", reject);
      sidecar.#server.listen(port, host, resolve);
    });
    return sidecar;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }

  #status(): unknown {
    return { bootId: this.bootId, generation: this.generation, hash: this.hash, ready: true };
  }

  #post(text: string): PushAnswer {
    this.log.push({ op: "push", kind: "Bundle", name: this.pod });
    this.onPush?.();
    const applied = { generation: this.generation, hash: this.hash };
    const opened = openBundle(JSON.parse(text) as unknown, this.publicKey);
    if (!opened.ok) return { result: "NACK", reason: opened.reason, message: opened.message, ...applied };
    if (this.mode === "BadSignature")
      return { result: "NACK", reason: "BadSignature", message: "signature does not verify", ...applied };
    if (this.mode === "LoadFailed") {
      const errors = [{ path: "policy", message: "cannot load" }];
      return { result: "NACK", reason: "LoadFailed", message: "bundle failed to load", errors, ...applied };
    }
    this.generation = opened.value.generation;
    this.hash = opened.value.policy.hash;
    return { result: "ACK", generation: this.generation, hash: this.hash };
  }
}
