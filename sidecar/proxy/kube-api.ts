// The little of the Kubernetes API the sidecar needs: read, replace and watch one Secret by name,
// with the sidecar's own credentials (in a pod: its projected service-account token). Written on
// node:https rather than @kubernetes/client-node because loading that library's generated client
// costs every injected sidecar ~32 MiB of resident memory at idle (docs/decisions.md,
// "The sidecar's Kubernetes client"); the operator keeps the library.
import { readFileSync } from "node:fs";
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders, RequestOptions, Agent } from "node:http";
import https from "node:https";
import { dirname, isAbsolute, join } from "node:path";
import { load } from "js-yaml";
import { TOKEN_DIR } from "../constants.ts";
import { http } from "../process/http.ts";
import { followWatch, KubeApiError, MAX_EVENT_BYTES } from "../process/watch-lines.ts";

export { KubeApiError };

/** How to reach the API server and who to be there. */
export interface KubeApiConfig {
  server: URL;
  /** PEM roots for the server's certificate; the system's when absent. */
  ca?: Buffer;
  insecureSkipTlsVerify?: boolean;
  /** The name checked against the server's certificate, when not the server's host. */
  servername?: string;
  cert?: Buffer;
  key?: Buffer;
  /** The bearer token, read anew for each request (projected tokens are rotated on disk). */
  token?: () => string;
}

/** The config of a pod's own service account: KUBERNETES_SERVICE_HOST/PORT and TOKEN_DIR. */
export function inClusterConfig(env: NodeJS.ProcessEnv = process.env, dir = TOKEN_DIR): KubeApiConfig {
  const host = env["KUBERNETES_SERVICE_HOST"];
  const port = env["KUBERNETES_SERVICE_PORT"];
  if (host === undefined || port === undefined)
    throw new Error(
      "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod?)",
    );
  const tokenPath = join(dir, "token");
  const caPath = join(dir, "ca.crt");
  let ca: Buffer;
  try {
    ca = readFileSync(caPath);
  } catch (err) {
    throw new Error(
      `in-cluster: cannot read the API server's CA at ${caPath} (${(err as NodeJS.ErrnoException).code ?? "error"}); is the service-account token volume mounted?`,
      { cause: err },
    );
  }
  return {
    server: new URL(`https://${host.includes(":") ? `[${host}]` : host}:${port}`),
    ca,
    token: () => readTokenFile(tokenPath, "in-cluster"),
  };
}

/**
 * The current context of the kubeconfig at `path`: its cluster's server and CA, and its user's
 * token, token file or client certificate. Relative file names are taken from the kubeconfig's
 * folder, as kubectl does. Credentials that run programs (exec, auth-provider) are refused.
 */
