// The shape of a CompiledPolicy as it arrives over the wire. The sidecar trusts nothing it did
// not check: a bundle from a newer or broken operator is refused field by field, never half-read.

import { placeholderFor } from "./placeholder.ts";
import { validateHook } from "./hook.ts";
import { validateSigV4 } from "./aws-sigv4.ts";
import { validateGitHubApp } from "./github-app.ts";
import { validateOAuth2 } from "./oauth2.ts";
import { validateRemoveHeaders, validateSetHeaders } from "./header-edits.ts";
import {
  checkKnownFields,
  checkUnique,
  describeType,
  expectArray,
  expectRecord,
  fieldPath,
  indexPath,
  isRecord,
  showValue,
  type ErrorSink,
} from "./fields.ts";
import { parseHostPattern } from "./host.ts";
import { dnsLabelProblem, dnsSubdomainProblem, secretKeyProblem } from "./names.ts";
import { compilePathPattern } from "./path.ts";
import type {
  CompiledCredential,
  CompiledPolicy,
  CompiledRule,
  Conflict,
  HostPattern,
  Injection,
  Mode,
  Result,
} from "./types.ts";
import {
  basicAuthUsernameProblem,
  injectionHeaderProblem,
  queryParamProblem,
  valuePrefixProblem,
} from "./validate-credential.ts";
import { methodProblem } from "./validate-policy.ts";

const NO_LIMIT = { min: 0, max: Number.MAX_SAFE_INTEGER };
const NON_EMPTY = { min: 1, max: Number.MAX_SAFE_INTEGER };

function str(
  value: unknown,
  path: string,
  add: ErrorSink,
  problem?: (s: string) => string | undefined,
): string | undefined {
  const message =
    typeof value === "string" ? problem?.(value) : `must be a string, got ${describeType(value)}`;
  if (message === undefined) return value as string;
  add(path, message);
  return undefined;
}

function int(value: unknown, path: string, add: ErrorSink, min: number, max: number): number | undefined {
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return value;
  add(path, `must be an integer from ${min} to ${max}, got ${showValue(value)}`);
  return undefined;
}

function mode(value: unknown, path: string, add: ErrorSink): Mode | undefined {
  if (value === "Enforce" || value === "Audit") return value;
  add(path, `must be Enforce or Audit, got ${showValue(value)}`);
  return undefined;
}

function objectId(id: string): string | undefined {
  const [namespace, name, ...rest] = id.split("/");
  if (namespace === undefined || name === undefined || rest.length > 0)
    return `"${id}" is not namespace/name`;
  return dnsLabelProblem(namespace) ?? dnsSubdomainProblem(name);
}

/** Validates every item of a list; the list is usable only if every item is. */
function list<T>(
  value: unknown,
  path: string,
  add: ErrorSink,
  limits: { min: number; max: number },
  item: (v: unknown, at: string) => T | undefined,
): T[] | undefined {
  const items = expectArray(value, path, add, limits);
  if (items === undefined) return undefined;
  const out = items.map((v, i) => item(v, indexPath(path, i)));
  return out.every((v) => v !== undefined) ? out : undefined;
}

function hostPattern(value: unknown, path: string, add: ErrorSink): HostPattern | undefined {
  const obj = expectRecord(value, path, add);
  if (obj === undefined) return undefined;
  if (obj.kind === "exact" || obj.kind === "wildcard") {
    const key = obj.kind === "exact" ? "name" : "suffix";
    checkKnownFields(obj, path, ["kind", key], add);
    const text = str(obj[key], fieldPath(path, key), add);
    if (text === undefined) return undefined;
    const parsed = parseHostPattern(obj.kind === "exact" ? text : `*.${text}`);
    if (parsed.ok && parsed.value.kind === obj.kind) return parsed.value;
    add(fieldPath(path, key), parsed.ok ? `"${text}" is not a valid ${obj.kind} host` : parsed.message);
    return undefined;
  }
  add(fieldPath(path, "kind"), `must be "exact" or "wildcard", got ${showValue(obj.kind)}`);
  return undefined;
}

