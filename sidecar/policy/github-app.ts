// A Credential's `spec.githubApp`: the value attached is a GitHub App installation token the
// sidecar obtains itself — it signs an RS256 JWT with the App's private key (the Credential's
// Secret) and exchanges it at POST {apiUrl}/app/installations/{installationId}/access_tokens.
// Checked the same way in a manifest and in a pushed bundle.
import {
  describeType,
  expectArray,
  expectRecord,
  fieldPath,
  indexPath,
  type ErrorSink,
  objectFields,
} from "./fields.ts";

export interface GitHubAppSpec {
  /** The App's id (or its client id): the JWT's issuer. */
  appId: string;
  installationId: number;
  /** The REST API root: https://api.github.com, or GitHub Enterprise's https://HOST/api/v3. */
  apiUrl: string;
  /** Scope the token to these repositories (names, without the owner). */
  repositories?: string[];
  /** Scope the token to these permissions, e.g. {contents: read}. */
  permissions?: Record<string, "read" | "write" | "admin">;
}

const FIELDS = ["appId", "installationId", "apiUrl", "repositories", "permissions"];
const DEFAULT_API_URL = "https://api.github.com";
const REPOSITORY = /^[A-Za-z0-9._-]{1,100}$/;
const PERMISSION = /^[a-z_]{1,64}$/;

/** `spec.githubApp` at `path` (defaults filled in), or undefined after reporting every problem. */
export function validateGitHubApp(value: unknown, path: string, add: ErrorSink): GitHubAppSpec | undefined {
  const fields = objectFields(value, path, add, FIELDS, "; write {appId: 12345, installationId: 678}");
  if (fields === undefined) return undefined;
  const { obj, at, report: count } = fields;
  let appId: string | undefined;
  if (obj.appId === undefined) count(at("appId"), "is required; the App's id (a number) or client id");
  else if (typeof obj.appId === "number" && Number.isSafeInteger(obj.appId) && obj.appId > 0)
    appId = String(obj.appId);
  else if (typeof obj.appId === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(obj.appId)) appId = obj.appId;
  else
    count(
      at("appId"),
      `must be the App's id (a positive integer) or client id, got ${describeType(obj.appId)}`,
    );
  let installationId: number | undefined;
  if (obj.installationId === undefined)
    count(at("installationId"), "is required; the installation's id (a number)");
  else if (
    typeof obj.installationId === "number" &&
    Number.isSafeInteger(obj.installationId) &&
    obj.installationId > 0
  )
    installationId = obj.installationId;
  else count(at("installationId"), `must be a positive integer, got ${describeType(obj.installationId)}`);
  let apiUrl = DEFAULT_API_URL;
  if (obj.apiUrl !== undefined) {
    const problem =
      typeof obj.apiUrl === "string"
        ? apiUrlProblem(obj.apiUrl)
        : `must be a string, got ${describeType(obj.apiUrl)}`;
    if (problem === undefined) apiUrl = (obj.apiUrl as string).replace(/\/+$/, "");
    else count(at("apiUrl"), problem);
  }
  let repositories: string[] | undefined;
  if (obj.repositories !== undefined) {
    const items = expectArray(obj.repositories, at("repositories"), count, {
      min: 1,
      max: 500,
      emptyHint: "remove repositories for every repository of the installation",
    });
    if (items !== undefined) {
      const bad = items.flatMap((item, i) => (typeof item === "string" && REPOSITORY.test(item) ? [] : [i]));
      for (const i of bad)
        count(
          indexPath(at("repositories"), i),
          "a repository name (without its owner): letters, digits, '.', '_', '-'",
        );
      if (bad.length === 0) repositories = items as string[];
    }
  }
  let permissions: GitHubAppSpec["permissions"];
  if (obj.permissions !== undefined) {
    const record = expectRecord(obj.permissions, at("permissions"), count, "; write e.g. {contents: read}");
    if (record !== undefined) {
      permissions = {};
      for (const [name, level] of Object.entries(record)) {
        if (!PERMISSION.test(name) || (level !== "read" && level !== "write" && level !== "admin"))
          count(fieldPath(at("permissions"), name), "a permission name maps to read, write or admin");
        else permissions[name] = level;
      }
    }
  }
  if (fields.errors() > 0 || appId === undefined || installationId === undefined) return undefined;
  const spec: GitHubAppSpec = { appId, installationId, apiUrl };
  if (repositories !== undefined) spec.repositories = repositories;
  if (permissions !== undefined) spec.permissions = permissions;
  return spec;
}

function apiUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"${text}" is not a URL; write https://api.github.com or https://HOST/api/v3`;
  }
  if (url.protocol !== "https:")
    return "must be an https URL: the App's signed token never leaves over cleartext";
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "")
    return "must be a plain https URL (no credentials, query or fragment)";
  return undefined;
}
