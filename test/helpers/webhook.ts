// Test material for the admission webhook: a serving certificate with an IP SAN (kube-apiserver
// dials https://127.0.0.1:PORT and checks the IP), made by the openssl CLI like the control
// plane's own PKI; AdmissionReviews as the API server sends them; real HTTPS requests; and an
// RFC 6902 JSON Patch applier, so a test applies the webhook's patch itself.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InjectionConfig } from "../../operator/inject/types.ts";
import { startWebhookServer, type WebhookServer } from "../../operator/webhook/server.ts";

/** A test CA and a serving certificate it signed for 127.0.0.1 and localhost. */
export interface WebhookPki {
  caPem: string;
  cert: string;
  key: string;
}

/** Makes a fresh CA and a leaf for IP 127.0.0.1 / DNS localhost (ECDSA P-256, 1 day). */
export function makeWebhookPki(name = "airlock-webhook-test"): WebhookPki {
  const dir = mkdtempSync(join(tmpdir(), "airlock-webhook-pki-"));
  const openssl = (args: string[]): void => {
    try {
      execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        throw new Error("openssl is not installed; the webhook tests need it (apt-get install openssl)", {
          cause: err,
        });
      throw new Error(`openssl ${args.join(" ")}: ${String((err as { stderr?: Buffer }).stderr)}`, {
        cause: err,
      });
    }
  };
  try {
    writeFileSync(join(dir, "openssl.cnf"), "[req]\ndistinguished_name = dn\n[dn]\n");
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"];
    const req = ["req", "-config", "openssl.cnf", "-x509", ...ec];
    openssl([
      ...req,
      ...["-keyout", "ca.key", "-out", "ca.crt", "-subj", `/CN=${name}-ca`],
      ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
    ]);
    openssl([
      ...req,
      ...[
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-keyout",
        "tls.key",
        "-out",
        "tls.crt",
        "-subj",
        `/CN=${name}`,
      ],
      ...["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "keyUsage=critical,digitalSignature"],
      ...["-addext", "extendedKeyUsage=serverAuth", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
    ]);
    const read = (file: string): string => readFileSync(join(dir, file), "utf8");
    return { caPem: read("ca.crt"), cert: read("tls.crt"), key: read("tls.key") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An InjectionConfig with a fresh bundle public key. */
export function testInjectionConfig(): InjectionConfig {
  const { publicKey } = generateKeyPairSync("ed25519");
  return {
    image: "registry.example.test/airlock:0.1.0",
    bundlePublicKeys: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** What varies between reviews; the rest is filled in as kube-apiserver does. */
export interface ReviewInput {
  uid?: string;
  operation: "CREATE" | "UPDATE" | "DELETE";
  group?: string;
  version?: string;
  resource: string;
  subResource?: string;
  kind?: string;
  namespace: string;
  name?: string;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

/** An AdmissionReview v1 request. */
export function admissionReview(input: ReviewInput): Record<string, unknown> {
  const resource = { group: input.group ?? "", version: input.version ?? "v1", resource: input.resource };
  const kind = { group: resource.group, version: resource.version, kind: input.kind ?? "Pod" };
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: input.uid ?? "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind,
      resource,
      ...(input.subResource === undefined ? {} : { subResource: input.subResource }),
      requestKind: kind,
      requestResource: resource,
      name: input.name ?? "",
      namespace: input.namespace,
      operation: input.operation,
      userInfo: { username: "airlock-admin", groups: ["system:masters", "system:authenticated"] },
      object: input.object ?? null,
      oldObject: input.oldObject ?? null,
      dryRun: input.dryRun ?? false,
      options: null,
    },
  };
}

/** An HTTP answer: status, content type and the body (parsed when it is JSON). */
export interface HttpAnswer {
  status: number;
  contentType: string;
  body: unknown;
}

/** Sends `body` to https://127.0.0.1:PORT`path` trusting only `caPem`; rejects on a TLS or socket error. */
export function httpsCall(
  port: number,
  path: string,
  caPem: string,
  body?: string | Buffer,
  method = body === undefined ? "GET" : "POST",
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method,
        ca: caPem,
        agent: false,
        headers: body === undefined ? {} : { "content-type": "application/json" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const contentType = res.headers["content-type"] ?? "";
          let parsed: unknown = text;
          if (contentType.startsWith("application/json")) parsed = JSON.parse(text);
          resolve({ status: res.statusCode ?? 0, contentType, body: parsed });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

type Json = Record<string, unknown>;

function unescape(token: string): string {
  return token.replaceAll("~1", "/").replaceAll("~0", "~");
}

/** Applies an RFC 6902 patch of add/replace/remove operations to a copy of `doc`; throws on a bad path. */
export function applyJsonPatch(doc: Json, operations: unknown): Json {
  if (!Array.isArray(operations)) throw new Error("a JSON Patch is an array");
  const out = structuredClone(doc);
  for (const operation of operations as { op: string; path: string; value?: unknown }[]) {
    const tokens = operation.path.split("/").slice(1).map(unescape);
    const last = tokens.pop();
    if (last === undefined) throw new Error(`bad path ${operation.path}`);
    let parent: unknown = out;
    for (const token of tokens) {
      const next: unknown = Array.isArray(parent) ? parent[Number(token)] : (parent as Json)[token];
      if (typeof next !== "object" || next === null) throw new Error(`no parent for ${operation.path}`);
      parent = next;
    }
    if (Array.isArray(parent)) {
      const index = last === "-" ? parent.length : Number(last);
      if (operation.op === "add") parent.splice(index, 0, operation.value);
      else if (operation.op === "replace") parent[index] = operation.value;
      else if (operation.op === "remove") parent.splice(index, 1);
      else throw new Error(`unsupported op ${operation.op}`);
      continue;
    }
    const record = parent as Json;
    if (operation.op === "add") record[last] = operation.value;
    else if (operation.op === "replace") {
      if (!Object.hasOwn(record, last)) throw new Error(`replace of a missing member ${operation.path}`);
      record[last] = operation.value;
    } else if (operation.op === "remove") {
      if (!Object.hasOwn(record, last)) throw new Error(`remove of a missing member ${operation.path}`);
      Reflect.deleteProperty(record, last);
    } else throw new Error(`unsupported op ${operation.op}`);
  }
  return out;
}

/** A webhook server on 127.0.0.1 with a fresh PKI and injection config (webhookUnderTest). */
export interface WebhookUnderTest {
  readonly pki: WebhookPki;
  readonly config: InjectionConfig;
  readonly server: WebhookServer;
  /** httpsCall to the server, trusting its CA. */
  readonly call: (path: string, body?: string | Buffer) => Promise<HttpAnswer>;
}

/**
 * Registers before()/after() hooks, in the calling describe(), that start a webhook server
 * (makeWebhookPki, testInjectionConfig) and close it; the fields are set once before() ran.
 */
export function webhookUnderTest(): WebhookUnderTest {
  let started: { pki: WebhookPki; config: InjectionConfig; server: WebhookServer } | undefined;
  const get = (): NonNullable<typeof started> => {
    if (started === undefined) throw new Error("the webhook server is not started yet (before())");
    return started;
  };
  before(async function () {
    const pki = makeWebhookPki();
    const config = testInjectionConfig();
    const server = await startWebhookServer({
      listen: { host: "127.0.0.1", port: 0 },
      tls: { cert: pki.cert, key: pki.key },
      injection: config,
    });
    started = { pki, config, server };
  });
  after(async function () {
    await started?.server.close();
  });
  return {
    get pki() {
      return get().pki;
    },
    get config() {
      return get().config;
    },
    get server() {
      return get().server;
    },
    call: (path, body) => httpsCall(get().server.port, path, get().pki.caPem, body),
  };
}