function rule(
  value: unknown,
  path: string,
  add: ErrorSink,
  policyIds: ReadonlySet<string>,
  credentialIds: ReadonlySet<string>,
): CompiledRule | undefined {
  const obj = expectRecord(value, path, add);
  if (obj === undefined) return undefined;
  checkKnownFields(
    obj,
    path,
    [
      "policy",
      "rule",
      "index",
      "hosts",
      "ports",
      "methods",
      "paths",
      "credential",
      "setHeaders",
      "removeHeaders",
      "hook",
    ],
    add,
  );
  const at = (key: string): string => fieldPath(path, key);
  const policy = str(obj.policy, at("policy"), add, (s) =>
    policyIds.has(s) ? undefined : `"${s}" is not in policies`,
  );
  const name = str(obj.rule, at("rule"), add, dnsLabelProblem);
  const index = int(obj.index, at("index"), add, 0, Number.MAX_SAFE_INTEGER);
  const hosts = list(obj.hosts, at("hosts"), add, NON_EMPTY, (v, p) => hostPattern(v, p, add));
  const ports = list(obj.ports, at("ports"), add, NON_EMPTY, (v, p) => int(v, p, add, 1, 65535));
  const methods =
    obj.methods === null
      ? null
      : list(obj.methods, at("methods"), add, NON_EMPTY, (v, p) => str(v, p, add, methodProblem));
  const paths =
    obj.paths === null
      ? null
      : list(obj.paths, at("paths"), add, NON_EMPTY, (v, p) =>
          str(v, p, add, (s) => {
            const compiled = compilePathPattern(s);
            return compiled.ok ? undefined : compiled.message;
          }),
        );
  const credential =
    obj.credential === undefined
      ? undefined
      : str(obj.credential, at("credential"), add, (s) =>
          credentialIds.has(s) ? undefined : `"${s}" is not in credentials`,
        );
  if (
    policy === undefined ||
    name === undefined ||
    index === undefined ||
    !hosts ||
    !ports ||
    methods === undefined ||
    paths === undefined
  ) {
    return undefined;
  }
  if (obj.credential !== undefined && credential === undefined) return undefined;
  const extras = ruleExtras(obj, at, add);
  if (extras === undefined) return undefined;
  const out: CompiledRule = { policy, rule: name, index, hosts, ports, methods, paths, ...extras };
  if (credential !== undefined) out.credential = credential;
  return out;
}

/** A compiled rule's optional setHeaders, removeHeaders and hook, or undefined if one is invalid. */
function ruleExtras(
  obj: Record<string, unknown>,
  at: (key: string) => string,
  add: ErrorSink,
): Pick<CompiledRule, "setHeaders" | "removeHeaders" | "hook"> | undefined {
  const out: Pick<CompiledRule, "setHeaders" | "removeHeaders" | "hook"> = {};
  if (obj.setHeaders !== undefined) {
    const set = validateSetHeaders(obj.setHeaders, at("setHeaders"), add);
    if (set === undefined) return undefined;
    out.setHeaders = set;
  }
  if (obj.removeHeaders !== undefined) {
    const remove = validateRemoveHeaders(obj.removeHeaders, at("removeHeaders"), add, true);
    if (remove === undefined) return undefined;
    out.removeHeaders = remove;
  }
  if (obj.hook !== undefined) {
    const hook = validateHook(obj.hook, at("hook"), add);
    if (hook === undefined) return undefined;
    out.hook = hook;
  }
  return out;
}

