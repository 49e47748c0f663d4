// load(): a pushed CompiledPolicy → the PolicyIndex decide() runs on. The hash is recomputed
// here, so a bundle altered after compilation (by accident or on purpose) is never enforced.

import { policyHash } from "./canonical-json.ts";
import { ruleRef } from "./conflicts.ts";
import { compilePathPattern, type PathPattern } from "./path.ts";
import type { CompiledCredential, CompiledPolicy, CompiledRule, HeaderEdits, Result } from "./types.ts";
import { validateBundle } from "./validate-bundle.ts";

/** One rule with its matchers built; `order` is its (policy id, rule index) rank. Read only by decide. */
export interface IndexedRule {
  readonly rule: CompiledRule;
  /** `namespace/policy#rule`. */
  readonly ref: string;
  readonly order: number;
  readonly ports: ReadonlySet<number>;
  readonly methods: ReadonlySet<string> | null;
  readonly paths: readonly PathPattern[] | null;
  readonly credential: CompiledCredential | undefined;
  /** The rule's static header edits, when it has any (built once, handed out with each decision). */
  readonly headers: HeaderEdits | undefined;
  readonly hook: CompiledRule["hook"];
}

/**
 * A loaded policy: `policy` is the validated bundle; the maps (exact name → rules, wildcard
 * suffix → rules) are decide()'s lookup structures and are not part of any contract.
 */
export interface PolicyIndex {
  readonly policy: CompiledPolicy;
  readonly exact: ReadonlyMap<string, readonly IndexedRule[]>;
  readonly wildcard: ReadonlyMap<string, readonly IndexedRule[]>;
}

function byPolicyThenIndex(a: CompiledRule, b: CompiledRule): number {
  if (a.policy !== b.policy) return a.policy < b.policy ? -1 : 1;
  return a.index - b.index;
}

function push(map: Map<string, IndexedRule[]>, key: string, entry: IndexedRule): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [entry]);
  else if (!list.includes(entry)) list.push(entry);
}

/**
 * Validates a CompiledPolicy (every field, and its hash recomputed: "hash mismatch" when it
 * differs) and builds its index. Never throws; on error the caller keeps its last good index.
 */
export function load(bundle: unknown): Result<PolicyIndex> {
  const checked = validateBundle(bundle);
  if (!checked.ok) return checked;
  const policy = checked.value;
  const expected = policyHash(policy);
  if (expected !== policy.hash) {
    return {
      ok: false,
      errors: [
        {
          path: "hash",
          message: `hash mismatch: content hashes to ${expected}, not ${policy.hash}; recompile and push the bundle again`,
        },
      ],
    };
  }

  const exact = new Map<string, IndexedRule[]>();
  const wildcard = new Map<string, IndexedRule[]>();
  [...policy.rules].sort(byPolicyThenIndex).forEach((rule, order) => {
    const entry: IndexedRule = {
      rule,
      ref: ruleRef(rule),
      order,
      ports: new Set(rule.ports),
      hook: rule.hook,
      headers:
        rule.setHeaders === undefined && rule.removeHeaders === undefined
          ? undefined
          : { set: rule.setHeaders ?? [], remove: rule.removeHeaders ?? [] },
      methods: rule.methods === null ? null : new Set(rule.methods),
      // validateBundle already compiled every pattern, so none is dropped here.
      paths:
        rule.paths === null
          ? null
          : rule.paths.flatMap((p) => {
              const compiled = compilePathPattern(p);
              return compiled.ok ? [compiled.value] : [];
            }),
      credential: rule.credential === undefined ? undefined : policy.credentials[rule.credential],
    };
    for (const host of rule.hosts) {
      if (host.kind === "exact") push(exact, host.name, entry);
      else push(wildcard, host.suffix, entry);
    }
  });
  return { ok: true, value: { policy, exact, wildcard } };
}
