// The world of test/operator.test.ts, every part a real process: a namespace on the shared control
// plane, an HTTPS echo upstream, two agent pods (a sidecar each) and operator replicas op-a and
// op-b. Besides reading it (requests through a sidecar, .status, the Lease, /metrics), it brings
// itself to a known state (`arrange…`), so that each test can run on its own (mocha -g).
import { expect } from "chai";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEchoUpstream, type EchoUpstream } from "../../sidecar/demo/echo-upstream.ts";
import {
  startAgentPod,
  startOperatorProcess,
  stopProcess,
  type AgentPodWorld,
  type OperatorProcess,
  type SidecarProcess,
} from "./agent-pods.ts";
import { installAirlockCrds, sharedControlPlane, type ControlPlane } from "./control-plane.ts";
import { curl } from "./curl.ts";
import { eventually, eventuallyEqual } from "./eventually.ts";
import {
  agentPodWorld,
  kubectlFor,
  operatorFiles,
  operatorObjects,
  prepareOperatorNamespace,
  type Kubectl,
  type OperatorObjects,
} from "./operator-kit.ts";
import { connect, parseResponse, readUntil } from "./raw.ts";

/** The operators' Lease period; the leader election retries every 2 s. */
export const LEASE_SECONDS = 5;
/** The operator replicas' identities. */
export const REPLICAS = ["op-a", "op-b"] as const;

/** What one request through a sidecar's explicit proxy came to. */
export interface Outcome {
  status: number;
  /** The refusal's reason (403 only). */
  reason?: string;
  /** The API key the upstream received, when this request reached it. */
  sent?: string;
}

/** The Ready condition of an EgressPolicy, and whether it is for the current generation. */
export interface PolicyReady {
  status: string | undefined;
  reason: string | undefined;
  syncedPods: number | undefined;
  current: boolean;
  message: string;
}

interface StoredPolicy {
  metadata: { generation: number };
  status?: {
    syncedPods?: number;
    conditions?: {
      type: string;
      status: string;
      reason: string;
      message: string;
      observedGeneration?: number;
    }[];
  };
}

// The refusal body of a sidecar; the policy may change between curl's request and refusedConnect's:
// reported, and retried by the caller.
function reasonOf(body: string): string {
  try {
    return (JSON.parse(body) as { reason: string }).reason;
  } catch {
    return `not a refusal body: ${JSON.stringify(body)}`;
  }
}

/** The value of series `series` (name and labels, exactly as exposed) in a /metrics text. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The sum of every series of a /metrics text that starts with `prefix` (e.g. `name{kind="X",`). */
export function sampleSum(text: string, prefix: string): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(prefix))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** The operator test's namespace, processes and the ways to read and arrange them. */
export class OperatorWorld {
  readonly ns = `airlock-op-${randomBytes(3).toString("hex")}`;
  readonly dir = mkdtempSync(join(tmpdir(), "airlock-op-"));
  readonly files = { ...operatorFiles(this.dir), otherKey: join(this.dir, "other-bundle-key.pem") };
  readonly sidecars: SidecarProcess[] = [];
  readonly operators = new Map<string, OperatorProcess>();
  readonly kubectl: Kubectl["kubectl"];
  readonly apply: Kubectl["apply"];
  readonly objects: OperatorObjects;
  #cp: ControlPlane | undefined;
  #upstream: EchoUpstream | undefined;
  #pods: AgentPodWorld | undefined;

  constructor() {
    ({ kubectl: this.kubectl, apply: this.apply } = kubectlFor(() => this.cp));
    this.objects = operatorObjects(this.ns);
  }

  get cp(): ControlPlane {
    if (this.#cp === undefined) throw new Error("the operator world is not started");
    return this.#cp;
  }

  get upstream(): EchoUpstream {
    if (this.#upstream === undefined) throw new Error("the operator world is not started");
    return this.#upstream;
  }

  /** The namespace, the upstream, pods agent-0 and agent-1 (127.0.0.2, .3); op-a leads, op-b stands by. */
  async start(): Promise<void> {
    this.#cp = await sharedControlPlane();
    await installAirlockCrds(this.cp);
    await prepareOperatorNamespace(this.cp, this.ns, this.files, generateKeyPairSync("ed25519"));
    const resolve = ["api.example.test:127.0.0.1", "other.example.test:127.0.0.1"];
    this.#pods = agentPodWorld(this.cp, this.ns, this.dir, this.files, resolve);
    writeFileSync(
      this.files.otherKey,
      generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }),
    );
    this.#upstream = await startEchoUpstream({ tls: true });
    writeFileSync(this.files.upstreamCa, this.upstream.caPem);
    for (const [i, ip] of ["127.0.0.2", "127.0.0.3"].entries())
      this.sidecars.push(await this.addPod(`agent-${String(i)}`, ip, this.files.bundleKey));
    await this.startOperator("op-a");
    await eventuallyEqual(() => this.leaseHolder(), "op-a", { what: "op-a takes the Lease" });
    await this.startOperator("op-b");
  }

