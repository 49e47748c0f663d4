import { expect } from "chai";
import { PLACEHOLDERS_ANNOTATION, STATUS_ANNOTATION, TRUST_BUNDLE_PATH } from "../../sidecar/constants.ts";
import { placeholderFor } from "../../sidecar/policy/index.ts";
import { injectPod } from "./inject.ts";
import { TOKEN_DIR, TRUST_DIR, TRUST_ENV } from "./injected.ts";
import { isObject, listOf, nameOf, objectOr, type JsonObject } from "./json.ts";
import { injectManifest } from "./manifests.ts";
import { FIXTURE_CONFIG, INJECTABLE_INPUTS, loadInput, REFUSAL_PATHS } from "./test-fixtures.ts";
import type { InjectionConfig, PodObject } from "./types.ts";

const config = FIXTURE_CONFIG;

function pod(spec: JsonObject, metadata: JsonObject = { name: "p" }): PodObject {
  return { apiVersion: "v1", kind: "Pod", metadata, spec };
}

function inject(input: PodObject, with_: InjectionConfig = config): JsonObject {
  const result = injectPod(input, with_);
  if (!result.ok) throw new Error(`refused: ${JSON.stringify(result.errors)}`);
  return result.pod;
}

const spec = (p: JsonObject): JsonObject => objectOr(p["spec"]) ?? {};
const names = (list: unknown): string[] => listOf(list).map(nameOf);
const container = (p: JsonObject, list: string, name: string): JsonObject => {
  const found = listOf(spec(p)[list]).find((c) => nameOf(c) === name);
  if (!isObject(found)) throw new Error(`no ${list} ${name}`);
  return found;
};
const AGENT = { name: "agent", image: "agent" };

