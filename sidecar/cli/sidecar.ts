// `airlock sidecar`: the in-pod role. The transparent listener (target of airlock init's capture
// rules) next to the explicit proxy, the trust bundle for the agent, policies from files until the
// operator pushes them.
import { parseArgs } from "node:util";
import { PORTS, SIDECAR_UID, TRUST_BUNDLE_PATH } from "../constants.ts";
import { FILE_SIDECAR_OPTIONS, serveFromFiles } from "./serve.ts";

export const SIDECAR_USAGE = `usage: airlock sidecar [--policy PATH]... [--transparent HOST:PORT] [--listen HOST:PORT]
                       [--metrics HOST:PORT] [--trust-bundle PATH] [--upstream-ca PEM]...
                       [--upstream-ca-env NAME] [--ca-out PEM] [--resolve HOST:IP]...
                       [--allow-address CIDR]... [--control HOST:PORT (--bundle-key PATH | --bundle-key-env NAME)]

Runs in the agent's pod as UID ${String(SIDECAR_UID)}. Without --policy it blocks everything (NoPolicyLoaded)
and /readyz answers 503 until a policy is applied.
  --transparent HOST:PORT  target of the capture rules (default 0.0.0.0:${PORTS.transparent})
  --dns HOST:PORT          DNS responder, UDP and TCP (default 127.0.0.1:${PORTS.dns})
  --control HOST:PORT      where the operator pushes signed bundles (default 0.0.0.0:${PORTS.control});
                           served only with --bundle-key or --bundle-key-env
  --kubeconfig PATH        read credentials from the Kubernetes API with this kubeconfig (in a pod:
                           the projected service-account token, automatically)
  --bundle-key PATH        the operator's Ed25519 public key(s) (PEM; several concatenated during a
                           key rotation: a bundle signed by any of them is accepted); others are refused
  --bundle-key-env NAME    the same PEM read from environment variable NAME instead of a file (the
                           webhook sets AIRLOCK_BUNDLE_KEYS); not with --bundle-key
  --upstream-ca-env NAME   more upstream roots (PEM) from environment variable NAME (the webhook
                           sets AIRLOCK_UPSTREAM_CA from the operator's --upstream-ca)
  --listen HOST:PORT       explicit proxy for HTTP_PROXY/HTTPS_PROXY (default 127.0.0.1:${PORTS.explicit})
  --metrics HOST:PORT      /metrics, /healthz, /readyz (default 0.0.0.0:${PORTS.metrics})
  --trust-bundle PATH      where to write the agent's trust bundle, mode 0644, replaced atomically:
                           system roots + every upstream root + the interception CA
                           (default ${TRUST_BUNDLE_PATH})
  --pod, --namespace, --service-account   identity stamped on audit lines
                           (default: env POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT)
The policy, resolve, address and CA flags are those of airlock run.`;

/** Serves until SIGINT/SIGTERM; exit 2 on invalid input. */
export async function sidecarCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...FILE_SIDECAR_OPTIONS,
      transparent: { type: "string", default: `0.0.0.0:${PORTS.transparent}` },
      dns: { type: "string", default: `127.0.0.1:${PORTS.dns}` },
      control: { type: "string", default: `0.0.0.0:${PORTS.control}` },
      "bundle-key": { type: "string" },
      "bundle-key-env": { type: "string" },
      "upstream-ca-env": { type: "string" },
      kubeconfig: { type: "string" },
      listen: { type: "string", default: `127.0.0.1:${PORTS.explicit}` },
      metrics: { type: "string", default: `0.0.0.0:${PORTS.metrics}` },
      "trust-bundle": { type: "string", default: TRUST_BUNDLE_PATH },
      pod: { type: "string", default: process.env.POD_NAME },
      namespace: { type: "string", default: process.env.POD_NAMESPACE },
      "service-account": { type: "string", default: process.env.SERVICE_ACCOUNT },
    },
    strict: true,
  });
  const identity = {
    ...(values.pod !== undefined ? { pod: values.pod } : {}),
    ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
    ...(values["service-account"] !== undefined ? { serviceAccount: values["service-account"] } : {}),
  };
  return serveFromFiles({
    ...values,
    trustBundle: values["trust-bundle"],
    bundleKey: values["bundle-key"],
    bundleKeyEnv: values["bundle-key-env"],
    upstreamCaEnv: values["upstream-ca-env"],
    inCluster: true,
    identity,
  });
}
