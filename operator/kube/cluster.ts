// The operator's one seam to Kubernetes: read a namespace's objects in the core's shapes, write a
// custom object's `.status`, and create/replace/delete the managed Roles and RoleBindings. The
// reconciler depends on the `Cluster` interface only; `KubeCluster` is the client-node version,
// tested against a real kube-apiserver (test/operator-cluster.test.ts).

import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  V1Role,
  V1RoleBinding,
  type KubeConfig,
  type V1Pod,
} from "@kubernetes/client-node";
import { API_GROUP, API_VERSION, STATUS_ANNOTATION } from "../../sidecar/constants.ts";
import { RBAC_LABEL, RBAC_SIDECAR_SECRETS, type SecretsRole, type SecretsRoleBinding } from "../core/rbac.ts";
import type { PodInfo, PodPhase, SecretInfo } from "../core/snapshot.ts";
import { watchMetadata } from "./metadata-watch.ts";
import { NO_OWNER, owned, type Owner } from "./owner.ts";

/** The annotation the injection webhook sets on a pod it gave the sidecar: present means injected. */
export const INJECTED_ANNOTATION = STATUS_ANNOTATION;

/** The custom resources the operator writes status to, by kind. */
export const PLURALS = { EgressPolicy: "egresspolicies", Credential: "credentials" } as const;
/** A kind the operator writes `.status` on. */
export type StatusKind = keyof typeof PLURALS;

/** Everything one reconcile reads from one namespace. Custom objects are as the API returns them. */
export interface NamespaceObjects {
  policies: unknown[];
  credentials: unknown[];
  /**
   * The Secrets some Credential here references, as names and data keys only: each is read by
   * name and its values are dropped on receipt. Other Secrets are never read.
   */
  secrets: SecretInfo[];
  pods: PodInfo[];
  /** The managed Roles and RoleBindings (by the ownership label), as the API returns them. */
  roles: unknown[];
  roleBindings: unknown[];
}

/** What the reconciler needs from Kubernetes. Every method throws on an API error. */
export interface Cluster {
  /** Namespaces holding any EgressPolicy, Credential, injected pod or managed Role: the reconcile keys. */
  namespaces(): Promise<string[]>;
  /** Reads one namespace. */
  read(namespace: string): Promise<NamespaceObjects>;
  /** Merge-patches `{status}` on the object's `/status` subresource. A missing object is ignored. */
  patchStatus(kind: StatusKind, namespace: string, name: string, status: unknown): Promise<void>;
  /** Creates the Role, or replaces it when it exists. */
  putRole(role: SecretsRole): Promise<void>;
  /** Creates the RoleBinding, or replaces it (deleting first when its immutable roleRef differs). */
  putRoleBinding(binding: SecretsRoleBinding): Promise<void>;
  /** Deletes a Role or RoleBinding; a missing one is ignored. */
  deleteRbac(kind: "Role" | "RoleBinding", namespace: string, name: string): Promise<void>;
  /**
   * Calls `onNamespace` with the namespace of every watch event on the kinds `read` reads (a watch
   * that ends is restarted). Returns a function that stops watching. Events carry no other meaning.
   */
  watch(onNamespace: (namespace: string) => void, onError?: (path: string, err: Error) => void): () => void;
}

// What the operator watches (metadata only), cluster-wide: everything `read` reads.
const WATCHED = [
  `/apis/${API_GROUP}/${API_VERSION}/${PLURALS.EgressPolicy}`,
  `/apis/${API_GROUP}/${API_VERSION}/${PLURALS.Credential}`,
  "/api/v1/pods",
  "/api/v1/secrets",
  "/apis/rbac.authorization.k8s.io/v1/roles",
  "/apis/rbac.authorization.k8s.io/v1/rolebindings",
];
const REWATCH_MS = 1000;

const PHASES = new Set<string>(["Pending", "Running", "Succeeded", "Failed", "Unknown"]);