describe("injectPod", () => {
  describe("what it adds", () => {
    const out = inject(
      pod({
        automountServiceAccountToken: true,
        initContainers: [{ name: "setup", image: "setup" }],
        containers: [AGENT],
        volumes: [{ name: "data", emptyDir: {} }],
      }),
    );
    const sidecar = container(out, "initContainers", "airlock-sidecar");
    const init = container(out, "initContainers", "airlock-init");
    const cases: { name: string; got: () => unknown; want: unknown }[] = [
      {
        name: "airlock-init first, the sidecar second, the pod's own init containers after",
        got: () => names(spec(out)["initContainers"]),
        want: ["airlock-init", "airlock-sidecar", "setup"],
      },
      {
        name: "the init container runs `airlock init`",
        got: () => init["args"],
        want: ["init", "--sidecar-uid", "15000"],
      },
      {
        name: "the init container is root with NET_ADMIN and NET_RAW only",
        got: () => objectOr(init["securityContext"]),
        want: {
          runAsUser: 0,
          runAsGroup: 0,
          runAsNonRoot: false,
          privileged: false,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
          seccompProfile: { type: "RuntimeDefault" },
        },
      },
      {
        name: "the sidecar is native (restartPolicy Always)",
        got: () => sidecar["restartPolicy"],
        want: "Always",
      },
      {
        name: "the sidecar reads the bundle keys from its env",
        got: () => [sidecar["args"], listOf(sidecar["env"]).find((e) => nameOf(e) === "AIRLOCK_BUNDLE_KEYS")],
        want: [
          ["sidecar", "--bundle-key-env", "AIRLOCK_BUNDLE_KEYS", "--trust-bundle", TRUST_BUNDLE_PATH],
          { name: "AIRLOCK_BUNDLE_KEYS", value: config.bundlePublicKeys },
        ],
      },
      {
        name: "the sidecar runs as 15000 with a read-only root and no capabilities",
        got: () => objectOr(sidecar["securityContext"]),
        want: {
          runAsUser: 15000,
          runAsGroup: 15000,
          runAsNonRoot: true,
          privileged: false,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"] },
          seccompProfile: { type: "RuntimeDefault" },
        },
      },
      {
        name: "the agent starts only after /readyz (the first bundle)",
        got: () => objectOr(objectOr(sidecar["startupProbe"])?.["httpGet"]),
        want: { path: "/readyz", port: 15090, scheme: "HTTP" },
      },
      {
        name: "the sidecar alone mounts the token; the trust volume read-write",
        got: () => sidecar["volumeMounts"],
        want: [
          { name: "airlock-trust", mountPath: TRUST_DIR },
          { name: "airlock-token", mountPath: TOKEN_DIR, readOnly: true },
          { name: "airlock-tmp", mountPath: "/tmp" },
        ],
      },
      {
        name: "volumes: the pod's own, then Airlock's",
        got: () => names(spec(out)["volumes"]),
        want: ["data", "airlock-trust", "airlock-token", "airlock-tmp"],
      },
      {
        name: "no container but the sidecar gets a token, even when the pod asked for one",
        got: () => spec(out)["automountServiceAccountToken"],
        want: false,
      },
      {
        name: "the pod's init containers are wired like the agent",
        got: () => container(out, "initContainers", "setup")["volumeMounts"],
        want: [{ name: "airlock-trust", mountPath: TRUST_DIR, readOnly: true }],
      },
      {
        name: "the status annotation records what was injected",
        got: () =>
          JSON.parse(
            String(objectOr(objectOr(out["metadata"])?.["annotations"])?.[STATUS_ANNOTATION]),
          ) as unknown,
        want: {
          version: 1,
          image: "airlock:golden",
          initContainers: ["airlock-init", "airlock-sidecar"],
          volumes: ["airlock-trust", "airlock-token", "airlock-tmp"],
        },
      },
    ];
    for (const c of cases)
      it(c.name, () => {
        expect(c.got()).to.deep.equal(c.want);
      });
  });

  describe("agent containers", () => {
    const cases: { name: string; agent: JsonObject; env?: unknown; drop?: unknown }[] = [
      {
        name: "the five CA variables replace the pod's values, valueFrom too, and keep their place",
        agent: {
          ...AGENT,
          env: [
            { name: "A", value: "1" },
            { name: "REQUESTS_CA_BUNDLE", valueFrom: { configMapKeyRef: { name: "c", key: "k" } } },
          ],
        },
        env: [
          { name: "A", value: "1" },
          { name: "REQUESTS_CA_BUNDLE", value: TRUST_BUNDLE_PATH },
          ...TRUST_ENV.filter((n) => n !== "REQUESTS_CA_BUNDLE").map((name) => ({
            name,
            value: TRUST_BUNDLE_PATH,
          })),
        ],
      },
      {
        name: "NET_ADMIN, NET_RAW, SETUID and SETGID are dropped",
        agent: AGENT,
        drop: ["NET_ADMIN", "NET_RAW", "SETUID", "SETGID"],
      },
      {
        name: "a drop list that names one keeps it and gains the others",
        agent: { ...AGENT, securityContext: { capabilities: { drop: ["MKNOD", "net_raw"] } } },
        drop: ["MKNOD", "net_raw", "NET_ADMIN", "SETUID", "SETGID"],
      },
      {
        name: "drop ALL already covers both",
        agent: { ...AGENT, securityContext: { capabilities: { drop: ["ALL"] } } },
        drop: ["ALL"],
      },
    ];
    it("privilege escalation is switched off (no setuid binary reaches the sidecar's UID)", () => {
      const agent = container(inject(pod({ containers: [AGENT] })), "containers", "agent");
      expect(objectOr(agent["securityContext"])?.["allowPrivilegeEscalation"]).to.equal(false);
    });
    it("a pod without a service account gets the default one (the projected token needs it)", () => {
      const spec = objectOr(inject(pod({ containers: [AGENT] }))["spec"]);
      expect(spec?.["serviceAccountName"]).to.equal("default");
      const named = objectOr(inject(pod({ containers: [AGENT], serviceAccountName: "coder" }))["spec"]);
      expect(named?.["serviceAccountName"]).to.equal("coder");
    });
    for (const c of cases)
      it(c.name, () => {
        const agent = container(inject(pod({ containers: [c.agent] })), "containers", "agent");
        if (c.env !== undefined) expect(agent["env"]).to.deep.equal(c.env);
        if (c.drop !== undefined)
          expect(objectOr(objectOr(agent["securityContext"])?.["capabilities"])?.["drop"]).to.deep.equal(
            c.drop,
          );
      });
  });

  describe("idempotence", () => {
    for (const file of INJECTABLE_INPUTS)
      it(`injecting ${file} twice equals injecting it once`, () => {
        for (const doc of loadInput(file)) {
          const once = injectManifest(doc, config);
          if (!once.ok) throw new Error(JSON.stringify(once.errors));
          const twice = injectManifest(once.manifest, config);
          expect(twice).to.deep.equal({ ok: true, manifest: once.manifest, changed: false });
        }
      });

    it("reports changed for a pod it injects and leaves its input untouched", () => {
      const input = pod({ containers: [AGENT] });
      const copy = structuredClone(input);
      expect(injectPod(input, config)).to.include({ ok: true, changed: true });
      expect(input).to.deep.equal(copy);
    });

    it("a new config re-injects in place: nothing duplicated, the new image everywhere", () => {
      const once = inject(pod({ containers: [AGENT] }));
      const again = inject(once, { ...config, image: "airlock:next" });
      expect(names(spec(again)["initContainers"])).to.deep.equal(["airlock-init", "airlock-sidecar"]);
      expect(again).to.deep.equal(inject(pod({ containers: [AGENT] }), { ...config, image: "airlock:next" }));
    });

    it("a forged status annotation buys nothing: impostor Airlock containers and volumes are replaced", () => {
      const forged = pod(
        {
          initContainers: [{ name: "airlock-sidecar", image: "evil/proxy" }],
          containers: [AGENT],
          volumes: [{ name: "airlock-trust", hostPath: { path: "/etc/ssl" } }],
        },
        { name: "p", annotations: { [STATUS_ANNOTATION]: "{}" } },
      );
      expect(inject(forged)).to.deep.equal(inject(pod({ containers: [AGENT] })));
    });
  });

  describe("refusals (test/golden/inject/input/refusals.yaml)", () => {
    const docs = loadInput("refusals.yaml");
    const byName = new Map(docs.map((doc) => [nameOf(objectOr(doc)?.["metadata"]), doc]));
    it("every expected refusal has its fixture and every fixture an expectation", () => {
      expect([...byName.keys()].sort()).to.deep.equal(Object.keys(REFUSAL_PATHS).sort());
    });
    for (const [name, paths] of Object.entries(REFUSAL_PATHS))
      it(`${name}: refused at ${paths.join(", ")}`, () => {
        const result = injectManifest(byName.get(name), config);
        if (result.ok) throw new Error("not refused");
        expect(result.errors.map((e) => e.path))
          .to.have.members(paths)
          .and.have.length(paths.length);
        for (const e of result.errors) expect(e.message, e.path).to.match(/; \S.*$/);
      });
  });

  describe("placeholders (airlock.dev/placeholders)", () => {
    const annotated = (value: unknown, namespace?: string): PodObject =>
      pod(
        {
          initContainers: [{ name: "setup", image: "setup" }],
          containers: [AGENT, { name: "tool", image: "t" }],
        },
        { name: "p", ...(namespace ? { namespace } : {}), annotations: { [PLACEHOLDERS_ANNOTATION]: value } },
      );
    const envOf = (p: JsonObject, list: string, name: string): Record<string, unknown> =>
      Object.fromEntries(
        listOf(container(p, list, name)["env"]).map((e) => [nameOf(e), objectOr(e)?.["value"]]),
      );

    it("sets each asked-for variable to the Credential's placeholder in every agent container, none in Airlock's", () => {
      const out = inject(annotated("OPENAI_API_KEY=openai, GITHUB_TOKEN=github", "agents"));
      for (const [list, name] of [
        ["containers", "agent"],
        ["containers", "tool"],
        ["initContainers", "setup"],
      ] as const)
        expect(envOf(out, list, name)).to.include({
          OPENAI_API_KEY: placeholderFor("agents", "openai"),
          GITHUB_TOKEN: placeholderFor("agents", "github"),
        });
      expect(JSON.stringify(container(out, "initContainers", "airlock-sidecar"))).not.to.include(
        "airlock_ph_",
      );
    });

    it("takes the namespace from the admission request when the pod has none yet", () => {
      const result = injectPod(annotated("KEY=openai"), config, "", "team-a");
      if (!result.ok) throw new Error(JSON.stringify(result.errors));
      expect(envOf(result.pod, "containers", "agent")["KEY"]).to.equal(placeholderFor("team-a", "openai"));
    });

    for (const bad of ["KEY", "1KEY=openai", "KEY=Open_AI", "KEY=a=b", 7])
      it(`refuses ${JSON.stringify(bad)} at the annotation`, () => {
        const result = injectPod(annotated(bad, "agents"), config);
        expect(result.ok).to.equal(false);
        if (!result.ok)
          expect(result.errors.map((e) => e.path)).to.include(
            `metadata.annotations[${PLACEHOLDERS_ANNOTATION}]`,
          );
      });
  });

  it("`at` prefixes every path (a workload's template)", () => {
    const result = injectPod({ spec: { hostPID: true, containers: [AGENT] } }, config, "spec.template");
    expect(result).to.deep.equal({
      ok: false,
      errors: [
        {
          path: "spec.template.spec.hostPID",
          message:
            "the agent could reach the sidecar's processes through the node's PID namespace; remove hostPID",
        },
      ],
    });
  });
});