  /** Kills every operator, stops the sidecars and the upstream. */
  async stop(): Promise<void> {
    await Promise.all([...this.operators.values()].map((o) => stopProcess(o.command, "SIGKILL")));
    await Promise.all(this.sidecars.map((s) => stopProcess(s.command)));
    await this.#upstream?.close();
  }

  sidecar(i: number): SidecarProcess {
    const s = this.sidecars[i];
    if (s === undefined) throw new Error(`no sidecar ${String(i)}`);
    return s;
  }

  operator(identity: string): OperatorProcess {
    const o = this.operators.get(identity);
    if (o === undefined) throw new Error(`no operator ${identity}`);
    return o;
  }

  /** Starts `airlock sidecar` for a new pod `pod` (labelled app=agent) on `ip`, trusting `bundleKey`. */
  addPod(pod: string, ip: string, bundleKey: string): Promise<SidecarProcess> {
    if (this.#pods === undefined) throw new Error("the operator world is not started");
    return startAgentPod(this.#pods, pod, ip, bundleKey);
  }

  /** Starts replica `identity` (resync every 2 s). */
  async startOperator(identity: string): Promise<void> {
    this.operators.set(
      identity,
      await startOperatorProcess([
        ...["--kubeconfig", this.files.operatorKubeconfig, "--signing-key", this.files.signingKey],
        ...["--lease-namespace", this.ns, "--identity", identity],
        ...["--control-port", String(this.#pods?.controlPort)],
        ...["--resync", "2", "--lease-seconds", String(LEASE_SECONDS)],
      ]),
    );
  }

  /** Whether replica `identity` was started and has not exited. */
  running(identity: string): boolean {
    const child = this.operators.get(identity)?.command.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  // Policies: `api` injects Credential `api` (or not); `other` allows other.example.test.
  apiPolicy(credential = true): Record<string, unknown> {
    const api = { name: "api", hosts: ["api.example.test"], ports: [this.upstream.port] };
    return this.objects.policy("agent", [credential ? { ...api, credential: "api" } : api]);
  }

  otherPolicy(): Record<string, unknown> {
    return this.objects.policy("agent", [
      { name: "other", hosts: ["other.example.test"], ports: [this.upstream.port] },
    ]);
  }

  /** A policy whose path pattern does not compile, at spec.egress[0].paths[0]. */
  brokenPolicy(): Record<string, unknown> {
    return this.objects.policy("broken", [
      { name: "x", hosts: ["other.example.test"], ports: [this.upstream.port], paths: ["/a/***"] },
    ]);
  }

  async #refusedConnect(s: SidecarProcess, host: string): Promise<string> {
    const url = new URL(s.proxy);
    const socket = await connect(Number(url.port), url.hostname);
    const target = `${host}:${String(this.upstream.port)}`;
    socket.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`);
    const text = await readUntil(socket, () => false);
    socket.destroy();
    return parseResponse(text).body;
  }

  /** One request through sidecar `s` to `https://HOST:PORT/x`. */
  async request(s: SidecarProcess, host: string): Promise<Outcome> {
    const before = this.upstream.received.length;
    const res = await curl([
      "-x",
      s.proxy,
      "--cacert",
      s.caPath,
      `https://${host}:${String(this.upstream.port)}/x`,
    ]);
    const sent =
      this.upstream.received.length > before
        ? this.upstream.received.at(-1)?.headers["x-api-key"]
        : undefined;
    // A refused CONNECT carries the reason in the CONNECT response, which curl does not print.
    const body = res.status === 403 && res.body === "" ? await this.#refusedConnect(s, host) : res.body;
    return {
      status: res.status,
      ...(res.status === 403 ? { reason: reasonOf(body) } : {}),
      ...(typeof sent === "string" ? { sent } : {}),
    };
  }

  /** Waits until a request to `host` through every sidecar comes to `want`. */
  async everySidecar(host: string, want: Outcome): Promise<void> {
    for (const s of this.sidecars)
      await eventuallyEqual(() => this.request(s, host), want, { what: `${s.pod} → ${host}` });
  }

  /** The Ready condition of EgressPolicy `name`. */
  async ready(name: string): Promise<PolicyReady> {
    const args = ["-n", this.ns, "get", "egresspolicy", name, "-o", "json"];
    const obj = JSON.parse(await this.kubectl(args)) as StoredPolicy;
    const c = obj.status?.conditions?.find((x) => x.type === "Ready");
    return {
      status: c?.status,
      reason: c?.reason,
      syncedPods: obj.status?.syncedPods,
      current: c?.observedGeneration === obj.metadata.generation,
      message: c?.message ?? "",
    };
  }

  /** ready(name) without the message. */
  async readyOf(name: string): Promise<Omit<PolicyReady, "message">> {
    const { status, reason, syncedPods, current } = await this.ready(name);
    return { status, reason, syncedPods, current };
  }

  /** Waits until EgressPolicy `name` is Ready, Synced on `syncedPods` pods, for its generation. */
  async synced(name: string, syncedPods: number): Promise<void> {
    const want = { status: "True", reason: "Synced", syncedPods, current: true };
    await eventuallyEqual(() => this.readyOf(name), want, { what: `${name} Synced` });
  }

  /** The Ready reason of Credential `api`. */
  async credentialReason(): Promise<string> {
    const jsonpath = 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}';
    return (await this.kubectl(["-n", this.ns, "get", "credential", "api", "-o", jsonpath])).trim();
  }

  /** The holder and resourceVersion of the airlock-operator Lease ("" when there is none). */
  async lease(): Promise<{ holder: string; version: string }> {
    const jsonpath = "jsonpath={.spec.holderIdentity} {.metadata.resourceVersion}";
    const args = ["-n", this.ns, "get", "lease", "airlock-operator", "--ignore-not-found", "-o", jsonpath];
    const [holder = "", version = ""] = (await this.kubectl(args)).trim().split(" ");
    return { holder, version };
  }

  async leaseHolder(): Promise<string> {
    return (await this.lease()).holder;
  }

  /** Replica `identity`'s /metrics text. */
  async metrics(identity: string): Promise<string> {
    return (await fetch(`${this.operator(identity).metrics}/metrics`)).text();
  }

  /**
   * Waits until `leader` has reconciled `passes` more times over: every EgressPolicy of the
   * cluster once per pass (a resync passes over every namespace holding one), counted by
   * airlock_operator_reconcile_total.
   */
  async reconcilePasses(leader: string, passes: number): Promise<void> {
    const reconciled = async () =>
      sampleSum(await this.metrics(leader), 'airlock_operator_reconcile_total{kind="EgressPolicy",');
    const policies = (await this.kubectl(["get", "egresspolicies", "-A", "-o", "name"])).split("\n");
    const want = (await reconciled()) + passes * policies.filter(Boolean).length;
    await eventually(async () => expect(await reconciled()).to.be.at.least(want), {
      timeoutMs: 30_000,
      what: `${String(passes)} reconcile passes of ${leader}`,
    });
  }

  /**
   * The replica holding the Lease and the other one, started if it is not running and then known
   * to stand by (see startStandby).
   */
  async leaderAndStandby(): Promise<{ leader: string; standby: string }> {
    const leader = await eventually(
      async () => {
        const holder = await this.leaseHolder();
        expect(REPLICAS.filter((r) => r === holder && this.running(r))).to.deep.equal([holder]);
        return holder;
      },
      { what: "a running replica holds the Lease" },
    );
    const standby = leader === "op-a" ? "op-b" : "op-a";
    if (!this.running(standby)) await this.startStandby(standby, leader);
    return { leader, standby };
  }

  /**
   * Starts replica `identity` and waits until it campaigns for the Lease (its log says so; the
   * first look follows at once) and `leader` has renewed the Lease after that: still its holder.
   */
  async startStandby(identity: string, leader: string): Promise<void> {
    await this.startOperator(identity);
    const command = this.operator(identity).command;
    await eventually(() => expect(command.stdout()).to.include("campaigning for the Lease"), {
      what: `${identity} campaigns for the Lease`,
    });
    const seen = await this.lease();
    await eventually(
      async () => {
        const now = await this.lease();
        expect(now.holder).to.equal(leader);
        expect(now.version).to.not.equal(seen.version);
      },
      { what: `${leader} renews the Lease while ${identity} stands by` },
    );
  }

  /** No policy "broken"; Secret, Credential and the api policy in place: every sidecar injects `value`. */
  async arrangeApiPolicy(value: string): Promise<void> {
    await this.kubectl(["-n", this.ns, "delete", "egresspolicy", "broken", "--ignore-not-found"]);
    await this.apply(this.objects.secret(value));
    await this.apply(this.objects.credential());
    await this.apply(this.apiPolicy());
    await this.everySidecar("api.example.test", { status: 200, sent: value });
    await this.synced("agent", 2);
    await eventuallyEqual(() => this.credentialReason(), "SecretFound", { what: "Credential api found" });
  }

  /** No policy "broken"; only other.example.test allowed: every sidecar lets it through. */
  async arrangeOtherPolicy(): Promise<void> {
    await this.kubectl(["-n", this.ns, "delete", "egresspolicy", "broken", "--ignore-not-found"]);
    await this.apply(this.otherPolicy());
    await this.everySidecar("other.example.test", { status: 200 });
    await this.everySidecar("api.example.test", { status: 403, reason: "NoRuleMatched" });
    await this.synced("agent", 2);
  }

  /**
   * Runs `use` with pod `pod` (labelled app=agent) on `ip` whose sidecar trusts another key, so
   * refuses every bundle; then deletes the pod and stops the sidecar. `pod` must be a fresh name
   * (without a kubelet a deleted pod stays Terminating).
   */
  async withRoguePod(pod: string, ip: string, use: (rogue: SidecarProcess) => Promise<void>): Promise<void> {
    const rogue = await this.addPod(pod, ip, this.files.otherKey);
    try {
      await use(rogue);
    } finally {
      await this.kubectl(["-n", this.ns, "delete", "pod", pod, "--wait=false"]);
      await stopProcess(rogue.command);
    }
  }
}