/** Reduces a Pod to what the core needs; the `injected` flag comes from INJECTED_ANNOTATION. */
export function podInfo(pod: V1Pod): PodInfo | undefined {
  const name = pod.metadata?.name;
  const uid = pod.metadata?.uid;
  if (name === undefined || uid === undefined) return undefined;
  const phase = pod.status?.phase ?? "Pending";
  const info: PodInfo = {
    name,
    uid,
    labels: pod.metadata?.labels ?? {},
    serviceAccount: pod.spec?.serviceAccountName ?? "",
    phase: (PHASES.has(phase) ? phase : "Unknown") as PodPhase,
    injected: pod.metadata?.annotations?.[INJECTED_ANNOTATION] !== undefined,
    deleting: pod.metadata?.deletionTimestamp !== undefined,
  };
  const ip = pod.status?.podIP;
  if (ip !== undefined && ip !== "") info.podIP = ip;
  return info;
}

function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

function itemsOf(list: unknown): unknown[] {
  const items = (list as { items?: unknown } | null)?.items;
  return Array.isArray(items) ? (items as unknown[]) : [];
}

/** The Secret a raw Credential references, if its spec names one. */
function secretRefName(credential: unknown): string[] {
  const name = (credential as { spec?: { secretRef?: { name?: unknown } } } | null)?.spec?.secretRef?.name;
  return typeof name === "string" && name !== "" ? [name] : [];
}

function namespaceOf(obj: unknown): string | undefined {
  const ns = (obj as { metadata?: { namespace?: unknown } } | null)?.metadata?.namespace;
  return typeof ns === "string" ? ns : undefined;
}

/** The Cluster on @kubernetes/client-node, with whatever identity `config` holds. */
export class KubeCluster implements Cluster {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #rbac: RbacAuthorizationV1Api;
  readonly #config: KubeConfig;
  readonly #owner: Owner;

  constructor(config: KubeConfig, owner: Owner = NO_OWNER) {
    this.#config = config;
    this.#owner = owner;
    this.#core = config.makeApiClient(CoreV1Api);
    this.#custom = config.makeApiClient(CustomObjectsApi);
    this.#rbac = config.makeApiClient(RbacAuthorizationV1Api);
  }

  async namespaces(): Promise<string[]> {
    const rbacSelector = `${RBAC_LABEL}=${RBAC_SIDECAR_SECRETS}`;
    const [policies, credentials, pods, roles] = await Promise.all([
      this.#listCustom(PLURALS.EgressPolicy),
      this.#listCustom(PLURALS.Credential),
      this.#core.listPodForAllNamespaces(),
      this.#rbac.listRoleForAllNamespaces({ labelSelector: rbacSelector }),
    ]);
    const found = new Set<string>();
    for (const obj of [...policies, ...credentials, ...roles.items]) {
      const ns = namespaceOf(obj);
      if (ns !== undefined) found.add(ns);
    }
    for (const pod of pods.items) {
      const ns = pod.metadata?.namespace;
      if (ns !== undefined && pod.metadata?.annotations?.[INJECTED_ANNOTATION] !== undefined) found.add(ns);
    }
    return [...found].sort();
  }

  async read(namespace: string): Promise<NamespaceObjects> {
    const labelSelector = `${RBAC_LABEL}=${RBAC_SIDECAR_SECRETS}`;
    const [policies, credentials, pods, roles, roleBindings] = await Promise.all([
      this.#listCustom(PLURALS.EgressPolicy, namespace),
      this.#listCustom(PLURALS.Credential, namespace),
      this.#core.listNamespacedPod({ namespace }),
      this.#rbac.listNamespacedRole({ namespace, labelSelector }),
      this.#rbac.listNamespacedRoleBinding({ namespace, labelSelector }),
    ]);
    const referenced = [...new Set(credentials.flatMap(secretRefName))].sort();
    const secrets = await Promise.all(referenced.map((name) => this.#secretKeys(namespace, name)));
    return {
      policies,
      credentials,
      secrets: secrets.filter((s) => s !== undefined),
      pods: pods.items.flatMap((p) => podInfo(p) ?? []),
      roles: roles.items,
      roleBindings: roleBindings.items,
    };
  }

  /** The data keys of Secret `name`, or undefined when it does not exist; values are dropped here. */
  async #secretKeys(namespace: string, name: string): Promise<SecretInfo | undefined> {
    try {
      const secret = await this.#core.readNamespacedSecret({ name, namespace });
      return { name, keys: Object.keys(secret.data ?? {}).sort() };
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  async #listCustom(plural: string, namespace?: string): Promise<unknown[]> {
    const list: unknown =
      namespace === undefined
        ? await this.#custom.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural })
        : await this.#custom.listNamespacedCustomObject({
            group: API_GROUP,
            version: API_VERSION,
            namespace,
            plural,
          });
    return itemsOf(list);
  }

