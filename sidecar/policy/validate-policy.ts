// EgressPolicy validation: what a CRD schema plus a validating webhook would check, done in the
// core because `airlock run` has no API server and both paths must refuse the same manifests.

import { validateHook } from "./hook.ts";
import { API_GROUP_VERSION, DEFAULT_RULE_PORTS } from "../constants.ts";
import {
  checkKnownFields,
  checkUnique,
  describeType,
  expectArray,
  expectRecord,
  fieldPath,
  indexPath,
  showValue,
  type ErrorSink,
} from "./fields.ts";
import { validateRemoveHeaders, validateSetHeaders } from "./header-edits.ts";
import { parseHostPattern } from "./host.ts";
import { validateLabelSelector } from "./label-selector.ts";
import type { EgressPolicy, EgressRule } from "./manifest-types.ts";
import { dnsLabelProblem, dnsSubdomainProblem } from "./names.ts";
import { objectRefOf, validateHeader, withObject } from "./object-meta.ts";
import { HTTP_METHODS } from "./methods.ts";
import { compilePathPattern } from "./path.ts";
import type { FieldError, Mode, Result } from "./types.ts";

export { HTTP_METHODS } from "./methods.ts";

/** Upper bounds a CRD schema would set: they keep one policy's bundle and status readable. */
export const MAX_RULES = 256;
/** At most this many hosts in one rule; split longer lists into several rules. */
export const MAX_HOSTS_PER_RULE = 64;
const MAX_PATHS_PER_RULE = 64;
const MAX_PORTS_PER_RULE = 64;

/** Why `method` cannot appear in a rule (ending with the fix), or undefined when it can. */
export function methodProblem(method: string): string | undefined {
  if (HTTP_METHODS.includes(method)) return undefined;
  const upper = method.toUpperCase();
  if (upper === "TRACE") {
    return "TRACE is refused: it reflects the request's headers back and could echo an injected credential; remove it";
  }
  if (upper === "CONNECT") {
    return "CONNECT is refused: tunnels are decided by host and port alone; remove it and list the host and port";
  }
  if (HTTP_METHODS.includes(upper)) return `methods are upper case; use ${upper}`;
  return `"${method}" is not a supported method; use ${HTTP_METHODS.join(", ")}`;
}

// Checks a list of strings; duplicates are reported among the valid items even when others are invalid.
function stringList(
  value: unknown,
  path: string,
  add: ErrorSink,
  limits: { min: number; max: number; emptyHint: string },
  problem: (s: string) => string | undefined,
): string[] | undefined {
  const items = expectArray(value, path, add, limits);
  if (items === undefined) return undefined;
  const checked = items.map((item, i) => {
    const message =
      typeof item === "string"
        ? problem(item)
        : `must be a string, got ${describeType(item)}; quote the value`;
    if (message === undefined) return item as string;
    add(indexPath(path, i), message);
    return undefined;
  });
  checkUnique(checked, path, add);
  const valid = checked.filter((s) => s !== undefined);
  return valid.length === items.length ? valid : undefined;
}

function validatePorts(value: unknown, path: string, add: ErrorSink): number[] | undefined {
  const items = expectArray(value, path, add, {
    min: 1,
    max: MAX_PORTS_PER_RULE,
    emptyHint: `remove ports to use the default [${DEFAULT_RULE_PORTS.join(", ")}]`,
  });
  if (items === undefined) return undefined;
  const checked = items.map((item, i) => {
    if (typeof item === "number" && Number.isInteger(item) && item >= 1 && item <= 65535) return item;
    add(
      indexPath(path, i),
      `must be an integer from 1 to 65535, got ${showValue(item)}; write a TCP port number`,
    );
    return undefined;
  });
  checkUnique(checked, path, add);
  const ports = checked.filter((p) => p !== undefined);
  return ports.length === items.length ? ports : undefined;
}

function hostProblem(host: string): string | undefined {
  const parsed = parseHostPattern(host);
  return parsed.ok ? undefined : parsed.message;
}

function pathProblem(pattern: string): string | undefined {
  const compiled = compilePathPattern(pattern);
  return compiled.ok ? undefined : compiled.message;
}

