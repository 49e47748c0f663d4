// AWS Signature Version 4 at the boundary: the headers that sign one request as it leaves (the
// agent's own Authorization and X-Amz-* auth were removed first). The canonical request follows
// botocore's, which the tests compare against: the path as sent for S3 and URI-encoded once more
// for other services, the query's raw name=value pairs sorted, the signed headers host,
// x-amz-content-sha256, x-amz-date and (temporary credentials) x-amz-security-token.
import { createHash, createHmac } from "node:crypto";
import type { HeaderList } from "./inject.ts";

/** The keys and scope one credential signs with. */
export interface SigV4Keys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  service: string;
}

/** The SHA-256 of an empty body, as SigV4 writes it. */
export const EMPTY_PAYLOAD = createHash("sha256").update("").digest("hex");
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

/** The payload hash of a whole body. */
export function payloadHash(body: Buffer): string {
  return createHash("sha256").update(body).digest("hex");
}

/** Query parameters of a presigned URL: the agent's own SigV4 auth, removed before signing. */
export function isQueryAuth(name: string): boolean {
  return /^x-amz-(algorithm|credential|date|expires|signedheaders|signature|security-token)$/i.test(name);
}

/** Python's urllib.parse.quote(s, safe="/~") for an ASCII path: what botocore encodes a path with. */
function quotePath(path: string): string {
  let out = "";
  for (const byte of Buffer.from(path, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.\-~/]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function canonicalQuery(query: string): string {
  if (query === "") return "";
  const pairs = query.split("&").map((pair): [string, string] => {
    const at = pair.indexOf("=");
    return at === -1 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac("sha256", key).update(data).digest();

/**
 * The headers to add to a request with `method`, `path` (as sent), `query` (raw) and Host `host`,
 * whose body hashes to `payload` (or UNSIGNED_PAYLOAD), signed at `now`.
 */
export function signatureHeaders(
  keys: SigV4Keys,
  request: { method: string; path: string; query: string; host: string; payload: string },
  now: Date,
): HeaderList {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const date = stamp.slice(0, 8);
  const signed: [string, string][] = [
    ["host", request.host],
    ["x-amz-content-sha256", request.payload],
    ["x-amz-date", stamp],
  ];
  if (keys.sessionToken !== undefined) signed.push(["x-amz-security-token", keys.sessionToken]);
  const names = signed.map(([name]) => name).join(";");
  const canonical = [
    request.method.toUpperCase(),
    keys.service === "s3" ? request.path : quotePath(request.path),
    canonicalQuery(request.query),
    signed.map(([name, value]) => `${name}:${value.trim().replace(/\s+/g, " ")}\n`).join(""),
    names,
    request.payload,
  ].join("\n");
  const scope = `${date}/${keys.region}/${keys.service}/aws4_request`;
  const toSign = [
    "AWS4-HMAC-SHA256",
    stamp,
    scope,
    createHash("sha256").update(canonical).digest("hex"),
  ].join("\n");
  const key = hmac(
    hmac(hmac(hmac(`AWS4${keys.secretAccessKey}`, date), keys.region), keys.service),
    "aws4_request",
  );
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  const headers: HeaderList = [
    ["X-Amz-Date", stamp],
    ["X-Amz-Content-SHA256", request.payload],
  ];
  if (keys.sessionToken !== undefined) headers.push(["X-Amz-Security-Token", keys.sessionToken]);
  headers.push([
    "Authorization",
    `AWS4-HMAC-SHA256 Credential=${keys.accessKeyId}/${scope}, SignedHeaders=${names}, Signature=${signature}`,
  ]);
  return headers;
}
