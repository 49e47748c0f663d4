// An AdmissionReview sent to the webhook server the way the API server sends it, for tests that
// check what the injection carries (operator-bootstrap.test.ts).
import { request } from "node:https";

/**
 * Sends a Pod CREATE review for `namespace` to the webhook on 127.0.0.1:`port`, as the API server
 * would reach Service airlock-webhook of `operatorNamespace`, trusting only `caPem` (a fresh TLS
 * handshake each time); resolves with the AIRLOCK_BUNDLE_KEYS value the injection patch sets.
 */
export function admitPod(
  port: number,
  operatorNamespace: string,
  namespace: string,
  caPem: string,
): Promise<string> {
  const review = {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "6b1a6a6e-0000-4000-8000-000000000001",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace,
      operation: "CREATE",
      userInfo: { username: "test" },
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "p", namespace },
        spec: { containers: [{ name: "agent", image: "example.invalid/agent" }] },
      },
    },
  };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/inject",
        method: "POST",
        ca: caPem,
        servername: `airlock-webhook.${operatorNamespace}.svc`,
        agent: false, // a fresh TLS handshake each time: a pooled connection would keep the old certificate
        headers: { "content-type": "application/json" },
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString("utf8")));
        res.on("end", () => {
          const patch = (JSON.parse(body) as { response?: { patch?: string } }).response?.patch ?? "";
          const text = Buffer.from(patch, "base64").toString("utf8");
          const found = /"name":"AIRLOCK_BUNDLE_KEYS","value":("(?:[^"\\]|\\.)*")/.exec(text)?.[1];
          if (found === undefined)
            reject(new Error(`no AIRLOCK_BUNDLE_KEYS in the patch: ${body.slice(0, 300)}`));
          else resolve(JSON.parse(found) as string);
        });
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(review));
  });
}
