// Static conflict detection: two rules that decide() would rank equal for some request but that
// attach different credentials. Reported, not fatal — decide() blocks such requests anyway,
// and one team's mistake must not take down another team's policy.

import { hostPatternString } from "./host.ts";
import type { CompiledRule, Conflict } from "./types.ts";

/** `namespace/policy#rule`: how a rule is named in conflicts and messages. */
export function ruleRef(rule: Pick<CompiledRule, "policy" | "rule">): string {
  return `${rule.policy}#${rule.rule}`;
}

function overlaps<T>(a: readonly T[] | null, b: readonly T[] | null): boolean {
  return a === null || b === null || a.some((item) => b.includes(item));
}

function samePathRank(a: readonly string[] | null, b: readonly string[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.some((p) => b.includes(p));
}

/**
 * Pairs of credential rules (in `rules` order) sharing an identical host pattern, a port, a
 * method and a path rank (both any-path, or an identical pattern) but naming different credentials.
 */
export function findConflicts(rules: readonly CompiledRule[]): Conflict[] {
  const byHost = new Map<string, number[]>();
  rules.forEach((rule, i) => {
    if (rule.credential === undefined) return;
    for (const host of rule.hosts) {
      const key = hostPatternString(host);
      const list = byHost.get(key) ?? [];
      if (!list.includes(i)) list.push(i);
      byHost.set(key, list);
    }
  });

  const found = new Map<string, { a: number; b: number; conflict: Conflict }>();
  for (const [host, indexes] of byHost) {
    indexes.forEach((ia, k) => {
      for (const ib of indexes.slice(k + 1)) {
        const a = rules[ia];
        const b = rules[ib];
        const pair = `${ia}:${ib}`;
        if (a === undefined || b === undefined || found.has(pair)) continue;
        if (a.credential === b.credential) continue;
        if (!overlaps(a.ports, b.ports) || !overlaps(a.methods, b.methods) || !samePathRank(a.paths, b.paths))
          continue;
        const message =
          `rules ${ruleRef(a)} and ${ruleRef(b)} both match host "${host}" at the same precedence but attach ` +
          `different credentials (${a.credential ?? ""}, ${b.credential ?? ""}); requests matching both are blocked ` +
          `with RuleConflict; give one rule a more specific path, or make both use one credential`;
        found.set(pair, { a: ia, b: ib, conflict: { rules: [ruleRef(a), ruleRef(b)], message } });
      }
    });
  }
  return [...found.values()].sort((x, y) => x.a - y.a || x.b - y.b).map((entry) => entry.conflict);
}
