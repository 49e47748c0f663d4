import { expect } from "chai";
import { compile } from "../../sidecar/policy/index.ts";
import { desiredState } from "./desired.ts";
import { grantsFromRoles, secretsRoleName, type SecretsRole, type SecretsRoleBinding } from "./rbac.ts";
import type { SidecarReport } from "./snapshot.ts";
import { allow, credential, inject, pod, policy, secret, snapshot } from "./test-fixtures.ts";

const a = policy("a", [inject("gh", "api.github.com", "github"), inject("gl", "gitlab.com", "gitlab")], {
  podSelector: { matchLabels: { app: "a" } },
});
const b = policy("b", [inject("gh", "api.github.com", "github"), inject("s3", "s3.amazonaws.com", "aws")], {
  podSelector: { matchLabels: { app: "b" } },
});
const open = policy("open", [allow("npm", "registry.npmjs.org")], {
  podSelector: { matchLabels: { app: "o" } },
});
const credentials = [credential("github"), credential("gitlab"), credential("aws"), credential("unused")];
const secrets = ["github-token", "gitlab-token", "aws-token", "unused-token"].map((n) => secret(n));

function hashOf(policies: unknown[]): string {
  const result = compile({ policies, credentials, defaultNamespace: "agents" });
  if (!result.ok) throw new Error("compile");
  return result.value.hash;
}

function role(sa: string, resourceNames: [string, ...string[]]): SecretsRole {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: {
      name: `airlock-secrets-${sa}`,
      namespace: "agents",
      labels: { "app.kubernetes.io/managed-by": "airlock", "airlock.dev/rbac": "sidecar-secrets" },
      annotations: { "airlock.dev/service-account": sa },
    },
    rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "watch"], resourceNames }],
  };
}

function binding(sa: string): SecretsRoleBinding {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: role(sa, ["x"]).metadata,
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `airlock-secrets-${sa}` },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: "agents" }],
  };
}

describe("desiredState: RBAC for the sidecars' Secrets", () => {
  it("Role lists exactly the referenced Secrets: sorted, de-duplicated, across the SA's pods", () => {
    const got = desiredState(
      snapshot({
        policies: [a, b, open],
        credentials,
        secrets,
        pods: [
          pod("p1", { app: "a" }),
          pod("p2", { app: "b" }),
          pod("p3", { app: "b" }, { serviceAccount: "" }),
        ],
      }),
    );
    expect(got.roles).to.deep.equal([
      role("agent", ["aws-token", "github-token", "gitlab-token"]),
      role("default", ["aws-token", "github-token"]),
    ]);
    expect(got.roleBindings).to.deep.equal([binding("agent"), binding("default")]);
  });

  it("no Role when an SA uses no Secret (empty resourceNames would grant ALL Secrets)", () => {
    const got = desiredState(
      snapshot({ policies: [open], credentials, secrets, pods: [pod("p", { app: "o" }), pod("q", {})] }),
    );
    expect(got.roles).to.deep.equal([]);
    expect(got.roleBindings).to.deep.equal([]);
  });

  it("no Role even when the Role read back from the cluster grants nothing", () => {
    const got = desiredState(
      snapshot({
        policies: [open],
        pods: [pod("p", { app: "o" })],
        grants: [{ serviceAccount: "agent", secrets: [] }],
      }),
    );
    expect(got.roles).to.deep.equal([]);
  });

  it("every Role grants get and watch only: never list", () => {
    const got = desiredState(
      snapshot({ policies: [a], credentials, secrets, pods: [pod("p", { app: "a" })] }),
    );
    expect(got.roles.map((r) => r.rules.map((rule) => rule.verbs))).to.deep.equal([[["get", "watch"]]]);
  });

  it("pods without the sidecar, or finished, get no Role", () => {
    const got = desiredState(
      snapshot({
        policies: [a],
        credentials,
        secrets,
        pods: [pod("p", { app: "a" }, { injected: false }), pod("q", { app: "a" }, { phase: "Failed" })],
      }),
    );
    expect(got.roles).to.deep.equal([]);
  });

  it("a Secret that does not exist yet is still granted, so the sidecar sees it appear", () => {
    const got = desiredState(
      snapshot({ policies: [a], credentials, secrets: [], pods: [pod("p", { app: "a" })] }),
    );
    expect(got.roles).to.deep.equal([role("agent", ["github-token", "gitlab-token"])]);
  });

  const converge: { name: string; sidecar: SidecarReport | undefined; want: [string, ...string[]] }[] = [
    {
      name: "kept while the pod has not reported its bundle",
      sidecar: undefined,
      want: ["github-token", "old-token"],
    },
    {
      name: "kept while the pod runs an older bundle",
      sidecar: { generation: 1, hash: "sha256:old" },
      want: ["github-token", "old-token"],
    },
    {
      name: "dropped once every pod of the SA reports its bundle",
      sidecar: { generation: 2, hash: hashOf([policy("gh", [inject("gh", "api.github.com", "github")])]) },
      want: ["github-token"],
    },
  ];
  for (const c of converge) {
    it(`make before break: a Secret granted today is ${c.name}`, () => {
      const got = desiredState(
        snapshot({
          policies: [policy("gh", [inject("gh", "api.github.com", "github")])],
          credentials,
          secrets,
          pods: [pod("p", {})],
          sidecars: c.sidecar === undefined ? {} : { p: c.sidecar },
          grants: [
            { serviceAccount: "agent", secrets: ["old-token"] },
            { serviceAccount: "gone", secrets: ["x"] },
          ],
        }),
      );
      expect(got.roles).to.deep.equal([role("agent", c.want)]);
    });
  }

  it("a pod held by an invalid policy keeps what its Role grants today, and gains nothing", () => {
    const bad = policy("bad", [inject("any", "*", "aws")], { podSelector: { matchLabels: { app: "a" } } });
    const got = desiredState(
      snapshot({
        policies: [a, bad],
        credentials,
        secrets,
        pods: [pod("p", { app: "a" })],
        grants: [{ serviceAccount: "agent", secrets: ["github-token"] }],
      }),
    );
    expect(got.roles).to.deep.equal([role("agent", ["github-token"])]);
  });
});

describe("secretsRoleName", () => {
  const long = "a".repeat(240);
  const cases: { name: string; sa: string; want: string }[] = [
    { name: "short name is kept", sa: "agent", want: "airlock-secrets-agent" },
    { name: "dotted name is a valid subdomain", sa: "team.agent", want: "airlock-secrets-team.agent" },
    {
      name: "too long: truncated with a hash suffix",
      sa: long,
      want: `airlock-secrets-${"a".repeat(226)}-${secretsRoleName(long).slice(-10)}`,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(secretsRoleName(c.sa)).to.equal(c.want);
    });
  }

  it("long names sharing a prefix stay distinct, valid and within 253 characters", () => {
    const names = [`${long}x`, `${long}y`, `${"b.".repeat(126)}b`, "Upper_Case"].map(secretsRoleName);
    expect(new Set(names).size).to.equal(4);
    for (const name of names) {
      expect(name.length).to.be.at.most(253);
      expect(name).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
    }
  });
});

describe("grantsFromRoles", () => {
  it("reads back what desired Roles grant and ignores Roles it does not own", () => {
    const foreign = { metadata: { name: "x", labels: {} }, rules: [{ resourceNames: ["y"] }] };
    expect(grantsFromRoles([role("b", ["s2", "s1"]), foreign, null, role("a", ["s3"])])).to.deep.equal([
      { serviceAccount: "a", secrets: ["s3"] },
      { serviceAccount: "b", secrets: ["s1", "s2"] },
    ]);
  });
});
