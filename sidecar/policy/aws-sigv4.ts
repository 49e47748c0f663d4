// The `awsSigV4` injection form: instead of attaching a value, the sidecar signs each request with
// AWS Signature Version 4. The Credential's secretRef holds the secret access key; the same Secret
// holds the access key id (and, for temporary credentials, the session token) under the keys named
// here. Region and service are fixed here, or read from an *.amazonaws.com host.
import { checkKnownFields, describeType, fieldPath, type ErrorSink } from "./fields.ts";
import { secretKeyProblem } from "./names.ts";

/** The compiled form (Injection kind "awsSigV4"). */
export interface SigV4Injection {
  kind: "awsSigV4";
  accessKeyIdKey: string;
  sessionTokenKey?: string;
  region?: string;
  service?: string;
  /**
   * Sign UNSIGNED-PAYLOAD instead of the body's SHA-256 (S3 accepts it; bodies then stream). When
   * false, a body is read whole (at most 8 MiB) to be hashed before the request goes.
   */
  unsignedPayload: boolean;
}

/** The headers a SigV4 signature sets (an agent's own copies are removed first). */
export const SIGV4_HEADERS = ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"];

const FIELDS = ["accessKeyIdKey", "sessionTokenKey", "region", "service", "unsignedPayload"];
const NAME = /^[a-z0-9-]{1,64}$/;

/**
 * `injection.awsSigV4` (manifest, `compiled` false) or a compiled injection's fields (`compiled`
 * true: `kind` is allowed and every field is present as compiled), or undefined after reporting.
 */
export function validateSigV4(
  obj: Record<string, unknown>,
  path: string,
  add: ErrorSink,
  compiled = false,
): SigV4Injection | undefined {
  let errors = 0;
  const count: ErrorSink = (at, message) => {
    errors++;
    add(at, message);
  };
  checkKnownFields(obj, path, compiled ? ["kind", ...FIELDS] : FIELDS, count);
  const at = (key: string): string => fieldPath(path, key);
  const key = (name: string, required: boolean): string | undefined => {
    const value = obj[name];
    if (value === undefined) {
      if (required) count(at(name), `is required; name the key of the Credential's Secret that holds it`);
      return undefined;
    }
    const problem =
      typeof value === "string" ? secretKeyProblem(value) : `must be a string, got ${describeType(value)}`;
    if (problem !== undefined) count(at(name), problem);
    return problem === undefined ? (value as string) : undefined;
  };
  const name = (field: string): string | undefined => {
    const value = obj[field];
    if (value === undefined) return undefined;
    if (typeof value === "string" && NAME.test(value)) return value;
    count(
      at(field),
      `must be an AWS ${field} name such as ${field === "region" ? "us-east-1" : "s3"} (lower-case letters, digits, '-')`,
    );
    return undefined;
  };
  const accessKeyIdKey = key("accessKeyIdKey", true);
  const sessionTokenKey = key("sessionTokenKey", false);
  const region = name("region");
  const service = name("service");
  let unsignedPayload = false;
  if (obj.unsignedPayload !== undefined) {
    if (typeof obj.unsignedPayload === "boolean") unsignedPayload = obj.unsignedPayload;
    else count(at("unsignedPayload"), `must be true or false, got ${describeType(obj.unsignedPayload)}`);
  }
  if (errors > 0 || accessKeyIdKey === undefined) return undefined;
  const out: SigV4Injection = { kind: "awsSigV4", accessKeyIdKey, unsignedPayload };
  if (sessionTokenKey !== undefined) out.sessionTokenKey = sessionTokenKey;
  if (region !== undefined) out.region = region;
  if (service !== undefined) out.service = service;
  return out;
}

/**
 * Region and service from an AWS endpoint name: SERVICE.REGION.amazonaws.com (and a bucket or
 * other label before it), SERVICE.amazonaws.com in us-east-1; undefined for any other host.
 */
export function awsScopeOf(host: string): { region: string; service: string } | undefined {
  const labels = host.toLowerCase().replace(/\.$/, "").split(".");
  if (labels.length < 3 || labels.at(-1) !== "com" || labels.at(-2) !== "amazonaws") return undefined;
  const rest = labels.slice(0, -2);
  const last = rest.at(-1) ?? "";
  const before = rest.at(-2);
  if (/^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(last) && before !== undefined)
    return { region: last, service: before };
  return { region: "us-east-1", service: last };
}
