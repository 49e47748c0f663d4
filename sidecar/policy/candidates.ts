// Finding and ranking the rules that match a host and port: shared by decide() and
// decideTunnel() so a tunnel and the requests inside it can never disagree on precedence.

import type { IndexedRule, PolicyIndex } from "./load.ts";

/** A rule that matched, with the ranks decide() orders by (higher first). */
export interface Candidate {
  readonly entry: IndexedRule;
  /** EXACT_HOST_RANK for an exact host, else the number of labels of the matched wildcard suffix. */
  readonly hostRank: number;
  /** Length of the longest of the rule's path patterns that matched; 0 for a rule without paths. */
  readonly pathRank: number;
}

/** Above any wildcard's label count (a DNS name has at most 127 labels). */
export const EXACT_HOST_RANK = 1000;

/** A rule whose host and port match, with its best host rank. */
export interface HostMatch {
  readonly entry: IndexedRule;
  readonly hostRank: number;
}

/**
 * Rules listing canonical DNS name `name` (exactly or under a wildcard) and `port`, each once with
 * its best host rank. Exact lookups are one map hit; wildcards one hit per label of `name`. A
 * plain array: matches are few (a rule is looked for in it only when it lists a wildcard too).
 */
export function hostCandidates(index: PolicyIndex, name: string, port: number): HostMatch[] {
  const found: HostMatch[] = [];
  for (const entry of index.exact.get(name) ?? []) {
    if (entry.ports.has(port)) found.push({ entry, hostRank: EXACT_HOST_RANK });
  }
  // Longest suffix first, so the first rank recorded for a rule is its best. The suffix after the
  // k-th dot is what dropping k labels leaves; its rank is the labels left.
  let labels = 1;
  for (let at = name.indexOf("."); at !== -1; at = name.indexOf(".", at + 1)) labels++;
  let left = labels;
  for (let dot = name.indexOf("."); dot !== -1; dot = name.indexOf(".", dot + 1)) {
    left--;
    const entries = index.wildcard.get(name.slice(dot + 1));
    if (entries === undefined) continue;
    for (const entry of entries) {
      if (entry.ports.has(port) && !found.some((match) => match.entry === entry))
        found.push({ entry, hostRank: left });
    }
  }
  return found;
}

/** decide()'s order: host rank, path rank, credential before none, then (policy id, rule index). */
export function compareCandidates(a: Candidate, b: Candidate): number {
  const credential = (c: Candidate): number => (c.entry.credential === undefined ? 0 : 1);
  return (
    b.hostRank - a.hostRank ||
    b.pathRank - a.pathRank ||
    credential(b) - credential(a) ||
    a.entry.order - b.entry.order
  );
}
