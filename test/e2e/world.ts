// The e2e's test world: the names, the upstream's TLS material, and the manifests a platform team
// would `kubectl apply` — an upstream and a bystander in a namespace without the boundary, and in
// an enabled namespace a Secret, a Credential, an EgressPolicy and the agent Deployment.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../helpers/cli.ts";

export const RELEASE = "airlock";
export const RELEASE_NS = "airlock-system";
/** The upstream and the bystander: a namespace the webhook leaves alone. */
export const WORLD_NS = "e2e-world";
/** Enabled for injection: the agent lives here. */
export const AGENTS_NS = "e2e-agents";

/** A rule with a credential, an allowlist-only rule, and a name no rule covers. */
export const HOSTS = { inject: "api.e2e.test", allow: "open.e2e.test", block: "blocked.e2e.test" } as const;
export const SECRET_NAME = "e2e-token";
export const POLICY_NAME = "e2e-agent";
export const AGENT_APP = "e2e-agent";

/** The upstream's CA and serving certificate, made with the openssl CLI. */
export interface UpstreamTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export function makeUpstreamTls(): UpstreamTls {
  const dir = mkdtempSync(join(tmpdir(), "airlock-e2e-tls-"));
  try {
    writeFileSync(join(dir, "openssl.cnf"), "[req]\ndistinguished_name = dn\n[dn]\n");
    const req = ["req", "-config", "openssl.cnf", "-x509", "-newkey", "ec", "-pkeyopt"];
    const common = [...req, "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7"];
    execFileSync(
      "openssl",
      [
        ...common,
        ...["-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=airlock-e2e-upstream-ca"],
        ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
      ],
      { cwd: dir, stdio: "ignore" },
    );
    const san = Object.values(HOSTS)
      .map((host) => `DNS:${host}`)
      .join(",");
    execFileSync(
      "openssl",
      [
        ...common,
        ...["-CA", "ca.crt", "-CAkey", "ca.key", "-keyout", "tls.key", "-out", "tls.crt"],
        ...["-subj", "/CN=e2e-upstream", "-addext", `subjectAltName=${san}`],
        ...["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"],
      ],
      { cwd: dir, stdio: "ignore" },
    );
    const read = (name: string): string => readFileSync(join(dir, name), "utf8");
    return { caPem: read("ca.crt"), certPem: read("tls.crt"), keyPem: read("tls.key") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const json = (obj: unknown): string => JSON.stringify(obj);

/** The upstream pod and the bystander pod (and what they mount), in {@link WORLD_NS}. */
export function worldManifests(agentImage: string, pullPolicy: string, tls: UpstreamTls): string {
  const upstreamScript = readFileSync(join(ROOT, "test/e2e/upstream.ts"), "utf8");
  const pod = (name: string, command: string[], extra: Record<string, unknown>) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: WORLD_NS, labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      containers: [{ name, image: agentImage, imagePullPolicy: pullPolicy, command, ...extra }],
      ...(extra["volumeMounts"] === undefined ? {} : { volumes: upstreamVolumes() }),
    },
  });
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: WORLD_NS } },
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "upstream-tls", namespace: WORLD_NS },
      type: "kubernetes.io/tls",
      stringData: { "tls.crt": tls.certPem, "tls.key": tls.keyPem },
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "upstream", namespace: WORLD_NS },
      data: { "upstream.ts": upstreamScript },
    },
    pod("upstream", ["node", "/upstream/upstream.ts"], {
      volumeMounts: [
        { name: "tls", mountPath: "/tls", readOnly: true },
        { name: "script", mountPath: "/upstream", readOnly: true },
      ],
      readinessProbe: { tcpSocket: { port: 443 }, periodSeconds: 1 },
    }),
    pod("bystander", ["sleep", "infinity"], {}),
  ]
    .map(json)
    .join("\n---\n");
}

function upstreamVolumes(): unknown[] {
  return [
    { name: "tls", secret: { secretName: "upstream-tls" } },
    { name: "script", configMap: { name: "upstream" } },
  ];
}

/** The upstream roots the chart hands to every sidecar (values upstreamCA.configMap). */
export function upstreamCaConfigMap(tls: UpstreamTls): string {
  return json({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "upstream-ca", namespace: RELEASE_NS },
    data: { "ca.crt": tls.caPem },
  });
}

/** The enabled namespace. */
export function agentsNamespace(): string {
  return json({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: AGENTS_NS, labels: { "airlock.dev/inject": "enabled" } },
  });
}

/** The Secret holding the token the agent must never see. */
export function secretManifest(token: string): string {
  return [
    "apiVersion: v1",
    "kind: Secret",
    `metadata: {name: ${SECRET_NAME}, namespace: ${AGENTS_NS}}`,
    "type: Opaque",
    `stringData: {token: "${token}"}`,
  ].join("\n");
}

/** The Credential and the EgressPolicy, as a user writes them. */
export function policyManifests(): string {
  return `apiVersion: airlock.dev/v1alpha1
kind: Credential
metadata: {name: e2e-api, namespace: ${AGENTS_NS}}
spec:
  secretRef: {name: ${SECRET_NAME}, key: token}
  injection:
    header: {name: Authorization, valuePrefix: "Bearer "}
  hosts: [${HOSTS.inject}]
---
apiVersion: airlock.dev/v1alpha1
kind: EgressPolicy
metadata: {name: ${POLICY_NAME}, namespace: ${AGENTS_NS}}
spec:
  podSelector:
    matchLabels: {app: ${AGENT_APP}}
  egress:
    - name: api
      hosts: [${HOSTS.inject}]
      ports: [443]
      credential: e2e-api
    - name: open
      hosts: [${HOSTS.allow}]
      ports: [443]
`;
}

/** The agent: a Deployment of the agent image; every policy name resolves to the upstream pod. */
export function agentDeployment(agentImage: string, pullPolicy: string, upstreamIp: string): string {
  return json({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: AGENT_APP, namespace: AGENTS_NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: AGENT_APP } },
      template: {
        metadata: { labels: { app: AGENT_APP } },
        spec: {
          terminationGracePeriodSeconds: 1,
          hostAliases: [{ ip: upstreamIp, hostnames: Object.values(HOSTS) }],
          containers: [
            { name: "agent", image: agentImage, imagePullPolicy: pullPolicy, command: ["sleep", "infinity"] },
          ],
        },
      },
    },
  });
}
