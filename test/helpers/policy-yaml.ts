// Policy files as the netns and process tests write them: an EgressPolicy in namespace `agents`
// selecting every pod, and Credential + Secret pairs, as YAML text for `--policy`.

/** Injection as `Authorization: Bearer <token>` (YAML flow mapping). */
export const BEARER_INJECTION = '{header: {name: Authorization, valuePrefix: "Bearer "}}';

/**
 * An EgressPolicy `name` in namespace `agents` selecting every pod, with one egress rule per entry
 * of `rules` (each a YAML flow mapping, e.g. `{name: api, hosts: [api.example.test]}`).
 */
export function egressPolicyYaml(name: string, rules: string[]): string {
  return `apiVersion: airlock.dev/v1alpha1
kind: EgressPolicy
metadata: {name: ${name}, namespace: agents}
spec:
  podSelector: {}
  egress:
${rules.map((rule) => `    - ${rule}\n`).join("")}`;
}

/**
 * Two more documents: Credential `name` (reading key `token` of Secret `name`, injected as
 * `injection`, a YAML flow mapping) and that Secret in namespace `agents` holding `token`.
 */
export function credentialYaml(name: string, token: string, injection = BEARER_INJECTION): string {
  return `---
apiVersion: airlock.dev/v1alpha1
kind: Credential
metadata: {name: ${name}, namespace: agents}
spec:
  secretRef: {name: ${name}, key: token}
  injection: ${injection}
---
apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: agents}
stringData: {token: ${JSON.stringify(token)}}
`;
}
