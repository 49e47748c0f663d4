// compile(): the manifests selecting one pod identity → one CompiledPolicy, or every error with
// its object and field path. The operator, `airlock run`/`validate` and the tests all call this
// one function, so they accept and refuse exactly the same inputs.

import { placeholderFor } from "./placeholder.ts";
import { DEFAULT_RULE_PORTS } from "../constants.ts";
import { policyHash } from "./canonical-json.ts";
import { findConflicts } from "./conflicts.ts";
import { isRecord } from "./fields.ts";
import { credentialOwnedHeaders, lowerNames } from "./header-edits.ts";
import { hostPatternCovers, hostPatternString, parseHostPattern } from "./host.ts";
import type { Credential, CredentialInjection, EgressPolicy, EgressRule } from "./manifest-types.ts";
import { objectRefOf } from "./object-meta.ts";
import type {
  CompiledCredential,
  CompiledPolicy,
  CompiledRule,
  FieldError,
  HostPattern,
  Injection,
  ObjectRef,
  Result,
} from "./types.ts";
import { validateCredential } from "./validate-credential.ts";
import { validatePolicy } from "./validate-policy.ts";

/** The inputs of one compile: parsed manifests (unvalidated) and the namespace for those without one. */
export interface CompileInput {
  policies: unknown[];
  credentials: unknown[];
  /** Namespace of manifests whose metadata has none; "default" when absent. */
  defaultNamespace?: string;
}

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function idOf(metadata: { namespace: string; name: string }): string {
  return `${metadata.namespace}/${metadata.name}`;
}

function hostsOf(patterns: readonly string[]): HostPattern[] {
  return patterns.flatMap((raw) => {
    const parsed = parseHostPattern(raw);
    return parsed.ok ? [parsed.value] : [];
  });
}

// Validates one list of manifests; errors of objects without a usable name are located by
// their position in the input (`policies[3].spec…`), since there is no object to name.
function validateAll<T extends EgressPolicy | Credential>(
  items: unknown,
  field: "policies" | "credentials",
  validate: (obj: unknown, defaultNamespace: string) => Result<T>,
  defaultNamespace: string,
  errors: FieldError[],
): { valid: Map<string, T>; invalidIds: Set<string> } {
  const valid = new Map<string, T>();
  const invalidIds = new Set<string>();
  const position = new Map<string, number>();
  if (!Array.isArray(items)) {
    errors.push({ path: field, message: `must be a list of manifests; pass [] when there are none` });
    return { valid, invalidIds };
  }
  const kind = field === "policies" ? "EgressPolicy" : "Credential";
  items.forEach((item: unknown, i) => {
    const result = validate(item, defaultNamespace);
    if (!result.ok) {
      const ref = objectRefOf(item, kind, defaultNamespace);
      if (ref !== undefined) invalidIds.add(idOf(ref));
      for (const e of result.errors) {
        errors.push(
          e.object !== undefined
            ? e
            : { path: e.path === "" ? `${field}[${i}]` : `${field}[${i}].${e.path}`, message: e.message },
        );
      }
      return;
    }
    const { metadata } = result.value;
    const id = idOf(metadata);
    const first = position.get(id);
    if (first !== undefined) {
      errors.push({
        object: { kind, namespace: metadata.namespace, name: metadata.name },
        path: "metadata.name",
        message: `${kind} ${id} is given twice (${field}[${first}] and ${field}[${i}]); keep one`,
      });
      return;
    }
    position.set(id, i);
    valid.set(id, result.value);
  });
  return { valid, invalidIds };
}

/** A rule's header edits may not touch what its credential's injection owns (header-edits.ts). */
function checkCredentialHeaders(
  rule: EgressRule,
  i: number,
  credential: Credential,
  object: ObjectRef,
  errors: FieldError[],
): void {
  const owned = credentialOwnedHeaders(compileInjection(credential.spec.injection));
  const refuse = (path: string, name: string): void => {
    const why = owned.get(name.toLowerCase());
    if (why === undefined) return;
    errors.push({
      object,
      path,
      message: `${name} cannot be edited by a rule that attaches Credential ${credential.metadata.name}: ${why}; remove it`,
    });
  };
  rule.setHeaders?.forEach(({ name }, j) => {
    refuse(`spec.egress[${i}].setHeaders[${j}].name`, name);
  });
  rule.removeHeaders?.forEach((name, j) => {
    refuse(`spec.egress[${i}].removeHeaders[${j}]`, name);
  });
}

function checkCredentialRefs(
  policy: EgressPolicy,
  credentials: Map<string, Credential>,
  invalidCredentials: Set<string>,
  errors: FieldError[],
): void {
  const object = {
    kind: "EgressPolicy" as const,
    namespace: policy.metadata.namespace,
    name: policy.metadata.name,
  };
  policy.spec.egress.forEach((rule, i) => {
    if (rule.credential === undefined) return;
    const id = `${policy.metadata.namespace}/${rule.credential}`;
    const credential = credentials.get(id);
    if (credential === undefined) {
      // An invalid Credential has reported its own errors; "not found" would mislead.
      if (invalidCredentials.has(id)) return;
      errors.push({
        object,
        path: `spec.egress[${i}].credential`,
        message: `Credential ${rule.credential} not found in namespace ${policy.metadata.namespace}; create it or remove the reference`,
      });
      return;
    }
    checkCredentialHeaders(rule, i, credential, object, errors);
    if (credential.spec.hosts === undefined) return;
    const bound = hostsOf(credential.spec.hosts);
    hostsOf(rule.hosts).forEach((host, j) => {
      if (bound.some((outer) => hostPatternCovers(outer, host))) return;
      const wildcardNote =
        host.kind === "wildcard" ? " (a wildcard is covered only by an equal or broader wildcard)" : "";
      errors.push({
        object,
        path: `spec.egress[${i}].hosts[${j}]`,
        message:
          `host "${hostPatternString(host)}" is outside the hosts of Credential ${id} ` +
          `(${credential.spec.hosts?.join(", ") ?? ""})${wildcardNote}; remove it from this rule, move it to a rule ` +
          `without the credential, or add it to the Credential's hosts`,
      });
    });
  });
}

