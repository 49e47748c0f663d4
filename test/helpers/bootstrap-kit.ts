// What test/operator-bootstrap.test.ts reads and writes on its dedicated control plane, bound to
// that control plane (got lazily: it starts in the file's before()) and the operator's namespace.
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { canary } from "./canary.ts";
import type { ControlPlane } from "./control-plane.ts";
import { eventually as poll } from "./eventually.ts";

/** The fields of a stored Pod the tests look at. */
export interface StoredPod {
  metadata: { annotations?: Record<string, string> };
  spec: {
    containers: { name: string }[];
    initContainers?: { name: string; env?: { name: string; value?: string }[] }[];
  };
}

/** One webhook of a stored Mutating/ValidatingWebhookConfiguration. */
export interface StoredWebhook {
  name: string;
  timeoutSeconds: number;
  clientConfig: { caBundle?: string; url?: string };
}

/**
 * Helpers for control plane `getCp()`: `namespace` is the operator's (its Secrets), `agents` the
 * default namespace of policies.
 */
export function bootstrapKit(getCp: () => ControlPlane, namespace: string, agents: string) {
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const res = await getCp().kubectl(args, input === undefined ? {} : { input });
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    return res.stdout;
  };
  /** Polls `read` (helpers/eventually.ts) until `ok`; fails with the last value after `ms`. */
  const eventually = async <T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> =>
    poll(
      async () => {
        const last = await read();
        expect(ok(last), `last seen: ${JSON.stringify(last)}`).to.equal(true);
        return last;
      },
      { timeoutMs: ms },
    );
  /** A Secret of the operator's namespace, decoded, plus its `type`; private keys go to the canary. */
  const secretData = async (name: string): Promise<Record<string, string>> => {
    const json = JSON.parse(await kubectl(["-n", namespace, "get", "secret", name, "-o", "json"])) as {
      data: Record<string, string>;
      type: string;
    };
    const data = Object.fromEntries(
      Object.entries(json.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
    );
    for (const [k, v] of Object.entries(data))
      if (k.includes("private") || k === "tls.key") canary.secret(v, k);
    return { ...data, type: json.type };
  };
  const secretMissing = async (name: string): Promise<boolean> =>
    (await getCp().kubectl(["-n", namespace, "get", "secret", name])).code !== 0;
  const storedPod = async (ns: string, name: string): Promise<StoredPod> =>
    JSON.parse(await kubectl(["-n", ns, "get", "pod", name, "-o", "json"])) as StoredPod;
  const policy = (name: string, app: string, host: string, ns = agents) => ({
    apiVersion: "airlock.dev/v1alpha1",
    kind: "EgressPolicy",
    metadata: { name, namespace: ns },
    spec: { podSelector: { matchLabels: { app } }, egress: [{ name: "docs", hosts: [host] }] },
  });
  /** A field (`reason`, `message`) of an EgressPolicy's Ready condition. */
  const readyReason = (name: string, ns = agents, field = "reason"): Promise<string> =>
    kubectl([
      ...["-n", ns, "get", "egresspolicy", name, "-o"],
      `jsonpath={.status.conditions[?(@.type=="Ready")].${field}}`,
    ]);
  const webhooksOf = async (kind: string, name: string): Promise<StoredWebhook[]> =>
    (JSON.parse(await kubectl(["get", kind, name, "-o", "json"])) as { webhooks: StoredWebhook[] }).webhooks;
  /** Whether `airlock-injector` routes to `url` (`https://IP:PORT`), trusting a CA whose certificate covers IP. */
  const injectorAt = async (url: string): Promise<boolean> => {
    const tls = await secretData("airlock-webhook-tls");
    const [hook] = await webhooksOf("mutatingwebhookconfiguration", "airlock-injector").catch(() => []);
    const covers = new X509Certificate(tls["tls.crt"] ?? "").checkIP(new URL(url).hostname) !== undefined;
    const caBundle = Buffer.from(tls["ca.crt"] ?? "").toString("base64");
    return covers && hook?.clientConfig.url === `${url}/inject` && hook.clientConfig.caBundle === caBundle;
  };
  return {
    injectorAt,
    kubectl,
    eventually,
    secretData,
    secretMissing,
    storedPod,
    policy,
    readyReason,
    webhooksOf,
  };
}

/**
 * A configuration named like the operator's but owned by Helm: webhook "ours" routes to the
 * operator's Service, "theirs" elsewhere. Both match ConfigMaps in no namespace (failurePolicy
 * Ignore): they never take part in admission.
 */
export function foreignWebhookConfig(kind: string, name: string, namespace: string) {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind,
    metadata: { name, labels: { "app.kubernetes.io/managed-by": "Helm" } },
    webhooks: ["ours", "theirs"].map((hook) => ({
      name: `${hook}.example.test`,
      clientConfig:
        hook === "ours"
          ? { service: { namespace, name: "airlock-webhook", path: "/x" } }
          : { url: "https://theirs.example.test/x", caBundle: Buffer.from("theirs").toString("base64") },
      rules: [{ apiGroups: [""], apiVersions: ["v1"], resources: ["configmaps"], operations: ["CREATE"] }],
      namespaceSelector: { matchLabels: { "never-matches": "true" } },
      admissionReviewVersions: ["v1"],
      sideEffects: "None",
      failurePolicy: "Ignore",
      timeoutSeconds: 7,
    })),
  };
}
