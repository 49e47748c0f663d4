// Test double of the `Cluster` seam (kube/cluster.ts): a state-based, in-memory API server. Objects
// live in maps per namespace; `read` returns copies shaped as KubeCluster returns them, the writes
// change the maps, and every write is appended to `log` (the only history kept: its order is what
// "RBAC, then pushes, then status" means). `failOnce` makes one chosen write throw, as an API error.

import type { SecretsRole, SecretsRoleBinding } from "./core/rbac.ts";
import { rawMeta, type PodInfo, type SecretInfo } from "./core/snapshot.ts";
import type { Cluster, NamespaceObjects, StatusKind } from "./kube/cluster.ts";

/** One change made to the world, in order: a cluster write, or a bundle a sidecar received. */
export interface WriteEvent {
  op: "put" | "delete" | "status" | "push";
  kind: StatusKind | "Role" | "RoleBinding" | "Bundle";
  name: string;
}

/** Which write should fail (once): matched on op, kind and, when given, name. */
export type WriteMatch = Partial<WriteEvent> & Pick<WriteEvent, "op">;

interface NamespaceState {
  policies: Map<string, unknown>;
  credentials: Map<string, unknown>;
  secrets: Map<string, SecretInfo>;
  pods: Map<string, PodInfo>;
  roles: Map<string, SecretsRole>;
  roleBindings: Map<string, SecretsRoleBinding>;
}

type ObjectKind = StatusKind | "Secret" | "Pod";

function nameOf(obj: unknown): string {
  const name = rawMeta(obj)?.name;
  if (name === undefined) throw new Error("object without metadata.name");
  return name;
}

function secretRef(credential: unknown): string | undefined {
  const ref = (credential as { spec?: { secretRef?: { name?: unknown } } }).spec?.secretRef?.name;
  return typeof ref === "string" ? ref : undefined;
}

function copy<T>(value: T): T {
  return structuredClone(value);
}

/** An in-memory Cluster. Test-side changes (`apply`, `remove`) fire the watch; the reconciler's own writes do not. */
export class MemoryCluster implements Cluster {
  /** Every write, in order; the fake sidecars append their pushes here too. */
  readonly log: WriteEvent[] = [];
  readonly #namespaces = new Map<string, NamespaceState>();
  readonly #listeners = new Set<(namespace: string) => void>();
  #failure: WriteMatch | undefined;

  /** The next write matching `match` throws (and changes nothing); later ones succeed. */
  failOnce(match: WriteMatch): void {
    this.#failure = match;
  }

  /** Creates or replaces an EgressPolicy, Credential, Secret or Pod in `namespace`. */
  apply(namespace: string, kind: ObjectKind, obj: unknown): void {
    const ns = this.#ns(namespace);
    if (kind === "Pod") ns.pods.set((obj as PodInfo).name, copy(obj as PodInfo));
    else if (kind === "Secret") ns.secrets.set((obj as SecretInfo).name, copy(obj as SecretInfo));
    else this.#objects(ns, kind).set(nameOf(obj), copy(obj));
    this.#notify(namespace);
  }

  /** Deletes an object of `kind` named `name` from `namespace`. */
  remove(namespace: string, kind: ObjectKind, name: string): void {
    const ns = this.#ns(namespace);
    if (kind === "Pod") ns.pods.delete(name);
    else if (kind === "Secret") ns.secrets.delete(name);
    else this.#objects(ns, kind).delete(name);
    this.#notify(namespace);
  }

  /** The stored object (a copy), for assertions. */
  get(namespace: string, kind: StatusKind, name: string): unknown {
    return copy(this.#objects(this.#ns(namespace), kind).get(name));
  }

  /** The managed Roles of `namespace` by name (copies). */
  roles(namespace: string): Map<string, SecretsRole> {
    return copy(this.#ns(namespace).roles);
  }

  /** The managed RoleBindings of `namespace` by name (copies). */
  roleBindings(namespace: string): Map<string, SecretsRoleBinding> {
    return copy(this.#ns(namespace).roleBindings);
  }

  namespaces(): Promise<string[]> {
    return Promise.resolve([...this.#namespaces.keys()].sort());
  }

  read(namespace: string): Promise<NamespaceObjects> {
    const ns = this.#ns(namespace);
    const credentials = [...ns.credentials.values()];
    // As KubeCluster: only the Secrets some Credential references, names and keys only.
    const referenced = new Set(credentials.map(secretRef));
    return Promise.resolve(
      copy({
        policies: [...ns.policies.values()],
        credentials,
        secrets: [...ns.secrets.values()].filter((s) => referenced.has(s.name)),
        pods: [...ns.pods.values()],
        roles: [...ns.roles.values()],
        roleBindings: [...ns.roleBindings.values()],
      }),
    );
  }

  patchStatus(kind: StatusKind, namespace: string, name: string, status: unknown): Promise<void> {
    return this.#write({ op: "status", kind, name }, () => {
      const objects = this.#objects(this.#ns(namespace), kind);
      const current = objects.get(name);
      if (current === undefined) return; // a missing object is ignored
      const old = (current as { status?: object }).status ?? {};
      objects.set(name, { ...(current as object), status: { ...old, ...copy(status as object) } });
    });
  }

  putRole(role: SecretsRole): Promise<void> {
    return this.#write({ op: "put", kind: "Role", name: role.metadata.name }, () => {
      this.#ns(role.metadata.namespace).roles.set(role.metadata.name, copy(role));
    });
  }

  putRoleBinding(binding: SecretsRoleBinding): Promise<void> {
    return this.#write({ op: "put", kind: "RoleBinding", name: binding.metadata.name }, () => {
      this.#ns(binding.metadata.namespace).roleBindings.set(binding.metadata.name, copy(binding));
    });
  }

  deleteRbac(kind: "Role" | "RoleBinding", namespace: string, name: string): Promise<void> {
    return this.#write({ op: "delete", kind, name }, () => {
      const ns = this.#ns(namespace);
      if (kind === "Role") ns.roles.delete(name);
      else ns.roleBindings.delete(name);
    });
  }

  watch(onNamespace: (namespace: string) => void): () => void {
    this.#listeners.add(onNamespace);
    return () => this.#listeners.delete(onNamespace);
  }

  #write(event: WriteEvent, change: () => void): Promise<void> {
    const f = this.#failure;
    if (
      f !== undefined &&
      f.op === event.op &&
      (f.kind ?? event.kind) === event.kind &&
      (f.name ?? event.name) === event.name
    ) {
      this.#failure = undefined;
      return Promise.reject(new Error(`injected API error on ${event.op} ${event.kind} ${event.name}`));
    }
    change();
    this.log.push(event);
    return Promise.resolve();
  }

  #notify(namespace: string): void {
    for (const listener of this.#listeners) listener(namespace);
  }

  #objects(ns: NamespaceState, kind: StatusKind): Map<string, unknown> {
    return kind === "EgressPolicy" ? ns.policies : ns.credentials;
  }

  #ns(namespace: string): NamespaceState {
    let ns = this.#namespaces.get(namespace);
    if (ns === undefined) {
      ns = {
        policies: new Map(),
        credentials: new Map(),
        secrets: new Map(),
        pods: new Map(),
        roles: new Map(),
        roleBindings: new Map(),
      };
      this.#namespaces.set(namespace, ns);
    }
    return ns;
  }
}