export function kubeconfigFromFile(path: string): KubeApiConfig {
  const where = `kubeconfig ${path}`;
  let doc: unknown;
  try {
    doc = load(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message.split("\n")[0] ?? "unreadable"}`, { cause: err });
  }
  const root = record(doc);
  const current = root["current-context"];
  if (typeof current !== "string" || current === "")
    throw new Error(`${where}: no current-context; set one (kubectl config use-context NAME)`);
  const context = named(root["contexts"], current, "context", where);
  const clusterName = context["cluster"];
  const userName = context["user"];
  if (typeof clusterName !== "string") throw new Error(`${where}: context ${current} names no cluster`);
  const cluster = named(root["clusters"], clusterName, "cluster", where);
  const user = typeof userName === "string" ? named(root["users"], userName, "user", where) : {};
  const file = (name: unknown): string | undefined =>
    typeof name === "string" && name !== ""
      ? isAbsolute(name)
        ? name
        : join(dirname(path), name)
      : undefined;
  const bytes = (data: unknown, fileName: unknown, field: string): Buffer | undefined => {
    if (typeof data === "string" && data !== "") return Buffer.from(data, "base64");
    const at = file(fileName);
    if (at === undefined) return undefined;
    try {
      return readFileSync(at);
    } catch (err) {
      throw new Error(`${where}: ${field} ${at}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`, {
        cause: err,
      });
    }
  };

  const server = cluster["server"];
  if (typeof server !== "string" || server === "")
    throw new Error(`${where}: cluster ${clusterName} has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`${where}: cluster ${clusterName}: server ${server} is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new Error(`${where}: cluster ${clusterName}: server ${server} is not http(s)`);
  if (cluster["proxy-url"] !== undefined)
    throw new Error(`${where}: cluster ${clusterName}: proxy-url is not supported by the sidecar`);
  for (const unsupported of ["exec", "auth-provider", "username", "password", "as"])
    if (user[unsupported] !== undefined)
      throw new Error(
        `${where}: user ${String(userName)}: ${unsupported} is not supported by the sidecar; give it a token, a tokenFile or a client certificate`,
      );

  const config: KubeApiConfig = { server: url };
  const ca = bytes(
    cluster["certificate-authority-data"],
    cluster["certificate-authority"],
    "certificate-authority",
  );
  if (ca) config.ca = ca;
  if (cluster["insecure-skip-tls-verify"] === true) config.insecureSkipTlsVerify = true;
  if (typeof cluster["tls-server-name"] === "string") config.servername = cluster["tls-server-name"];
  const cert = bytes(user["client-certificate-data"], user["client-certificate"], "client-certificate");
  const key = bytes(user["client-key-data"], user["client-key"], "client-key");
  if ((cert === undefined) !== (key === undefined))
    throw new Error(`${where}: user ${String(userName)} has a client certificate or key without the other`);
  if (cert && key) {
    config.cert = cert;
    config.key = key;
  }
  const token = user["token"];
  const tokenFile = file(user["tokenFile"]);
  if (typeof token === "string" && token !== "") config.token = () => token;
  else if (tokenFile !== undefined) config.token = () => readTokenFile(tokenFile, where);
  return config;
}

function readTokenFile(path: string, where: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new KubeApiError(
      0,
      `${where}: cannot read the token at ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      { cause: err },
    );
  }
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/** The `what` named `name` in a kubeconfig list ({name, <what>: {...}}). */
function named(list: unknown, name: string, what: string, where: string): Record<string, unknown> {
  const entry = (Array.isArray(list) ? list : []).map(record).find((e) => e["name"] === name);
  if (!entry) throw new Error(`${where}: no ${what} named ${name}`);
  return record(entry[what]);
}

/** A plain request that has not been answered in this long fails. */
const REQUEST_TIMEOUT_MS = 30_000;

/** How long watches last. */
export interface KubeApiOptions {
  /** The server is asked to end each watch after this long, plus up to a fifth more (jitter); default 300. */
  watchSeconds?: number;
  /** A watch the server has not ended this long after it should have is given up; default 60. */
  graceSeconds?: number;
}

/** A watch in progress; abort() ends it without calling its done callback. */
export interface WatchHandle {
  abort(): void;
}

/** Requests to one API server over kept-alive connections. */
export class KubeApi {
  readonly #config: KubeApiConfig;
  readonly #agent: Agent;
  readonly #watchSeconds: number;
  readonly #graceSeconds: number;

  /** No cap on connections: each watch holds one for minutes, and a read must never queue behind them. */
  constructor(config: KubeApiConfig, options: KubeApiOptions = {}) {
    this.#config = config;
    this.#watchSeconds = options.watchSeconds ?? 300;
    this.#graceSeconds = options.graceSeconds ?? 60;
    const tls = config.server.protocol === "https:";
    this.#agent = tls
      ? new https.Agent({
          keepAlive: true,
          ...(config.ca ? { ca: config.ca } : {}),
          ...(config.cert && config.key ? { cert: config.cert, key: config.key } : {}),
          ...(config.servername !== undefined ? { servername: config.servername } : {}),
          rejectUnauthorized: config.insecureSkipTlsVerify !== true,
        })
      : new http.Agent({ keepAlive: true });
  }