function injection(value: unknown, path: string, add: ErrorSink): Injection | undefined {
  const obj = expectRecord(value, path, add);
  if (obj === undefined) return undefined;
  const at = (key: string): string => fieldPath(path, key);
  switch (obj.kind) {
    case "header": {
      checkKnownFields(obj, path, ["kind", "name", "valuePrefix"], add);
      const name = str(obj.name, at("name"), add, injectionHeaderProblem);
      const valuePrefix = str(obj.valuePrefix, at("valuePrefix"), add, valuePrefixProblem);
      return name === undefined || valuePrefix === undefined
        ? undefined
        : { kind: "header", name, valuePrefix };
    }
    case "basicAuth": {
      checkKnownFields(obj, path, ["kind", "username"], add);
      const username = str(obj.username, at("username"), add, basicAuthUsernameProblem);
      return username === undefined ? undefined : { kind: "basicAuth", username };
    }
    case "queryParam": {
      checkKnownFields(obj, path, ["kind", "name"], add);
      const name = str(obj.name, at("name"), add, queryParamProblem);
      return name === undefined ? undefined : { kind: "queryParam", name };
    }
    case "awsSigV4":
      return validateSigV4(obj, path, add, true);
    default:
      add(at("kind"), `must be header, basicAuth, queryParam or awsSigV4, got ${showValue(obj.kind)}`);
      return undefined;
  }
}

function credential(
  value: unknown,
  path: string,
  key: string,
  add: ErrorSink,
): CompiledCredential | undefined {
  const obj = expectRecord(value, path, add);
  if (obj === undefined) return undefined;
  checkKnownFields(
    obj,
    path,
    ["id", "namespace", "name", "secretRef", "injection", "hosts", "oauth2", "githubApp", "placeholder"],
    add,
  );
  const at = (k: string): string => fieldPath(path, k);
  const namespace = str(obj.namespace, at("namespace"), add, dnsLabelProblem);
  const name = str(obj.name, at("name"), add, dnsSubdomainProblem);
  const id = str(obj.id, at("id"), add, (s) =>
    s === key && s === `${String(namespace)}/${String(name)}`
      ? undefined
      : `must equal its key and namespace/name`,
  );
  const ref = expectRecord(obj.secretRef, at("secretRef"), add);
  if (ref !== undefined) checkKnownFields(ref, at("secretRef"), ["name", "key"], add);
  const refName = ref && str(ref.name, fieldPath(at("secretRef"), "name"), add, dnsSubdomainProblem);
  const refKey = ref && str(ref.key, fieldPath(at("secretRef"), "key"), add, secretKeyProblem);
  const inj = injection(obj.injection, at("injection"), add);
  const hosts =
    obj.hosts === null
      ? null
      : list(obj.hosts, at("hosts"), add, NON_EMPTY, (v, p) => hostPattern(v, p, add));
  const oauth2 = obj.oauth2 === undefined ? undefined : validateOAuth2(obj.oauth2, at("oauth2"), add);
  if (!namespace || !name || !id || !refName || !refKey || !inj || hosts === undefined) return undefined;
  if (obj.oauth2 !== undefined && oauth2 === undefined) return undefined;
  const githubApp =
    obj.githubApp === undefined ? undefined : validateGitHubApp(obj.githubApp, at("githubApp"), add);
  if (obj.githubApp !== undefined && githubApp === undefined) return undefined;
  const out: CompiledCredential = {
    id,
    namespace,
    name,
    secretRef: { name: refName, key: refKey },
    injection: inj,
    hosts,
  };
  if (oauth2 !== undefined) out.oauth2 = oauth2;
  if (githubApp !== undefined) out.githubApp = githubApp;
  if (obj.placeholder !== undefined) {
    const expected = placeholderFor(namespace, name);
    if (obj.placeholder !== expected) {
      add(at("placeholder"), "must be the placeholder derived from the Credential's namespace and name");
      return undefined;
    }
    out.placeholder = expected;
  }
  return out;
}

