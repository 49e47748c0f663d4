import { expect } from "chai";
import { labelSelectorMatches } from "./label-selector.ts";
import { policy } from "./test-fixtures.ts";
import { validatePolicy } from "./validate-policy.ts";
import type { LabelSelector } from "./manifest-types.ts";

describe("labelSelectorMatches", () => {
  const labels = { app: "coding-agent", env: "prod", team: "" };
  const cases: { name: string; selector: LabelSelector; want: boolean }[] = [
    { name: "{} selects every pod", selector: {}, want: true },
    {
      name: "matchLabels all equal",
      selector: { matchLabels: { app: "coding-agent", env: "prod" } },
      want: true,
    },
    {
      name: "matchLabels one differs",
      selector: { matchLabels: { app: "coding-agent", env: "dev" } },
      want: false,
    },
    { name: "matchLabels key missing", selector: { matchLabels: { tier: "web" } }, want: false },
    {
      name: "matchLabels empty value equals empty label",
      selector: { matchLabels: { team: "" } },
      want: true,
    },
    {
      name: "In with the value",
      selector: { matchExpressions: [{ key: "env", operator: "In", values: ["dev", "prod"] }] },
      want: true,
    },
    {
      name: "In without the value",
      selector: { matchExpressions: [{ key: "env", operator: "In", values: ["dev"] }] },
      want: false,
    },
    {
      name: "In on a missing key",
      selector: { matchExpressions: [{ key: "tier", operator: "In", values: ["web"] }] },
      want: false,
    },
    {
      name: "NotIn with the value",
      selector: { matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }] },
      want: false,
    },
    {
      name: "NotIn on a missing key",
      selector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["web"] }] },
      want: true,
    },
    {
      name: "Exists on a present key",
      selector: { matchExpressions: [{ key: "team", operator: "Exists" }] },
      want: true,
    },
    {
      name: "Exists on a missing key",
      selector: { matchExpressions: [{ key: "tier", operator: "Exists" }] },
      want: false,
    },
    {
      name: "DoesNotExist on a missing key",
      selector: { matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] },
      want: true,
    },
    {
      name: "DoesNotExist on a present key",
      selector: { matchExpressions: [{ key: "app", operator: "DoesNotExist" }] },
      want: false,
    },
    {
      name: "labels and expressions are ANDed",
      selector: {
        matchLabels: { app: "coding-agent" },
        matchExpressions: [{ key: "env", operator: "In", values: ["dev"] }],
      },
      want: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(labelSelectorMatches(c.selector, labels)).to.equal(c.want);
    });
  }
});

function withSelector(podSelector: unknown): unknown {
  return policy("p", [], { podSelector });
}

describe("validatePolicy refuses a podSelector with", () => {
  const cases: { name: string; manifest: unknown; want: { path: string; includes: string }[] }[] = [
    {
      name: "an unknown field",
      manifest: withSelector({ matchLabel: {} }),
      want: [{ path: "spec.podSelector.matchLabel", includes: "did you mean matchLabels?" }],
    },
    {
      name: "a non-string label value",
      manifest: withSelector({ matchLabels: { app: 1 } }),
      want: [{ path: "spec.podSelector.matchLabels.app", includes: "quote the value" }],
    },
    {
      name: "an invalid label value under a prefixed key",
      manifest: withSelector({ matchLabels: { "app.kubernetes.io/name": "a b" } }),
      want: [{ path: 'spec.podSelector.matchLabels["app.kubernetes.io/name"]', includes: "label value" }],
    },
    {
      name: "an invalid label key",
      manifest: withSelector({ matchLabels: { "-app": "x" } }),
      want: [{ path: 'spec.podSelector.matchLabels["-app"]', includes: "label key" }],
    },
    {
      name: "an unknown operator",
      manifest: withSelector({ matchExpressions: [{ key: "a", operator: "Equals", values: ["x"] }] }),
      want: [
        {
          path: "spec.podSelector.matchExpressions[0].operator",
          includes: "In, NotIn, Exists, DoesNotExist",
        },
      ],
    },
    {
      name: "In without values",
      manifest: withSelector({ matchExpressions: [{ key: "a", operator: "In" }] }),
      want: [{ path: "spec.podSelector.matchExpressions[0].values", includes: "must be a list" }],
    },
    {
      name: "NotIn with empty values",
      manifest: withSelector({ matchExpressions: [{ key: "a", operator: "NotIn", values: [] }] }),
      want: [{ path: "spec.podSelector.matchExpressions[0].values", includes: "needs at least one value" }],
    },
    {
      name: "Exists with values",
      manifest: withSelector({ matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] }),
      want: [{ path: "spec.podSelector.matchExpressions[0].values", includes: "remove values" }],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = validatePolicy(c.manifest);
      if (got.ok) throw new Error("expected errors");
      expect(got.errors.map((e) => e.path)).to.deep.equal(c.want.map((w) => w.path));
      got.errors.forEach((e, i) => {
        expect(e.message).to.include(c.want[i]?.includes);
      });
    });
  }
});