  async patchStatus(kind: StatusKind, namespace: string, name: string, status: unknown): Promise<void> {
    try {
      await this.#custom.patchNamespacedCustomObjectStatus(
        { group: API_GROUP, version: API_VERSION, namespace, plural: PLURALS[kind], name, body: { status } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
  }

  async putRole(role: SecretsRole): Promise<void> {
    const { namespace, name } = role.metadata;
    const body = Object.assign(new V1Role(), {
      ...role,
      metadata: owned(role.metadata, await this.#owner()),
    });
    try {
      await this.#rbac.createNamespacedRole({ namespace, body });
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
      await this.#rbac.replaceNamespacedRole({ namespace, name, body });
    }
  }

  async putRoleBinding(binding: SecretsRoleBinding): Promise<void> {
    const { namespace, name } = binding.metadata;
    const body = Object.assign(new V1RoleBinding(), {
      ...binding,
      metadata: owned(binding.metadata, await this.#owner()),
    });
    try {
      await this.#rbac.createNamespacedRoleBinding({
        namespace,
        body,
      });
      return;
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
    }
    const existing = await this.#rbac.readNamespacedRoleBinding({ namespace, name });
    if (existing.roleRef.kind === binding.roleRef.kind && existing.roleRef.name === binding.roleRef.name) {
      await this.#rbac.replaceNamespacedRoleBinding({
        namespace,
        name,
        body,
      });
      return;
    }
    // roleRef is immutable: recreate.
    await this.deleteRbac("RoleBinding", namespace, name);
    await this.#rbac.createNamespacedRoleBinding({
      namespace,
      body,
    });
  }

  async deleteRbac(kind: "Role" | "RoleBinding", namespace: string, name: string): Promise<void> {
    try {
      if (kind === "Role") await this.#rbac.deleteNamespacedRole({ namespace, name });
      else await this.#rbac.deleteNamespacedRoleBinding({ namespace, name });
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
  }

  watch(onNamespace: (namespace: string) => void, onError?: (path: string, err: Error) => void): () => void {
    let stopped = false;
    // Told once per path and distinct error, so a watch refused every second does not flood the log.
    const lastError = new Map<string, string>();
    const live = new Set<{ abort(): void }>();
    const timers = new Set<ReturnType<typeof setTimeout>>();
    const start = (path: string): void => {
      if (stopped) return;
      let watch: { abort(): void } | undefined;
      let ended = false;
      const again = (err?: unknown): void => {
        ended = true;
        if (err instanceof Error && lastError.get(path) !== err.message) {
          lastError.set(path, err.message);
          onError?.(path, err);
        } else if (err === undefined) lastError.delete(path);
        if (watch !== undefined) live.delete(watch);
        if (stopped) return;
        const timer = setTimeout(() => {
          timers.delete(timer);
          start(path);
        }, REWATCH_MS);
        timers.add(timer);
      };
      watchMetadata(
        this.#config,
        path,
        (_type, object) => {
          const ns = object.metadata?.namespace;
          if (ns !== undefined) onNamespace(ns);
        },
        again,
      ).then((w) => {
        watch = w;
        if (stopped || ended) w.abort();
        else live.add(w);
      }, again);
    };
    for (const path of WATCHED) start(path);
    return () => {
      stopped = true;
      for (const w of live) w.abort();
      for (const t of timers) clearTimeout(t);
    };
  }
}
