// AdmissionReview v1, the wire format between kube-apiserver and the webhook. Parsing is strict
// about what identifies a review (apiVersion, kind, request.uid, what is being admitted) and
// lenient about everything else, so a newer API server's extra fields never break admission.

/** The only AdmissionReview version the webhook configurations declare (admissionReviewVersions). */
export const ADMISSION_REVIEW_VERSION = "admission.k8s.io/v1";

/** A uid longer than this is not one the API server made; refusing it keeps echoes small. */
const MAX_UID_LENGTH = 256;

/** The part of `request` the handlers use. Absent strings are "" (core group, no subresource, cluster scope). */
export interface AdmissionRequest {
  uid: string;
  /** CREATE, UPDATE, DELETE or CONNECT. */
  operation: string;
  resource: { group: string; version: string; resource: string };
  subResource: string;
  namespace: string;
  name: string;
  /** The object after the change (absent on DELETE). */
  object: unknown;
  /** The object before the change (UPDATE and DELETE only). */
  oldObject: unknown;
  /** The API server will not persist the result; the webhook has no side effects either way. */
  dryRun: boolean;
}

/** The webhook's answer for one request (AdmissionReview v1 `response`). */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason?: string; message: string };
  patchType?: "JSONPatch";
  /** base64 of a JSON Patch (RFC 6902) document. */
  patch?: string;
}

/** A parsed review, or why the body is not one (answered with HTTP 400). */
export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; error: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalString(record: Record<string, unknown>, key: string): string | undefined {
  const value = record[key];
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : undefined;
}

function parseResource(value: unknown): AdmissionRequest["resource"] | undefined {
  if (!isRecord(value)) return undefined;
  const group = optionalString(value, "group");
  const version = optionalString(value, "version");
  const resource = optionalString(value, "resource");
  if (group === undefined || version === undefined || resource === undefined || resource === "")
    return undefined;
  return { group, version, resource };
}

/** Parses a request body as an AdmissionReview v1 with a request; never throws. */
export function parseReview(body: Buffer | string): ParsedReview {
  let review: unknown;
  try {
    review = JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
  } catch {
    return { ok: false, error: "the body is not JSON; send an AdmissionReview" };
  }
  if (!isRecord(review))
    return { ok: false, error: "the body is not a JSON object; send an AdmissionReview" };
  if (review.apiVersion !== ADMISSION_REVIEW_VERSION)
    return { ok: false, error: `apiVersion must be "${ADMISSION_REVIEW_VERSION}"` };
  if (review.kind !== "AdmissionReview") return { ok: false, error: 'kind must be "AdmissionReview"' };
  const request = review.request;
  if (!isRecord(request)) return { ok: false, error: "request is missing" };
  const uid = request.uid;
  if (typeof uid !== "string" || uid === "" || uid.length > MAX_UID_LENGTH)
    return { ok: false, error: "request.uid is missing or not a uid" };
  const operation = request.operation;
  if (typeof operation !== "string" || operation === "")
    return { ok: false, error: "request.operation is missing" };
  const resource = parseResource(request.resource);
  if (resource === undefined) return { ok: false, error: "request.resource is missing or malformed" };
  const subResource = optionalString(request, "subResource");
  const namespace = optionalString(request, "namespace");
  const name = optionalString(request, "name");
  if (subResource === undefined || namespace === undefined || name === undefined)
    return { ok: false, error: "request.subResource, namespace and name must be strings" };
  if (request.dryRun !== undefined && request.dryRun !== null && typeof request.dryRun !== "boolean")
    return { ok: false, error: "request.dryRun must be a boolean" };
  return {
    ok: true,
    request: {
      uid,
      operation,
      resource,
      subResource,
      namespace,
      name,
      object: request.object,
      oldObject: request.oldObject,
      dryRun: request.dryRun === true,
    },
  };
}

/** The full AdmissionReview v1 document that carries `response`. */
export function reviewResponse(response: AdmissionResponse): Record<string, unknown> {
  return { apiVersion: ADMISSION_REVIEW_VERSION, kind: "AdmissionReview", response };
}

/** Allowed, unchanged. */
export function allow(uid: string): AdmissionResponse {
  return { uid, allowed: true };
}

/** Refused with an HTTP-like code (403: policy; 400: not an object the handler can judge). */
export function deny(uid: string, code: 400 | 403 | 500, message: string): AdmissionResponse {
  const reason = code === 403 ? "Forbidden" : code === 400 ? "BadRequest" : "InternalError";
  return { uid, allowed: false, status: { code, reason, message } };
}
