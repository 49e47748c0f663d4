// EgressPolicy validation: what a CRD schema plus a validating webhook would check, done in the
// core because `airlock run` has no API server and both paths must refuse the same manifests.

import { API_GROUP_VERSION, DEFAULT_RULE_PORTS } from "../constants.ts";
import {
  checkKnownFields,
  showValue,
  checkUnique,
  describeType,
  expectArray,
  expectRecord,
  fieldPath,
  indexPath,
  type ErrorSink,
} from "./fields.ts";
import { parseHostPattern } from "./host.ts";
import { validateLabelSelector } from "./label-selector.ts";
import type { EgressPolicy, EgressRule } from "./manifest-types.ts";
import { dnsLabelProblem, dnsSubdomainProblem } from "./names.ts";
import { objectRefOf, validateHeader, withObject } from "./object-meta.ts";
import { compilePathPattern } from "./path.ts";
import type { FieldError, Mode, Result } from "./types.ts";

/** Methods a rule may name; TRACE and CONNECT are refused on purpose (see methodProblem). */
export const HTTP_METHODS: readonly string[] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

export const MAX_RULES = 256;
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

// Checks each item; duplicates are reported among the valid ones even when others are invalid.
function eachString(
  items: unknown[],
  path: string,
  add: ErrorSink,
  problem: (s: string) => string | undefined,
): string[] | undefined {
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

function validateRule(value: unknown, path: string, add: ErrorSink): EgressRule | undefined {
  const rule = expectRecord(value, path, add, "; write {name: …, hosts: […]}");
  if (rule === undefined) return undefined;
  const before = { count: 0 };
  const track: ErrorSink = (p, m) => {
    before.count++;
    add(p, m);
  };
  checkKnownFields(rule, path, ["name", "hosts", "ports", "methods", "paths", "credential"], track);

  const namePath = fieldPath(path, "name");
  let name: string | undefined;
  if (rule.name === undefined)
    track(namePath, "is required; name the rule (it appears in logs, metrics and status)");
  else {
    const problem =
      typeof rule.name === "string"
        ? dnsLabelProblem(rule.name)
        : `must be a string, got ${describeType(rule.name)}`;
    if (problem === undefined) name = rule.name as string;
    else track(namePath, problem);
  }

  const hostsPath = fieldPath(path, "hosts");
  const hostItems =
    rule.hosts === undefined
      ? (track(hostsPath, 'is required; list the hosts this rule allows, e.g. ["api.example.com"]'),
        undefined)
      : expectArray(rule.hosts, hostsPath, track, {
          min: 1,
          max: MAX_HOSTS_PER_RULE,
          emptyHint: "list at least one host",
        });
  const hosts =
    hostItems &&
    eachString(hostItems, hostsPath, track, (h) => {
      const parsed = parseHostPattern(h);
      return parsed.ok ? undefined : parsed.message;
    });

  const out: EgressRule = { name: name ?? "", hosts: hosts ?? [] };
  if (rule.ports !== undefined) {
    const ports = validatePorts(rule.ports, fieldPath(path, "ports"), track);
    if (ports) out.ports = ports;
  }
  if (rule.methods !== undefined) {
    const methodsPath = fieldPath(path, "methods");
    const items = expectArray(rule.methods, methodsPath, track, {
      min: 1,
      max: 16,
      emptyHint: "remove methods to allow any method",
    });
    const methods = items && eachString(items, methodsPath, track, methodProblem);
    if (methods) out.methods = methods;
  }
  if (rule.paths !== undefined) {
    const pathsPath = fieldPath(path, "paths");
    const items = expectArray(rule.paths, pathsPath, track, {
      min: 1,
      max: MAX_PATHS_PER_RULE,
      emptyHint: "remove paths to allow any path",
    });
    const paths =
      items &&
      eachString(items, pathsPath, track, (p) => {
        const compiled = compilePathPattern(p);
        return compiled.ok ? undefined : compiled.message;
      });
    if (paths) out.paths = paths;
  }
  if (rule.credential !== undefined) {
    const credentialPath = fieldPath(path, "credential");
    const problem =
      typeof rule.credential === "string"
        ? dnsSubdomainProblem(rule.credential)
        : `must be a string naming a Credential, got ${describeType(rule.credential)}`;
    if (problem === undefined) out.credential = rule.credential as string;
    else track(credentialPath, problem);
  }
  return before.count === 0 ? out : undefined;
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
