// Credential validation. A credential is attached by the sidecar, so anything that could let
// its value escape its header (CR/LF, hop-by-hop headers, framing headers) is refused here.

import { validateSigV4 } from "./aws-sigv4.ts";
import { validateGitHubApp, type GitHubAppSpec } from "./github-app.ts";
import { validateOAuth2, type OAuth2Spec } from "./oauth2.ts";
import { API_GROUP_VERSION } from "../constants.ts";
import {
  checkKnownFields,
  checkUnique,
  describeType,
  expectArray,
  expectRecord,
  fieldPath,
  indexPath,
  isRecord,
  type ErrorSink,
} from "./fields.ts";
import { parseHostPattern } from "./host.ts";
import type { Credential, CredentialInjection } from "./manifest-types.ts";
import { dnsSubdomainProblem, httpTokenProblem, secretKeyProblem } from "./names.ts";
import { objectRefOf, validateHeader, withObject } from "./object-meta.ts";
import type { Result } from "./types.ts";

const FRAMING_HEADERS = ["host", "content-length", "transfer-encoding"];
const HOP_BY_HOP_HEADERS = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
];
// Control characters except HTAB: CR/LF would split the header, NUL truncates it in some servers.
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

/** Why `name` cannot carry a credential (ending with the fix), or undefined when it can. */
export function injectionHeaderProblem(name: string): string | undefined {
  const token = httpTokenProblem(name);
  if (token !== undefined) return token;
  const lower = name.toLowerCase();
  if (FRAMING_HEADERS.includes(lower)) {
    return `"${name}" frames or routes the request and cannot carry a credential; use a header such as Authorization`;
  }
  if (HOP_BY_HOP_HEADERS.includes(lower)) {
    return `"${name}" is a hop-by-hop header that proxies remove; use an end-to-end header such as Authorization`;
  }
  return undefined;
}

/** Why `prefix` cannot precede a header value, or undefined when it can. */
export function valuePrefixProblem(prefix: string): string | undefined {
  if (hasControl(prefix)) return "must not contain control characters (CR, LF, NUL, …); remove them";
  if (prefix.length > 1024) return "is longer than 1024 characters; shorten it";
  return undefined;
}

/** Why `username` cannot be a Basic auth user-id, or undefined when it can. */
export function basicAuthUsernameProblem(username: string): string | undefined {
  if (username.includes(":"))
    return "must not contain ':' (it separates user-id and password in Basic auth); remove it";
  if (hasControl(username)) return "must not contain control characters; remove them";
  if (username.length > 256) return "is longer than 256 characters; shorten it";
  return undefined;
}

/** Why `name` cannot be a query parameter name for a credential, or undefined when it can. */
export function queryParamProblem(name: string): string | undefined {
  if (name === "" || name.length > 128 || !/^[A-Za-z0-9\-._~]+$/.test(name)) {
    return `"${name}" is not a valid query parameter name; use at most 128 letters, digits, '-', '.', '_' or '~'`;
  }
  return undefined;
}

function stringField(
  obj: Record<string, unknown>,
  path: string,
  key: string,
  add: ErrorSink,
  problem: (s: string) => string | undefined,
  required = true,
): string | undefined {
  const at = fieldPath(path, key);
  const value = obj[key];
  if (value === undefined) {
    if (required) add(at, `is required; set ${key}`);
    return undefined;
  }
  const message =
    typeof value === "string"
      ? problem(value)
      : `must be a string, got ${describeType(value)}; quote the value`;
  if (message !== undefined) {
    add(at, message);
    return undefined;
  }
  return value as string;
}

function validateInjection(value: unknown, add: ErrorSink): CredentialInjection | undefined {
  const path = "spec.injection";
  const injection = expectRecord(
    value,
    path,
    add,
    '; write e.g. {header: {name: Authorization, valuePrefix: "Bearer "}}',
  );
  if (injection === undefined) return undefined;
  const forms = ["header", "basicAuth", "queryParam", "awsSigV4"] as const;
  checkKnownFields(injection, path, forms, add);
  const present = forms.filter((form) => injection[form] !== undefined);
  const [form] = present;
  if (present.length !== 1 || form === undefined) {
    add(
      path,
      present.length === 0
        ? "must set exactly one of header, basicAuth, queryParam, awsSigV4; add one"
        : `sets ${present.join(" and ")}; keep exactly one of header, basicAuth, queryParam, awsSigV4`,
    );
    return undefined;
  }
  const formPath = fieldPath(path, form);
  const body = expectRecord(injection[form], formPath, add);
  if (body === undefined) return undefined;
  if (form === "header") {
    checkKnownFields(body, formPath, ["name", "valuePrefix"], add);
    const name = stringField(body, formPath, "name", add, injectionHeaderProblem);
    const prefix = stringField(body, formPath, "valuePrefix", add, valuePrefixProblem, false);
    if (name === undefined || (body.valuePrefix !== undefined && prefix === undefined)) return undefined;
    return { header: prefix === undefined ? { name } : { name, valuePrefix: prefix } };
  }
  if (form === "basicAuth") {
    checkKnownFields(body, formPath, ["username"], add);
    const username = stringField(body, formPath, "username", add, basicAuthUsernameProblem);
    return username === undefined ? undefined : { basicAuth: { username } };
  }
  if (form === "awsSigV4") {
    const signed = validateSigV4(body, formPath, add);
    if (signed === undefined) return undefined;
    const fields: Omit<typeof signed, "kind"> & { kind?: string } = { ...signed };
    delete fields.kind;
    return { awsSigV4: fields };
  }
  checkKnownFields(body, formPath, ["name"], add);
  const name = stringField(body, formPath, "name", add, queryParamProblem);
  return name === undefined ? undefined : { queryParam: { name } };
}

