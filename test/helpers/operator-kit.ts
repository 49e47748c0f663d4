// What the operator tests against a control plane share (operator.test.ts,
// security/faults-operator.test.ts): polling for an expected value, kubectl that throws, and a
// namespace prepared for an operator and its agents (ServiceAccounts, RBAC, kubeconfigs, keys).
import type { KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAgentNamespace, type AgentPodWorld } from "./agent-pods.ts";
import { ROOT } from "./cli.ts";
import { writeTokenKubeconfig, type ControlPlane } from "./control-plane.ts";
import { eventuallyEqual as eventuallyEqualTo } from "./eventually.ts";

/** Polls `probe` until it deep-equals `want` (helpers/eventually.ts); fails with the last value after `ms`. */
export async function eventuallyEqual<T>(probe: () => Promise<T>, want: unknown, ms = 20_000): Promise<void> {
  await eventuallyEqualTo(probe, want, { timeoutMs: ms });
}

/** kubectl against the control plane `cp()` (read when called), throwing on a non-zero exit. */
export interface Kubectl {
  kubectl: (args: string[], input?: string) => Promise<string>;
  /** `kubectl apply -f -` of `obj` as JSON. */
  apply: (obj: unknown) => Promise<string>;
}

/** kubectl and apply for the control plane `cp()` returns when they are called. */
export function kubectlFor(cp: () => ControlPlane): Kubectl {
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const res = await cp().kubectl(args, input === undefined ? {} : { input });
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
    return res.stdout;
  };
  return { kubectl, apply: (obj) => kubectl(["apply", "-f", "-"], JSON.stringify(obj)) };
}

/** The files an operator test writes in its scratch folder. */
export interface OperatorFiles {
  signingKey: string;
  bundleKey: string;
  upstreamCa: string;
  operatorKubeconfig: string;
  agentKubeconfig: string;
}

/** The OperatorFiles paths in `dir`. */
export function operatorFiles(dir: string): OperatorFiles {
  return {
    signingKey: join(dir, "signing-key.pem"),
    bundleKey: join(dir, "bundle-key.pem"),
    upstreamCa: join(dir, "upstream-ca.pem"),
    operatorKubeconfig: join(dir, "operator.kubeconfig"),
    agentKubeconfig: join(dir, "agent.kubeconfig"),
  };
}

/**
 * Creates `ns` for an operator and its agents (createAgentNamespace with
 * operator/rbac/clusterrole.yaml), writes both ServiceAccounts' kubeconfigs, the signing key
 * (0600) and its public bundle key to `files`.
 */
export async function prepareOperatorNamespace(
  cp: ControlPlane,
  ns: string,
  files: OperatorFiles,
  keys: { privateKey: KeyObject; publicKey: KeyObject },
): Promise<void> {
  const tokens = await createAgentNamespace(cp, ns, join(ROOT, "operator/rbac/clusterrole.yaml"));
  writeTokenKubeconfig(cp, files.operatorKubeconfig, tokens.operatorToken);
  writeTokenKubeconfig(cp, files.agentKubeconfig, tokens.agentToken);
  writeFileSync(files.signingKey, keys.privateKey.export({ type: "pkcs8", format: "pem" }), {
    mode: 0o600,
  });
  writeFileSync(files.bundleKey, keys.publicKey.export({ type: "spki", format: "pem" }));
}

/** The API objects the operator tests apply in `ns`, as JSON for `kubectl apply`. */
export interface OperatorObjects {
  /** EgressPolicy `name` selecting pods labelled app=agent, with `egress` rules. */
  policy: (name: string, egress: unknown[]) => Record<string, unknown>;
  /** Secret `api-token` holding `token: value`. */
  secret: (value: string) => Record<string, unknown>;
  /** Credential `api`: key `token` of Secret `api-token`, injected as X-Api-Key. */
  credential: () => Record<string, unknown>;
}

/** OperatorObjects for namespace `ns`. */
export function operatorObjects(ns: string): OperatorObjects {
  return {
    policy: (name, egress) => ({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "EgressPolicy",
      metadata: { name, namespace: ns },
      spec: { podSelector: { matchLabels: { app: "agent" } }, egress },
    }),
    secret: (value) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "api-token", namespace: ns },
      stringData: { token: value },
    }),
    credential: () => ({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "Credential",
      metadata: { name: "api", namespace: ns },
      spec: { secretRef: { name: "api-token", key: "token" }, injection: { header: { name: "X-Api-Key" } } },
    }),
  };
}

/**
 * The AgentPodWorld of `ns` for startAgentPod: ServiceAccount `agent` with its kubeconfig and the
 * upstream CA from `files`, names pinned by `resolve` (NAME:IP), control port chosen per pod.
 */
export function agentPodWorld(
  cp: ControlPlane,
  ns: string,
  dir: string,
  files: OperatorFiles,
  resolve: string[],
): AgentPodWorld {
  return {
    cp,
    namespace: ns,
    dir,
    serviceAccount: "agent",
    kubeconfig: files.agentKubeconfig,
    upstreamCa: files.upstreamCa,
    resolve,
    controlPort: 0,
  };
}
