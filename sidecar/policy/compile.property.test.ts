// Properties of compile(): manifests come from users and the API server in any shape, so compile
// must answer every input with a result, and every refusal must say where and what is wrong.
import { expect } from "chai";
import fc from "fast-check";
import { assertProperty, PROPERTY_TIMEOUT_MS } from "../../test/helpers/property.ts";
import { compile } from "./compile.ts";

/** Mostly `valid`, now and then any JSON value in its place (the near-miss a user writes). */
function mostly<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ arbitrary: valid, weight: 100 }, { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 });
}

/** One of `good` mostly, one of `bad` sometimes: each field is usually right, as in real manifests. */
function pick<T>(good: readonly T[], bad: readonly T[] = []): fc.Arbitrary<unknown> {
  if (bad.length === 0) return mostly(fc.constantFrom(...good));
  return mostly(
    fc.oneof(
      { arbitrary: fc.constantFrom(...good), weight: 30 },
      { arbitrary: fc.constantFrom(...bad), weight: 1 },
    ),
  );
}

/** A record with each field from `model`; now and then one key dropped or an unknown one added. */
function manifestRecord(model: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(model);
  const edit = fc.oneof(
    { arbitrary: fc.constant(null), weight: 40 },
    { arbitrary: fc.constantFrom(...keys).map((drop) => ({ drop })), weight: 1 },
    { arbitrary: fc.constantFrom("extra", "Hosts", "__proto__", "").map((add) => ({ add })), weight: 1 },
  );
  return fc.tuple(fc.record(model), edit).map(([record, change]) => {
    const out: Record<string, unknown> = { ...record };
    if (change !== null && "drop" in change) Reflect.deleteProperty(out, change.drop);
    if (change !== null && "add" in change)
      Object.defineProperty(out, change.add, { value: 1, enumerable: true });
    return out;
  });
}

/** A list of `good` items (unique more often than not), with a `bad` one now and then. */
function list<T>(good: readonly T[], bad: readonly T[], maxLength = 3): fc.Arbitrary<unknown> {
  return mostly(
    fc.oneof(
      { arbitrary: fc.uniqueArray(fc.constantFrom(...good), { minLength: 1, maxLength }), weight: 15 },
      { arbitrary: fc.array(pick(good, bad), { maxLength: maxLength + 1 }), weight: 1 },
    ),
  );
}

const CREDENTIAL_NAMES = ["github", "api", "missing"];
const GOOD_HOSTS = [
  "api.github.com",
  "github.com",
  "*.example.com",
  "api.example.com",
  "xn--bcher-kva.example",
];
const BAD_HOSTS = [
  "*", "*.com", "a.*.com", "API.github.com", "github.com.", "10.0.0.1", "[::1]", "a.com:443",
  "http://a.com", "exa mple.com", "", "1.2.3",
]; // prettier-ignore

const name = pick(
  ["agent", "github", "api", "coding-agent", "a"],
  ["", "Agent", "-x", "a_b", "a.b", "x".repeat(64)],
);
const metadata = manifestRecord({
  name,
  namespace: pick(["agents", "other"], ["", "Agents"]),
  generation: mostly(fc.nat({ max: 5 })),
});

const podSelector = mostly(
  fc.oneof(
    fc.constant({}),
    fc.record({
      matchLabels: fc.dictionary(
        fc.oneof({ arbitrary: fc.constantFrom("app", "team"), weight: 30 }, fc.constantFrom("a/b/c", "")),
        pick(["x", "coding-agent"], ["-", "a b"]),
        { maxKeys: 2 },
      ),
    }),
    fc.record({
      matchExpressions: fc.array(
        fc.oneof(
          manifestRecord({
            key: pick(["team", "tier", "example.com/x"], ["", "a/b/c"]),
            operator: pick(["In", "NotIn"], ["in", "Exists"]),
            values: list(["research", "sandbox"], [""]),
          }),
          manifestRecord({
            key: pick(["team", "tier", "example.com/x"], ["", "a/b/c"]),
            operator: pick(["Exists", "DoesNotExist"], ["In"]),
          }),
        ),
        { maxLength: 3 },
      ),
    }),
  ),
);

const rule = manifestRecord({
  name,
  hosts: list(GOOD_HOSTS, BAD_HOSTS),
  ports: list([443, 80, 8080, 1, 65535], [0, 65536, -1, 1.5, "443"]),
  methods: list(
    ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"],
    ["CONNECT", "TRACE", "get", ""],
  ),
  paths: list(
    ["/repos/**", "/user", "/a/*/b", "/**", "/"],
    ["repos", "/a/../b", "/%2e", "/%41", "/a?b", "/***", "/a**"],
  ),
  credential: pick(CREDENTIAL_NAMES),
});