function validateHosts(value: unknown, add: ErrorSink): string[] | undefined {
  const path = "spec.hosts";
  const items = expectArray(value, path, add, {
    min: 1,
    max: 64,
    emptyHint: "an empty bound would attach the credential nowhere; list its hosts or remove hosts",
  });
  if (items === undefined) return undefined;
  const checked = items.map((item, i) => {
    const parsed = typeof item === "string" ? parseHostPattern(item) : undefined;
    if (parsed?.ok === true) return item as string;
    add(
      indexPath(path, i),
      parsed?.message ?? `must be a string, got ${describeType(item)}; quote the value`,
    );
    return undefined;
  });
  checkUnique(checked, path, add);
  const hosts = checked.filter((h) => h !== undefined);
  if (hosts.length !== items.length) return undefined;
  return hosts;
}

/**
 * Validates a parsed Credential manifest, collecting every error with its field path; fills
 * namespace from `defaultNamespace`. Never reads the Secret (the core never holds values).
 */
export function validateCredential(obj: unknown, defaultNamespace = "default"): Result<Credential> {
  const errors: { path: string; message: string }[] = [];
  const add: ErrorSink = (path, message) => errors.push({ path, message });
  const object = objectRefOf(obj, "Credential", defaultNamespace);
  const root = expectRecord(obj, "", add, "; write a Credential manifest");
  if (root === undefined) return { ok: false, errors: withObject(errors, object) };

  const metadata = validateHeader(root, "Credential", defaultNamespace, add);
  const spec = expectRecord(root.spec, "spec", add, "; add spec: {secretRef: …, injection: …}");
  let secretRef: { name: string; key: string } | undefined;
  let injection: CredentialInjection | undefined;
  let hosts: string[] | undefined;
  let oauth2: OAuth2Spec | undefined;
  let githubApp: GitHubAppSpec | undefined;
  let placeholder: boolean | undefined;
  if (spec !== undefined) {
    checkKnownFields(
      spec,
      "spec",
      ["secretRef", "injection", "hosts", "oauth2", "githubApp", "placeholder"],
      add,
    );
    if (spec.placeholder !== undefined) {
      if (typeof spec.placeholder !== "boolean")
        add("spec.placeholder", `must be true or false, got ${describeType(spec.placeholder)}`);
      else if (spec.placeholder && isRecord(spec.injection) && spec.injection.awsSigV4 !== undefined)
        add(
          "spec.placeholder",
          "a signing credential (awsSigV4) has no value to stand in for; remove placeholder",
        );
      else placeholder = spec.placeholder;
    }
    if (spec.secretRef === undefined)
      add("spec.secretRef", "is required; name the Secret and key: {name: …, key: …}");
    else {
      const ref = expectRecord(spec.secretRef, "spec.secretRef", add, "; write {name: …, key: …}");
      if (ref !== undefined) {
        checkKnownFields(ref, "spec.secretRef", ["name", "key"], add);
        const name = stringField(ref, "spec.secretRef", "name", add, dnsSubdomainProblem);
        const key = stringField(ref, "spec.secretRef", "key", add, secretKeyProblem);
        if (name !== undefined && key !== undefined) secretRef = { name, key };
      }
    }
    if (spec.injection === undefined)
      add("spec.injection", "is required; set exactly one of header, basicAuth, queryParam");
    else injection = validateInjection(spec.injection, add);
    if (spec.hosts !== undefined) hosts = validateHosts(spec.hosts, add);
    if (spec.oauth2 !== undefined) oauth2 = validateOAuth2(spec.oauth2, "spec.oauth2", add);
    if (spec.githubApp !== undefined) {
      if (spec.oauth2 !== undefined)
        add("spec.githubApp", "a Credential mints its token one way; keep oauth2 or githubApp, not both");
      else githubApp = validateGitHubApp(spec.githubApp, "spec.githubApp", add);
    }
  }

  if (errors.length > 0 || !metadata || !secretRef || !injection)
    return { ok: false, errors: withObject(errors, object) };
  const value: Credential = {
    apiVersion: API_GROUP_VERSION,
    kind: "Credential",
    metadata,
    spec: {
      secretRef,
      injection,
      ...(hosts === undefined ? {} : { hosts }),
      ...(oauth2 === undefined ? {} : { oauth2 }),
      ...(githubApp === undefined ? {} : { githubApp }),
      ...(placeholder === true ? { placeholder } : {}),
    },
  };
  return { ok: true, value };
}
