// What the webhook answers, as pure functions of one AdmissionRequest: the HTTP shell (server.ts)
// only parses, calls these and writes the result. Nothing here has a side effect, so a dryRun
// request is answered exactly like any other (the API server alone decides not to persist).
import { joinMessages } from "../core/conditions.ts";
import { checkEphemeralContainers, checkPodUpdate, injectPod } from "../inject/inject.ts";
import type { InjectionConfig } from "../inject/types.ts";
import { API_GROUP } from "../../sidecar/constants.ts";
import {
  canonicalJson,
  validateCredential,
  validatePolicy,
  type FieldError,
} from "../../sidecar/policy/index.ts";
import { podPatch } from "./patch.ts";
import { allow, deny, type AdmissionRequest, type AdmissionResponse } from "./review.ts";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `path: message` for every error, joined like the operator's status messages. */
export function fieldErrorsMessage(errors: readonly FieldError[]): string {
  return joinMessages(errors.map((e) => (e.path === "" ? e.message : `${e.path}: ${e.message}`)));
}

function isPods(request: AdmissionRequest, subResource = ""): boolean {
  const { group, resource } = request.resource;
  return group === "" && resource === "pods" && request.subResource === subResource;
}

/**
 * Mutating `/inject`: a Pod CREATE is answered with the JSON Patch to the injected pod, or refused
 * (403) with every reason it cannot be made safe. Anything else this route is sent is allowed unchanged:
 * the configuration only routes Pod CREATE here, and updates are judged by `/validate`.
 */
export function admitInjection(request: AdmissionRequest, config: InjectionConfig): AdmissionResponse {
  if (!isPods(request) || request.operation !== "CREATE") return allow(request.uid);
  const pod = request.object;
  if (!isRecord(pod)) return deny(request.uid, 400, "request.object is not a Pod");
  const result = injectPod(pod, config, "", request.namespace);
  if (!result.ok)
    return deny(request.uid, 403, `Airlock cannot make this pod safe: ${fieldErrorsMessage(result.errors)}`);
  const operations = podPatch(pod, result.pod);
  if (operations.length === 0) return allow(request.uid);
  return {
    uid: request.uid,
    allowed: true,
    patchType: "JSONPatch",
    patch: Buffer.from(JSON.stringify(operations)).toString("base64"),
  };
}

function specOf(object: unknown): string {
  return canonicalJson(isRecord(object) ? object.spec : undefined);
}

// An UPDATE that leaves the spec as it was (labels, finalizers, owner references) is allowed even
// when the stored spec is invalid (stored before the webhook existed): refusing it would strand the
// object, while its status already says InvalidSpec and the operator enforces none of it.
function validateCustomResource(request: AdmissionRequest): AdmissionResponse {
  if (request.operation === "UPDATE" && specOf(request.oldObject) === specOf(request.object))
    return allow(request.uid);
  const kind = request.resource.resource === "egresspolicies" ? "EgressPolicy" : "Credential";
  const result =
    kind === "EgressPolicy"
      ? validatePolicy(request.object, request.namespace)
      : validateCredential(request.object, request.namespace);
  if (result.ok) return allow(request.uid);
  return deny(request.uid, 403, `invalid ${kind}: ${fieldErrorsMessage(result.errors)}`);
}

function refused(request: AdmissionRequest, what: string, errors: readonly FieldError[]): AdmissionResponse {
  if (errors.length === 0) return allow(request.uid);
  return deny(request.uid, 403, `Airlock refuses ${what}: ${fieldErrorsMessage(errors)}`);
}

/**
 * Validating `/validate`: EgressPolicy and Credential CREATE/UPDATE (the policy core's checks, with
 * field paths), Pod UPDATE (no change to an Airlock container) and `pods/ephemeralcontainers`
 * UPDATE (nothing that could escape the boundary). Everything else is allowed: not Airlock's to judge.
 */
export function admitValidation(request: AdmissionRequest): AdmissionResponse {
  const { operation } = request;
  const { group, resource } = request.resource;
  if (group === API_GROUP && request.subResource === "") {
    if (
      (operation === "CREATE" || operation === "UPDATE") &&
      ["egresspolicies", "credentials"].includes(resource)
    )
      return validateCustomResource(request);
    return allow(request.uid);
  }
  if (operation !== "UPDATE") return allow(request.uid);
  if (isPods(request)) {
    const [before, after] = [request.oldObject, request.object];
    if (!isRecord(before) || !isRecord(after))
      return deny(request.uid, 400, "request.object and request.oldObject must both be Pods");
    return refused(request, "this pod update", checkPodUpdate(before, after));
  }
  if (isPods(request, "ephemeralcontainers")) {
    const pod = request.object;
    if (!isRecord(pod)) return deny(request.uid, 400, "request.object is not a Pod");
    return refused(request, "these ephemeral containers", checkEphemeralContainers(pod));
  }
  return allow(request.uid);
}