const egressPolicy = manifestRecord({
  apiVersion: pick(["airlock.dev/v1alpha1"], ["airlock.dev/v1", "v1"]),
  kind: pick(["EgressPolicy"], ["Credential"]),
  metadata,
  spec: manifestRecord({
    podSelector,
    mode: pick(["Enforce", "Audit"], ["enforce"]),
    egress: mostly(fc.array(rule, { maxLength: 4 })),
  }),
});

const injection = mostly(
  fc.oneof(
    fc.constant({}),
    fc.constant({ header: { name: "X-Key" }, queryParam: { name: "key" } }),
    {
      arbitrary: manifestRecord({
        header: manifestRecord({
          name: pick(["Authorization", "x-api-key"], ["Host", "bad name", ""]),
          valuePrefix: pick(["Bearer ", ""], ["a\r\nb"]),
        }),
      }),
      weight: 10,
    },
    {
      arbitrary: manifestRecord({
        basicAuth: manifestRecord({ username: pick(["x-access-token"], ["a:b", ""]) }),
      }),
      weight: 10,
    },
    {
      arbitrary: manifestRecord({ queryParam: manifestRecord({ name: pick(["key"], ["", "a=b"]) }) }),
      weight: 10,
    },
  ),
);

const credential = manifestRecord({
  apiVersion: pick(["airlock.dev/v1alpha1"], ["v1"]),
  kind: pick(["Credential"], ["EgressPolicy"]),
  metadata: manifestRecord({ name: pick(CREDENTIAL_NAMES), namespace: pick(["agents", "other"], [""]) }),
  spec: manifestRecord({
    secretRef: manifestRecord({ name: pick(["token", "github-token"], ["", "T"]), key: pick(["token"]) }),
    injection,
    hosts: list(GOOD_HOSTS, BAD_HOSTS),
  }),
});

/** Manifests shaped like crds/samples, each field now and then wrong, missing or extra. */
const nearValidInput = fc.record(
  {
    policies: mostly(fc.array(egressPolicy, { maxLength: 3 })),
    credentials: mostly(fc.array(credential, { maxLength: 3 })),
    defaultNamespace: fc.constantFrom("agents", "", "other"),
  },
  { requiredKeys: ["policies", "credentials"] },
);

// The first error without a string `path` and a non-empty `message` (or an empty error list);
// plain checks, not chai, because this runs on every case and every error.
function unlocatedError(result: ReturnType<typeof compile>, rootMayBeEmpty: boolean): unknown {
  if (result.ok)
    return typeof result.value.hash === "string" && result.value.hash !== "" ? undefined : result;
  if (!Array.isArray(result.errors) || result.errors.length === 0) return result;
  return result.errors.find(
    (e) =>
      typeof e.path !== "string" ||
      (e.path === "" && !rootMayBeEmpty) ||
      typeof e.message !== "string" ||
      e.message === "",
  );
}

function checkCompile(input: unknown, rootMayBeEmpty = false): void {
  const result = compile(input as Parameters<typeof compile>[0]);
  expect(unlocatedError(result, rootMayBeEmpty)).to.equal(undefined);
}

describe("compile: properties", function () {
  this.timeout(PROPERTY_TIMEOUT_MS);

  it("never throws, and locates every error, on near-valid EgressPolicy/Credential manifests", function () {
    assertProperty(
      fc.property(nearValidInput, (input) => {
        checkCompile(input);
      }),
    );
  });

  it("never throws, and locates every error, on JSON values as policies and credentials", function () {
    const manifests = fc.oneof(fc.jsonValue(), fc.array(fc.jsonValue()));
    assertProperty(
      fc.property(manifests, manifests, (policies, credentials) => {
        checkCompile({ policies, credentials });
      }),
    );
  });

  it("never throws, and locates every error, on arbitrary values as policies and credentials", function () {
    const manifests = fc.oneof(fc.anything(), fc.array(fc.anything()));
    assertProperty(
      fc.property(manifests, manifests, (policies, credentials) => {
        checkCompile({ policies, credentials });
      }),
    );
  });

  // Only here may a path be "": the one error about the input itself, which has no field to name.
  it('never throws on an arbitrary value as the whole input; only a non-object input has path ""', function () {
    assertProperty(
      fc.property(fc.anything(), (input) => {
        const isObject = typeof input === "object" && input !== null && !Array.isArray(input);
        checkCompile(input, !isObject);
      }),
    );
  });
});