function validateRule(value: unknown, path: string, report: ErrorSink): EgressRule | undefined {
  const rule = expectRecord(value, path, report, "; write {name: …, hosts: […]}");
  if (rule === undefined) return undefined;
  let errors = 0;
  const add: ErrorSink = (at, message) => {
    errors++;
    report(at, message);
  };
  const at = (key: string): string => fieldPath(path, key);
  checkKnownFields(
    rule,
    path,
    ["name", "hosts", "ports", "methods", "paths", "credential", "setHeaders", "removeHeaders", "hook"],
    add,
  );

  let name: string | undefined;
  if (rule.name === undefined)
    add(at("name"), "is required; name the rule (it appears in logs, metrics and status)");
  else if (typeof rule.name !== "string") add(at("name"), `must be a string, got ${describeType(rule.name)}`);
  else {
    const problem = dnsLabelProblem(rule.name);
    if (problem === undefined) name = rule.name;
    else add(at("name"), problem);
  }
  if (rule.hosts === undefined)
    add(at("hosts"), 'is required; list the hosts this rule allows, e.g. ["api.example.com"]');
  const hosts =
    rule.hosts === undefined
      ? undefined
      : stringList(
          rule.hosts,
          at("hosts"),
          add,
          { min: 1, max: MAX_HOSTS_PER_RULE, emptyHint: "list at least one host" },
          hostProblem,
        );
  const ports = rule.ports === undefined ? undefined : validatePorts(rule.ports, at("ports"), add);
  const methods =
    rule.methods === undefined
      ? undefined
      : stringList(
          rule.methods,
          at("methods"),
          add,
          { min: 1, max: 16, emptyHint: "remove methods to allow every listed method" },
          methodProblem,
        );
  const paths =
    rule.paths === undefined
      ? undefined
      : stringList(
          rule.paths,
          at("paths"),
          add,
          { min: 1, max: MAX_PATHS_PER_RULE, emptyHint: "remove paths to allow any path" },
          pathProblem,
        );
  let credential: string | undefined;
  if (rule.credential !== undefined) {
    const problem =
      typeof rule.credential === "string"
        ? dnsSubdomainProblem(rule.credential)
        : `must be a string naming a Credential, got ${describeType(rule.credential)}`;
    if (problem === undefined) credential = rule.credential as string;
    else add(at("credential"), problem);
  }

  const edits = validateHeaderEdits(rule, at, add);
  if (errors > 0 || name === undefined || hosts === undefined) return undefined;
  const out: EgressRule = { name, hosts, ...edits };
  if (ports !== undefined) out.ports = ports;
  if (methods !== undefined) out.methods = methods;
  if (paths !== undefined) out.paths = paths;
  if (credential !== undefined) out.credential = credential;
  return out;
}

/** A rule's setHeaders, removeHeaders and hook, those given and valid (header-edits.ts, hook.ts). */
function validateHeaderEdits(
  rule: Record<string, unknown>,
  at: (key: string) => string,
  add: ErrorSink,
): Pick<EgressRule, "setHeaders" | "removeHeaders" | "hook"> {
  const out: Pick<EgressRule, "setHeaders" | "removeHeaders" | "hook"> = {};
  if (rule.hook !== undefined) {
    const hook = validateHook(rule.hook, at("hook"), add);
    if (hook !== undefined) out.hook = hook;
  }
  const set =
    rule.setHeaders === undefined ? undefined : validateSetHeaders(rule.setHeaders, at("setHeaders"), add);
  const remove =
    rule.removeHeaders === undefined
      ? undefined
      : validateRemoveHeaders(rule.removeHeaders, at("removeHeaders"), add);
  if (set !== undefined) out.setHeaders = set;
  if (remove !== undefined) out.removeHeaders = remove;
  return out;
}

function validateMode(value: unknown, add: ErrorSink): Mode | undefined {
  if (value === undefined || value === "Enforce") return "Enforce";
  if (value === "Audit") return "Audit";
  add("spec.mode", `must be Enforce or Audit, got ${showValue(value)}; remove it for Enforce`);
  return undefined;
}

function validateEgress(value: unknown, add: ErrorSink): EgressRule[] | undefined {
  if (value === undefined) return [];
  const items = expectArray(value, "spec.egress", add, { min: 0, max: MAX_RULES });
  if (items === undefined) return undefined;
  const rules = items.map((item, i) => validateRule(item, indexPath("spec.egress", i), add));
  const firstByName = new Map<string, number>();
  items.forEach((item, i) => {
    const name = (item as { name?: unknown } | null)?.name;
    if (typeof name !== "string") return;
    const first = firstByName.get(name);
    if (first === undefined) firstByName.set(name, i);
    else {
      add(
        `spec.egress[${i}].name`,
        `duplicate rule name "${name}" (also spec.egress[${first}].name); rule names are unique in a policy, rename one`,
      );
    }
  });
  const valid = rules.filter((r) => r !== undefined);
  return valid.length === rules.length ? valid : undefined;
}

/**
 * Validates a parsed EgressPolicy manifest, collecting every error with its field path; fills
 * namespace (from `defaultNamespace`), mode (Enforce) and egress ([]). Never throws.
 */
export function validatePolicy(obj: unknown, defaultNamespace = "default"): Result<EgressPolicy> {
  const errors: { path: string; message: string }[] = [];
  const add: ErrorSink = (path, message) => errors.push({ path, message });
  const object = objectRefOf(obj, "EgressPolicy", defaultNamespace);
  const root = expectRecord(obj, "", add, "; write an EgressPolicy manifest");
  if (root === undefined) return { ok: false, errors: withObject(errors, object) };

  const metadata = validateHeader(root, "EgressPolicy", defaultNamespace, add);
  const spec = expectRecord(root.spec, "spec", add, "; add spec: {podSelector: {}, egress: […]}");
  if (spec !== undefined) {
    checkKnownFields(spec, "spec", ["podSelector", "mode", "egress"], add);
    if (spec.podSelector === undefined)
      add("spec.podSelector", "is required; use {} to select every pod in the namespace");
  }
  const podSelector =
    spec?.podSelector === undefined
      ? undefined
      : validateLabelSelector(spec.podSelector, "spec.podSelector", add);
  const mode = spec && validateMode(spec.mode, add);
  const egress = spec && validateEgress(spec.egress, add);

  if (errors.length > 0 || !metadata || !podSelector || !mode || !egress) {
    return { ok: false, errors: withObject(errors, object) satisfies FieldError[] };
  }
  return {
    ok: true,
    value: {
      apiVersion: API_GROUP_VERSION,
      kind: "EgressPolicy",
      metadata,
      spec: { podSelector, mode, egress },
    },
  };
}