function conflict(value: unknown, path: string, add: ErrorSink): Conflict | undefined {
  const obj = expectRecord(value, path, add);
  if (obj === undefined) return undefined;
  checkKnownFields(obj, path, ["rules", "message"], add);
  const rules = list(obj.rules, fieldPath(path, "rules"), add, { min: 2, max: 2 }, (v, p) => str(v, p, add));
  const message = str(obj.message, fieldPath(path, "message"), add);
  const [a, b] = rules ?? [];
  return a === undefined || b === undefined || message === undefined ? undefined : { rules: [a, b], message };
}

/** Checks every field of a CompiledPolicy (not its hash) and returns a fresh copy. Never throws. */
export function validateBundle(bundle: unknown): Result<CompiledPolicy> {
  const errors: { path: string; message: string }[] = [];
  const add: ErrorSink = (path, message) => errors.push({ path, message });
  const root = expectRecord(bundle, "", add, "; push a CompiledPolicy");
  if (root === undefined) return { ok: false, errors };
  checkKnownFields(
    root,
    "",
    ["apiVersion", "kind", "hash", "mode", "policies", "rules", "credentials", "conflicts"],
    add,
  );
  if (root.apiVersion !== "airlock.dev/v1alpha1")
    add("apiVersion", `must be "airlock.dev/v1alpha1"; push a bundle this sidecar understands`);
  if (root.kind !== "CompiledPolicy") add("kind", `must be "CompiledPolicy"`);
  const hash = str(root.hash, "hash", add, (s) =>
    /^sha256:[0-9a-f]{64}$/.test(s) ? undefined : "must be sha256:<64 hex digits>",
  );
  const bundleMode = mode(root.mode, "mode", add);

  const policies = list(root.policies, "policies", add, NO_LIMIT, (v, p) => {
    const obj = expectRecord(v, p, add);
    if (obj === undefined) return undefined;
    checkKnownFields(obj, p, ["id", "mode", "generation"], add);
    const id = str(obj.id, fieldPath(p, "id"), add, objectId);
    const policyMode = mode(obj.mode, fieldPath(p, "mode"), add);
    const generation =
      obj.generation === undefined
        ? undefined
        : int(obj.generation, fieldPath(p, "generation"), add, 0, Number.MAX_SAFE_INTEGER);
    if (
      id === undefined ||
      policyMode === undefined ||
      (obj.generation !== undefined && generation === undefined)
    )
      return undefined;
    return generation === undefined ? { id, mode: policyMode } : { id, mode: policyMode, generation };
  });
  if (policies)
    checkUnique(
      policies.map((p) => p.id),
      "policies",
      add,
    );

  const credentials: Record<string, CompiledCredential> = {};
  const credentialsObj = expectRecord(root.credentials, "credentials", add);
  for (const [key, value] of Object.entries(credentialsObj ?? {})) {
    const c = credential(value, fieldPath("credentials", key), key, add);
    if (c !== undefined) credentials[key] = c;
  }
  // Rules are checked against every listed id, so one bad policy entry is one error, not one per rule.
  const listedPolicies: unknown[] = Array.isArray(root.policies) ? root.policies : [];
  const policyIds = new Set(
    listedPolicies.map((p) => (isRecord(p) ? p.id : undefined)).filter((id) => typeof id === "string"),
  );
  const credentialIds = new Set(Object.keys(credentialsObj ?? {}));
  const rules = list(root.rules, "rules", add, NO_LIMIT, (v, p) => rule(v, p, add, policyIds, credentialIds));
  if (rules)
    checkUnique(
      rules.map((r) => `${r.policy}#${r.rule}`),
      "rules",
      add,
    );
  const conflicts = list(root.conflicts, "conflicts", add, NO_LIMIT, (v, p) => conflict(v, p, add));

  if (errors.length > 0 || !hash || !bundleMode || !policies || !rules || !conflicts)
    return { ok: false, errors };
  return {
    ok: true,
    value: {
      apiVersion: "airlock.dev/v1alpha1",
      kind: "CompiledPolicy",
      hash,
      mode: bundleMode,
      policies,
      rules,
      credentials,
      conflicts,
    },
  };
}