  /** Sends `method path` (with `body` as JSON) and resolves with the answer's JSON; KubeApiError otherwise. */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      let req: ClientRequest;
      try {
        req = this.#send(method, path, payload);
      } catch (err) {
        reject(err instanceof Error ? err : new KubeApiError(0, String(err)));
        return;
      }
      req.setTimeout(REQUEST_TIMEOUT_MS, () => {
        req.destroy(new KubeApiError(0, `${method} ${path}: no answer in ${REQUEST_TIMEOUT_MS / 1000} s`));
      });
      req.on("error", (err) => {
        reject(err instanceof KubeApiError ? err : new KubeApiError(0, `${method} ${path}: ${err.message}`));
      });
      req.on("response", (res) => {
        readBody(res)
          .then((text) => {
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299) {
              reject(new KubeApiError(status, `${method} ${path}: ${statusMessage(status, text)}`));
              return;
            }
            try {
              resolve(JSON.parse(text) as unknown);
            } catch {
              // Not V8's message: it quotes the text, which may be a Secret's data.
              reject(new KubeApiError(status, `${method} ${path}: an answer that is not JSON`));
            }
          })
          .catch((err: unknown) => {
            reject(
              err instanceof KubeApiError ? err : new KubeApiError(0, `${method} ${path}: ${String(err)}`),
            );
          });
      });
      req.end(payload);
    });
  }

  /**
   * Watches `path` (a collection) with `query` (e.g. a fieldSelector): `onEvent` gets each event's
   * type and object, `done` is called once, with null when the server ended the watch and an
   * error otherwise (an ERROR event, a status other than 200, a broken or stalled connection).
   */
  watch(
    path: string,
    query: Record<string, string>,
    onEvent: (type: string, object: unknown) => void,
    done: (err: Error | null) => void,
  ): WatchHandle {
    let finished = false;
    let req: ClientRequest | undefined;
    const seconds = this.#watchSeconds + Math.floor((Math.random() * this.#watchSeconds) / 5);
    const limit = seconds + this.#graceSeconds;
    const finish = (err: Error | null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(stall);
      req?.destroy();
      done(err);
    };
    // The server ends the watch at `seconds`; a connection silent well past that is dead.
    const stall = setTimeout(() => {
      finish(new KubeApiError(0, `watch ${path}: not ended by the server after ${String(limit)} s`));
    }, limit * 1000);
    stall.unref();
    const params = new URLSearchParams({ ...query, watch: "true", timeoutSeconds: String(seconds) });
    try {
      req = this.#send("GET", `${path}?${params.toString()}`, undefined);
    } catch (err) {
      setImmediate(() => {
        finish(err as Error);
      });
      return {
        abort: () => {
          finished = true;
          clearTimeout(stall);
        },
      };
    }
    req.on("error", (err) => {
      finish(err instanceof KubeApiError ? err : new KubeApiError(0, `watch ${path}: ${err.message}`));
    });
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        followWatch(res, path, onEvent, finish, () => finished);
        return;
      }
      readBody(res).then(
        (text) => {
          finish(new KubeApiError(status, `watch ${path}: ${statusMessage(status, text)}`));
        },
        (err: unknown) => {
          finish(err as Error);
        },
      );
    });
    req.end();
    const sent = req;
    return {
      abort: () => {
        finished = true;
        clearTimeout(stall);
        sent.destroy();
      },
    };
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }

  #send(method: string, path: string, payload: Buffer | undefined): ClientRequest {
    const headers: OutgoingHttpHeaders = { accept: "application/json" };
    const token = this.#config.token?.();
    if (token !== undefined && token !== "") headers["authorization"] = `Bearer ${token}`;
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = payload.length;
    }
    const base = this.#config.server;
    const prefix = base.pathname.replace(/\/+$/, "");
    const options: RequestOptions = {
      method,
      host: base.hostname.replace(/^\[|\]$/g, ""),
      port: base.port === "" ? (base.protocol === "https:" ? 443 : 80) : Number(base.port),
      path: prefix + path,
      headers,
      agent: this.#agent,
    };
    return base.protocol === "https:" ? https.request(options) : http.request(options);
  }
}

/** The body of `res` as text, at most MAX_EVENT_BYTES. */
function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_EVENT_BYTES) {
        res.destroy();
        reject(new KubeApiError(0, `an answer longer than ${MAX_EVENT_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on("end", () => {
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    res.on("error", reject);
  });
}

/** A failed answer's Status message (never a Secret's data: a Status carries none), or its code. */
function statusMessage(status: number, text: string): string {
  try {
    const message = record(JSON.parse(text))["message"];
    if (typeof message === "string") return `${String(status)} ${message}`;
  } catch {
    // not a Status
  }
  return `${String(status)} ${http.STATUS_CODES[status] ?? ""}`.trim();
}
