// Fixtures shared by the injector's unit tests and the `airlock inject` CLI test: the manifests
// under test/golden/inject/input and the field paths each refusal fixture must be refused at.
import { readFileSync } from "node:fs";
import { loadAll } from "js-yaml";
import type { InjectionConfig } from "./types.ts";

/** Folder of the input manifests (from the repository root). */
export const INPUT_DIR = "test/golden/inject/input";
/** Folder of the pinned `airlock inject` outputs (from the repository root). */
export const OUTPUT_DIR = "test/golden/inject/output";

const ROOT = new URL("../../", import.meta.url);

/** The text of a file under INPUT_DIR. */
export function readInput(file: string): string {
  return readFileSync(new URL(`${INPUT_DIR}/${file}`, ROOT), "utf8");
}

/** The documents of a file under INPUT_DIR, empty ones dropped. */
export function loadInput(file: string): unknown[] {
  return loadAll(readInput(file)).filter((doc) => doc !== null && doc !== undefined);
}

/** The config the golden outputs were made with: `--image airlock:golden --bundle-key bundle-key.pem`. */
export const FIXTURE_CONFIG: InjectionConfig = {
  image: "airlock:golden",
  bundlePublicKeys: readInput("bundle-key.pem"),
};

/** Input manifests that inject cleanly. */
export const INJECTABLE_INPUTS = [
  "plain-pod.yaml",
  "pod-full.yaml",
  "pod.json",
  "deployment.yaml",
  "statefulset.yaml",
  "daemonset.yaml",
  "replicaset.yaml",
  "job.yaml",
  "cronjob.yaml",
  "mixed.yaml",
] as const;

/** For each document of refusals.yaml (by metadata.name), every field path it is refused at. */
export const REFUSAL_PATHS: Record<string, string[]> = {
  "container-runs-as-sidecar-uid": ["spec.containers[0].securityContext.runAsUser"],
  "container-runs-as-sidecar-gid": ["spec.containers[0].securityContext.runAsGroup"],
  "init-container-runs-as-sidecar-uid": ["spec.initContainers[0].securityContext.runAsUser"],
  "pod-runs-as-sidecar-ids": [
    "spec.securityContext.runAsUser",
    "spec.securityContext.runAsGroup",
    "spec.securityContext.fsGroup",
    "spec.securityContext.supplementalGroups[1]",
  ],
  "adds-net-capabilities": [
    "spec.containers[0].securityContext.capabilities.add[0]",
    "spec.containers[0].securityContext.capabilities.add[2]",
  ],
  "adds-identity-capabilities": [
    "spec.containers[0].securityContext.capabilities.add[0]",
    "spec.containers[0].securityContext.capabilities.add[1]",
  ],
  "allows-privilege-escalation": ["spec.containers[0].securityContext.allowPrivilegeEscalation"],
  "adds-sys-capabilities": [
    "spec.containers[1].securityContext.capabilities.add[0]",
    "spec.containers[1].securityContext.capabilities.add[1]",
    "spec.containers[1].securityContext.capabilities.add[2]",
  ],
  privileged: ["spec.containers[0].securityContext.privileged"],
  "host-network": ["spec.hostNetwork"],
  "host-pid": ["spec.hostPID"],
  "share-process-namespace": ["spec.shareProcessNamespace"],
  "mounts-token-volume": ["spec.containers[0].volumeMounts[0].name"],
  "mounts-trust-volume-read-write": ["spec.containers[0].volumeMounts[0].readOnly"],
  "defines-airlock-volume": ["spec.volumes[1].name"],
  "impostor-sidecar": ["spec.initContainers[0].name"],
  "impostor-in-containers-with-forged-status": ["spec.containers[1].name"],
  "ephemeral-container-adds-net-raw": [
    "spec.ephemeralContainers[0].securityContext.capabilities.add[0]",
    "spec.ephemeralContainers[0].targetContainerName",
  ],
  "projects-service-account-token": ["spec.volumes[0].projected.sources[0].serviceAccountToken"],
  "takes-trust-folder": ["spec.containers[0].volumeMounts[0].mountPath"],
  "every-reason-at-once": [
    "spec.hostNetwork",
    "spec.securityContext.fsGroup",
    "spec.containers[0].securityContext.runAsUser",
    "spec.containers[0].securityContext.privileged",
    "spec.containers[0].securityContext.capabilities.add[0]",
  ],
  "deployment-on-host-network": ["spec.template.spec.hostNetwork"],
  "cronjob-privileged": ["spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"],
  "no-spec": ["spec"],
};
