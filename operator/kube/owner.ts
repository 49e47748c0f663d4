// What makes `helm uninstall` leave nothing behind: every object the operator creates at run time
// (its Secrets and Lease, the sidecars' Roles and RoleBindings in agent namespaces) names the
// operator's ClusterRole as its owner, so Kubernetes' garbage collector deletes them once that
// ClusterRole is gone. A cluster-scoped owner is the one kind a namespaced object in any namespace
// may have. Without --owner-cluster-role (the operator run by hand) nothing gets an owner.
import { RbacAuthorizationV1Api, V1OwnerReference, type KubeConfig } from "@kubernetes/client-node";

/** The owner references to put on a created object ([] when there is no owner). */
export type Owner = () => Promise<V1OwnerReference[]>;

/** No owner: objects stay until deleted by hand. */
export const NO_OWNER: Owner = () => Promise.resolve([]);

/**
 * The ClusterRole `name` as owner. Read for every create (creates are rare), never remembered: a
 * ClusterRole deleted and made again has a new uid, and a reference to the old one would have the
 * new object collected at once. A failed read throws, so the write that needed it fails and is
 * retried with the pass that made it.
 */
export function clusterRoleOwner(config: KubeConfig, name: string): Owner {
  const rbac = config.makeApiClient(RbacAuthorizationV1Api);
  return async () => {
    let uid: string | undefined;
    try {
      uid = (await rbac.readClusterRole({ name })).metadata?.uid;
    } catch (err) {
      throw new Error(
        `cannot read ClusterRole ${name}, the owner of what the operator creates (--owner-cluster-role): ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (uid === undefined) throw new Error(`ClusterRole ${name} has no uid`);
    const reference = Object.assign(new V1OwnerReference(), {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      name,
      uid,
    });
    return [reference];
  };
}

/** `metadata` with `owners` as its ownerReferences (unchanged when there are none). */
export function owned<T extends object>(metadata: T, owners: V1OwnerReference[]): T {
  return owners.length === 0 ? metadata : { ...metadata, ownerReferences: owners };
}
