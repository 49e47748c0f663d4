// Standard Kubernetes LabelSelector: validated as the API server would (airlock run has none),
// and matched the same way, so a policy selects the same pods with or without a cluster.

import {
  checkKnownFields,
  describeType,
  expectArray,
  expectRecord,
  expectString,
  fieldPath,
  indexPath,
  showValue,
  type ErrorSink,
} from "./fields.ts";
import type { LabelSelector, LabelSelectorRequirement } from "./manifest-types.ts";
import { labelKeyProblem, labelValueProblem } from "./names.ts";

const OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"] as const;
type Operator = (typeof OPERATORS)[number];

function isOperator(value: unknown): value is Operator {
  return OPERATORS.some((op) => op === value);
}

function validateRequirement(
  value: unknown,
  path: string,
  add: ErrorSink,
): LabelSelectorRequirement | undefined {
  const item = expectRecord(value, path, add);
  if (item === undefined) return undefined;
  checkKnownFields(item, path, ["key", "operator", "values"], add);
  let ok = true;
  const key = expectString(item.key, fieldPath(path, "key"), add);
  if (key === undefined) ok = false;
  else {
    const problem = labelKeyProblem(key);
    if (problem !== undefined) {
      add(fieldPath(path, "key"), problem);
      ok = false;
    }
  }
  const operator = item.operator;
  if (!isOperator(operator)) {
    add(fieldPath(path, "operator"), `must be one of ${OPERATORS.join(", ")}, got ${showValue(operator)}`);
    return undefined;
  }
  const valuesPath = fieldPath(path, "values");
  if (operator === "Exists" || operator === "DoesNotExist") {
    if (item.values !== undefined && !(Array.isArray(item.values) && item.values.length === 0)) {
      add(valuesPath, `must be empty for operator ${operator}; remove values`);
      return undefined;
    }
    return ok && key !== undefined ? { key, operator } : undefined;
  }
  const values = expectArray(item.values, valuesPath, add, {
    min: 1,
    max: 256,
    emptyHint: `operator ${operator} needs at least one value`,
  });
  if (values === undefined) return undefined;
  const strings: string[] = [];
  values.forEach((v, i) => {
    const at = indexPath(valuesPath, i);
    const problem =
      typeof v === "string"
        ? labelValueProblem(v)
        : `must be a string, got ${describeType(v)}; quote the value`;
    if (problem !== undefined) {
      add(at, problem);
      ok = false;
    } else if (typeof v === "string") strings.push(v);
  });
  return ok && key !== undefined ? { key, operator, values: strings } : undefined;
}

/** Validates a LabelSelector at `path`; undefined when any part is invalid (errors reported). */
export function validateLabelSelector(
  value: unknown,
  path: string,
  add: ErrorSink,
): LabelSelector | undefined {
  const selector = expectRecord(value, path, add, "; use {} to select every pod in the namespace");
  if (selector === undefined) return undefined;
  checkKnownFields(selector, path, ["matchLabels", "matchExpressions"], add);
  const result: LabelSelector = {};
  let ok = true;

  if (selector.matchLabels !== undefined) {
    const labelsPath = fieldPath(path, "matchLabels");
    const labels = expectRecord(selector.matchLabels, labelsPath, add);
    if (labels === undefined) ok = false;
    else {
      const matchLabels: Record<string, string> = {};
      for (const [key, v] of Object.entries(labels)) {
        const at = fieldPath(labelsPath, key);
        const problem =
          labelKeyProblem(key) ??
          (typeof v === "string"
            ? labelValueProblem(v)
            : `must be a string, got ${describeType(v)}; quote the value`);
        if (problem !== undefined) {
          add(at, problem);
          ok = false;
        } else if (typeof v === "string") matchLabels[key] = v;
      }
      result.matchLabels = matchLabels;
    }
  }
  if (selector.matchExpressions !== undefined) {
    const exprPath = fieldPath(path, "matchExpressions");
    const items = expectArray(selector.matchExpressions, exprPath, add, { min: 0, max: 256 });
    if (items === undefined) ok = false;
    else {
      const requirements = items.map((item, i) => validateRequirement(item, indexPath(exprPath, i), add));
      const valid = requirements.filter((r) => r !== undefined);
      if (valid.length !== requirements.length) ok = false;
      result.matchExpressions = valid;
    }
  }
  return ok ? result : undefined;
}

/** Whether a pod with `labels` is selected, with Kubernetes semantics (`{}` selects everything). */
export function labelSelectorMatches(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    if (operator === "Exists" && !has) return false;
    if (operator === "DoesNotExist" && has) return false;
    if (operator === "In" && !(value !== undefined && values.includes(value))) return false;
    if (operator === "NotIn" && value !== undefined && values.includes(value)) return false;
  }
  return true;
}
