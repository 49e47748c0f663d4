import { expect } from "chai";
import {
  joinMessages,
  MAX_MESSAGE,
  mergeConditions,
  jsonEqual,
  statusUpdate,
  type DesiredCondition,
  type DesiredStatus,
} from "./conditions.ts";

const T0 = "2025-01-01T00:00:00Z";
const NOW = "2025-06-01T12:00:00Z";

function ready(status: "True" | "False", reason: string, message = "m"): DesiredCondition {
  return { type: "Ready", status, reason, message, observedGeneration: 2 };
}

const written = {
  observedGeneration: 2,
  conditions: [{ ...ready("True", "Synced"), lastTransitionTime: T0 }],
  selectedPods: 1,
  syncedPods: 1,
};

describe("statusUpdate: write on a real difference only", () => {
  type Case = { name: string; old: unknown; desired: DesiredStatus & Record<string, unknown>; want: unknown };
  const cases: Case[] = [
    {
      name: "status unchanged → no write (lastTransitionTime kept)",
      old: written,
      desired: {
        observedGeneration: 2,
        conditions: [ready("True", "Synced")],
        selectedPods: 1,
        syncedPods: 1,
      },
      want: undefined,
    },
    {
      name: "the same status in another key order → no write",
      old: { conditions: written.conditions, syncedPods: 1, observedGeneration: 2, selectedPods: 1 },
      desired: {
        syncedPods: 1,
        conditions: [ready("True", "Synced")],
        observedGeneration: 2,
        selectedPods: 1,
      },
      want: undefined,
    },
    {
      name: "a counter changes → write, condition time kept",
      old: written,
      desired: {
        observedGeneration: 2,
        conditions: [ready("True", "Synced")],
        selectedPods: 2,
        syncedPods: 2,
      },
      want: { ...written, selectedPods: 2, syncedPods: 2 },
    },
    {
      name: "reason changes, status does not → write, lastTransitionTime kept",
      old: written,
      desired: {
        observedGeneration: 2,
        conditions: [ready("True", "Compiled")],
        selectedPods: 0,
        syncedPods: 0,
      },
      want: {
        observedGeneration: 2,
        conditions: [{ ...ready("True", "Compiled"), lastTransitionTime: T0 }],
        selectedPods: 0,
        syncedPods: 0,
      },
    },
    {
      name: "status flips → write, lastTransitionTime is now",
      old: written,
      desired: { observedGeneration: 3, conditions: [ready("False", "InvalidSpec")] },
      want: {
        observedGeneration: 3,
        conditions: [{ ...ready("False", "InvalidSpec"), lastTransitionTime: NOW }],
      },
    },
    {
      name: "no status yet → write, lastTransitionTime is now",
      old: undefined,
      desired: { observedGeneration: 1, conditions: [ready("True", "SecretFound")] },
      want: {
        observedGeneration: 1,
        conditions: [{ ...ready("True", "SecretFound"), lastTransitionTime: NOW }],
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(statusUpdate(c.old, c.desired, NOW)).to.deep.equal(c.want);
    });
  }
});

describe("mergeConditions", () => {
  it("keeps conditions of other types in place and drops malformed ones", () => {
    const other = { type: "Audited", status: "True", reason: "X", message: "", lastTransitionTime: T0 };
    const old = [other, { type: "Ready" }, { ...ready("True", "Synced"), lastTransitionTime: T0 }];
    expect(mergeConditions(old, [ready("True", "Synced")], NOW)).to.deep.equal([
      other,
      { ...ready("True", "Synced"), lastTransitionTime: T0 },
    ]);
  });
});

describe("jsonEqual", () => {
  it("ignores key order and undefined fields, not array order", () => {
    expect(jsonEqual({ a: 1, b: [1, 2], c: undefined }, { b: [1, 2], a: 1 })).to.equal(true);
    expect(jsonEqual({ b: [1, 2] }, { b: [2, 1] })).to.equal(false);
  });
});

describe("joinMessages", () => {
  it("joins with '; ' and says how many were left out past the limit", () => {
    expect(joinMessages(["a", "b"])).to.equal("a; b");
    const many = Array.from({ length: 1000 }, (_, i) => `item ${String(i)} ${"x".repeat(20)}`);
    const got = joinMessages(many);
    expect(got.length).to.be.at.most(MAX_MESSAGE);
    expect(got).to.match(/; … and \d+ more$/);
    expect(joinMessages(["y".repeat(MAX_MESSAGE * 2), "z"])).to.have.length.at.most(MAX_MESSAGE);
  });
});