function compileInjection(injection: CredentialInjection): Injection {
  if ("header" in injection) {
    return { kind: "header", name: injection.header.name, valuePrefix: injection.header.valuePrefix ?? "" };
  }
  if ("basicAuth" in injection) return { kind: "basicAuth", username: injection.basicAuth.username };
  if ("awsSigV4" in injection)
    return {
      kind: "awsSigV4",
      ...injection.awsSigV4,
      unsignedPayload: injection.awsSigV4.unsignedPayload ?? false,
    };
  return { kind: "queryParam", name: injection.queryParam.name };
}

function compileCredential(credential: Credential): CompiledCredential {
  const { namespace, name } = credential.metadata;
  return {
    id: idOf(credential.metadata),
    namespace,
    name,
    secretRef: { name: credential.spec.secretRef.name, key: credential.spec.secretRef.key },
    injection: compileInjection(credential.spec.injection),
    hosts: credential.spec.hosts === undefined ? null : hostsOf(credential.spec.hosts),
    ...(credential.spec.oauth2 === undefined ? {} : { oauth2: credential.spec.oauth2 }),
    ...(credential.spec.githubApp === undefined ? {} : { githubApp: credential.spec.githubApp }),
    ...(credential.spec.placeholder === true ? { placeholder: placeholderFor(namespace, name) } : {}),
  };
}

function compileRule(policy: EgressPolicy, rule: EgressRule, index: number): CompiledRule {
  const compiled: CompiledRule = {
    policy: idOf(policy.metadata),
    rule: rule.name,
    index,
    hosts: hostsOf(rule.hosts),
    ports: rule.ports ?? [...DEFAULT_RULE_PORTS],
    methods: rule.methods ?? null,
    paths: rule.paths ?? null,
  };
  if (rule.credential !== undefined) compiled.credential = `${policy.metadata.namespace}/${rule.credential}`;
  if (rule.setHeaders !== undefined)
    compiled.setHeaders = rule.setHeaders.map(({ name, value }) => ({ name, value }));
  if (rule.removeHeaders !== undefined) compiled.removeHeaders = lowerNames(rule.removeHeaders);
  if (rule.hook !== undefined) compiled.hook = rule.hook;
  return compiled;
}

/**
 * Validates every manifest, resolves credentials in each policy's namespace, enforces
 * credential host bounds, and returns the deterministic, hashed CompiledPolicy — or every
 * error found. Conflicts are reported in the result, not as errors. Never throws.
 */
export function compile(input: CompileInput): Result<CompiledPolicy> {
  if (!isRecord(input)) {
    return {
      ok: false,
      errors: [{ path: "", message: "compile input must be {policies: […], credentials: […]}" }],
    };
  }
  const defaultNamespace =
    typeof input.defaultNamespace === "string" && input.defaultNamespace !== ""
      ? input.defaultNamespace
      : "default";
  const errors: FieldError[] = [];
  const policies = validateAll(input.policies, "policies", validatePolicy, defaultNamespace, errors);
  const credentials = validateAll(
    input.credentials,
    "credentials",
    validateCredential,
    defaultNamespace,
    errors,
  );
  for (const policy of policies.valid.values()) {
    checkCredentialRefs(policy, credentials.valid, credentials.invalidIds, errors);
  }
  if (errors.length > 0) return { ok: false, errors };

  const sorted = [...policies.valid.entries()].sort(([a], [b]) => byString(a, b)).map(([, policy]) => policy);
  const rules = sorted.flatMap((policy) =>
    policy.spec.egress.map((rule, index) => compileRule(policy, rule, index)),
  );
  const referenced = [
    ...new Set(rules.flatMap((rule) => (rule.credential === undefined ? [] : [rule.credential]))),
  ].sort(byString);
  const compiledCredentials: Record<string, CompiledCredential> = {};
  for (const id of referenced) {
    const credential = credentials.valid.get(id);
    if (credential !== undefined) compiledCredentials[id] = compileCredential(credential);
  }
  const body: Omit<CompiledPolicy, "hash"> = {
    apiVersion: "airlock.dev/v1alpha1",
    kind: "CompiledPolicy",
    mode: sorted.length > 0 && sorted.every((p) => p.spec.mode === "Audit") ? "Audit" : "Enforce",
    policies: sorted.map((p) => {
      const entry: CompiledPolicy["policies"][number] = { id: idOf(p.metadata), mode: p.spec.mode };
      if (p.metadata.generation !== undefined) entry.generation = p.metadata.generation;
      return entry;
    }),
    rules,
    credentials: compiledCredentials,
    conflicts: findConflicts(rules),
  };
  const { apiVersion, kind, ...rest } = body;
  return { ok: true, value: { apiVersion, kind, hash: policyHash(body), ...rest } };
}
