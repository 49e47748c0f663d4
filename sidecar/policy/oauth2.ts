// A Credential's `spec.oauth2`: the value attached is an OAuth2 access token the sidecar obtains
// itself from a token endpoint (RFC 6749: the client-credentials grant, or the refresh-token
// grant), with the client secret — and for the refresh-token grant the refresh token — read from
// the Credential's Secret. Checked the same way in a manifest and in a pushed bundle.
import { describeType, expectArray, indexPath, type ErrorSink, objectFields } from "./fields.ts";
import { secretKeyProblem } from "./names.ts";

/** How the sidecar gets a token; compiled as written (defaults filled in). */
export interface OAuth2Spec {
  /** The token endpoint: an https URL (the client secret never leaves over cleartext). */
  tokenUrl: string;
  clientId: string;
  /** RFC 6749 §2.3.1: HTTP Basic (the default), or client_id and client_secret in the body. */
  clientAuth: "basic" | "body";
  grant: "clientCredentials" | "refreshToken";
  /** The Secret key holding the refresh token (refreshToken grant only). */
  refreshTokenKey?: string;
  /** Absent: no scope is asked for. */
  scopes?: string[];
  /** A refresh token the endpoint rotates is written back to the Secret (needs update on it). */
  writeBackRefreshToken?: boolean;
  audience?: string;
}

const FIELDS = [
  "tokenUrl",
  "clientId",
  "clientAuth",
  "grant",
  "refreshTokenKey",
  "scopes",
  "audience",
  "writeBackRefreshToken",
];
/** RFC 6749 scope-token: printable ASCII but space, '"' and '\'. */
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** `spec.oauth2` at `path`, defaults filled in, or undefined after reporting every problem. */
export function validateOAuth2(value: unknown, path: string, add: ErrorSink): OAuth2Spec | undefined {
  const fields = objectFields(value, path, add, FIELDS, "; write {tokenUrl: https://…, clientId: …}");
  if (fields === undefined) return undefined;
  const { obj, at, report: count } = fields;
  const text = (key: string, required: boolean): string | undefined => {
    const v = obj[key];
    if (v === undefined) {
      if (required) count(at(key), `is required; set ${key}`);
      return undefined;
    }
    if (typeof v !== "string" || v === "" || v.length > 2048) {
      count(at(key), `must be a non-empty string of at most 2048 characters, got ${describeType(v)}`);
      return undefined;
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(v)) {
      count(at(key), "must not contain control characters; remove them");
      return undefined;
    }
    return v;
  };
  const tokenUrl = text("tokenUrl", true);
  if (tokenUrl !== undefined) {
    const problem = tokenUrlProblem(tokenUrl);
    if (problem !== undefined) count(at("tokenUrl"), problem);
  }
  const clientId = text("clientId", true);
  const clientAuth = text("clientAuth", false) ?? "basic";
  if (clientAuth !== "basic" && clientAuth !== "body")
    count(at("clientAuth"), `"${clientAuth}" is not a client authentication; use basic or body`);
  const grant = text("grant", false) ?? "clientCredentials";
  if (grant !== "clientCredentials" && grant !== "refreshToken")
    count(
      at("grant"),
      `"${grant}" is not a grant this sidecar performs; use clientCredentials or refreshToken`,
    );
  const refreshTokenKey = text("refreshTokenKey", false);
  if (refreshTokenKey !== undefined) {
    const problem = secretKeyProblem(refreshTokenKey);
    if (problem !== undefined) count(at("refreshTokenKey"), problem);
    if (grant !== "refreshToken")
      count(
        at("refreshTokenKey"),
        "is only read by the refreshToken grant; set grant: refreshToken or remove it",
      );
  } else if (grant === "refreshToken")
    count(
      at("refreshTokenKey"),
      "is required by the refreshToken grant; name the Secret key holding the refresh token",
    );
  const scopes = obj.scopes === undefined ? undefined : scopeList(obj.scopes, at("scopes"), count);
  const audience = text("audience", false);
  let writeBack = false;
  if (obj.writeBackRefreshToken !== undefined) {
    if (typeof obj.writeBackRefreshToken !== "boolean")
      count(
        at("writeBackRefreshToken"),
        `must be true or false, got ${describeType(obj.writeBackRefreshToken)}`,
      );
    else if (obj.writeBackRefreshToken && grant !== "refreshToken")
      count(
        at("writeBackRefreshToken"),
        "only a refreshToken grant has a refresh token to write back; remove it",
      );
    else writeBack = obj.writeBackRefreshToken;
  }
  if (fields.errors() > 0 || tokenUrl === undefined || clientId === undefined) return undefined;
  const spec: OAuth2Spec = {
    tokenUrl,
    clientId,
    clientAuth: clientAuth as OAuth2Spec["clientAuth"],
    grant: grant as OAuth2Spec["grant"],
  };
  if (scopes !== undefined) spec.scopes = scopes;
  if (writeBack) spec.writeBackRefreshToken = true;
  if (refreshTokenKey !== undefined) spec.refreshTokenKey = refreshTokenKey;
  if (audience !== undefined) spec.audience = audience;
  return spec;
}

function tokenUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"${text}" is not a URL; write https://host/path`;
  }
  if (url.protocol !== "https:") return "must be an https URL: the client secret never leaves over cleartext";
  if (url.username !== "" || url.password !== "")
    return "must not hold credentials; the client secret comes from the Secret";
  if (url.hash !== "") return "must not have a fragment; remove it";
  return undefined;
}

function scopeList(value: unknown, path: string, add: ErrorSink): string[] | undefined {
  const items = expectArray(value, path, add, {
    min: 1,
    max: 64,
    emptyHint: "remove scopes to ask for none",
  });
  if (items === undefined) return undefined;
  const bad = items.flatMap((item, i) => (typeof item === "string" && SCOPE.test(item) ? [] : [i]));
  for (const i of bad)
    add(indexPath(path, i), "a scope is printable ASCII without spaces, quotes or backslashes");
  return bad.length === 0 ? (items as string[]) : undefined;
}
