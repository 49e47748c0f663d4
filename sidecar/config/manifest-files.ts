// Reading EgressPolicy, Credential and Secret manifests from files and folders — the same YAML a
// user would `kubectl apply` — for `airlock run`, `validate`, `explain` and a file-fed sidecar.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { compile, type CompiledPolicy, type FieldError } from "../policy/index.ts";
import type { SecretData } from "../proxy/secrets.ts";

/** One problem in one file, printed as `file: path: message`. */
export interface FileError {
  file: string;
  path: string;
  message: string;
}

/** Everything read from a set of files, compiled. */
export interface LoadedFiles {
  compiled: CompiledPolicy;
  secrets: SecretData[];
  files: string[];
}

/** Formats errors one a line as `file: path: message`. */
export function formatFileErrors(errors: FileError[]): string {
  return errors.map((e) => `${e.file}: ${e.path === "" ? "" : `${e.path}: `}${e.message}`).join("\n");
}

const MANIFEST_EXTENSIONS = /\.(ya?ml|json)$/i;

/** Lists the manifest files named by `paths` (folders are read recursively, sorted). */
function listFiles(paths: string[], errors: FileError[]): string[] {
  const out: string[] = [];
  const visit = (path: string, explicit: boolean): void => {
    let stat;
    try {
      stat = statSync(path);
    } catch {
      errors.push({ file: path, path: "", message: "no such file or folder; check the --policy path" });
      return;
    }
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path).sort()) {
        if (!entry.startsWith(".")) visit(join(path, entry), false);
      }
    } else if (explicit || MANIFEST_EXTENSIONS.test(path)) {
      out.push(path);
    }
  };
  for (const path of paths) visit(path, true);
  return out;
}

interface Sourced {
  file: string;
  doc: number;
  object: Record<string, unknown>;
}

function keyOf(kind: string, object: Record<string, unknown>): string {
  const metadata = (object.metadata ?? {}) as { name?: unknown; namespace?: unknown };
  const namespace = typeof metadata.namespace === "string" ? metadata.namespace : "default";
  return `${kind}/${namespace}/${String(metadata.name)}`;
}

function decodeSecret(source: Sourced, errors: FileError[]): SecretData | undefined {
  const fail = (path: string, message: string): SecretData | undefined => {
    errors.push({ file: source.file, path, message: `${message} (Secret, document ${source.doc + 1})` });
    return undefined;
  };
  const metadata = source.object.metadata as { name?: unknown; namespace?: unknown } | undefined;
  if (typeof metadata?.name !== "string" || metadata.name === "")
    return fail("metadata.name", "a Secret needs a name");
  const data = new Map<string, Buffer>();
  const { data: encoded, stringData } = source.object as { data?: unknown; stringData?: unknown };
  for (const [field, value] of [
    ["data", encoded],
    ["stringData", stringData],
  ] as const) {
    if (value === undefined || value === null) continue;
    if (typeof value !== "object" || Array.isArray(value))
      return fail(field, "must be a map of key to value");
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      if (typeof item !== "string") return fail(`${field}.${key}`, "must be a string");
      if (field === "data" && !/^[A-Za-z0-9+/]*={0,2}$/.test(item.replace(/\s/g, "")))
        return fail(`${field}.${key}`, "is not valid base64; put plain text under stringData instead");
      // stringData wins over data, as the API server merges them.
      data.set(key, field === "data" ? Buffer.from(item, "base64") : Buffer.from(item, "utf8"));
    }
  }
  const namespace = typeof metadata.namespace === "string" ? metadata.namespace : "default";
  return { namespace, name: metadata.name, data };
}

/** The manifests under some paths, parsed and sorted by kind, before compilation. */
export interface ManifestSet {
  policies: Record<string, unknown>[];
  credentials: Record<string, unknown>[];
  secrets: SecretData[];
  files: string[];
  /** `Kind/namespace/name` → the file it came from, to locate compile errors. */
  fileOf: Map<string, string>;
  errors: FileError[];
}

/** Reads and parses the manifests under `paths`; problems are collected in `errors`, never thrown. */
export function readManifests(paths: string[]): ManifestSet {
  const errors: FileError[] = [];
  const files = listFiles(paths, errors);
  const sources: { EgressPolicy: Sourced[]; Credential: Sourced[]; Secret: Sourced[] } = {
    EgressPolicy: [],
    Credential: [],
    Secret: [],
  };
  for (const file of files) {
    let docs: unknown[];
    try {
      docs = loadAll(readFileSync(file, "utf8"));
    } catch (err) {
      errors.push({
        file,
        path: "",
        message: `not valid YAML: ${(err as Error).message.split("\n")[0] ?? ""}`,
      });
      continue;
    }
    docs.forEach((doc, index) => {
      if (doc === null || doc === undefined) return;
      if (typeof doc !== "object" || Array.isArray(doc)) {
        errors.push({ file, path: "", message: `document ${index + 1} is not a Kubernetes object` });
        return;
      }
      const object = doc as Record<string, unknown>;
      const kind = object.kind;
      if (kind === "EgressPolicy" || kind === "Credential" || kind === "Secret") {
        sources[kind].push({ file, doc: index, object });
      } else {
        errors.push({
          file,
          path: "kind",
          message: `document ${index + 1}: kind ${JSON.stringify(kind)} is not read by airlock; give it EgressPolicy, Credential and Secret manifests only`,
        });
      }
    });
  }
  const secrets = sources.Secret.map((s) => decodeSecret(s, errors)).filter((s) => s !== undefined);
  const fileOf = new Map<string, string>();
  for (const kind of ["EgressPolicy", "Credential"] as const) {
    for (const s of sources[kind]) fileOf.set(keyOf(kind, s.object), s.file);
  }
  return {
    policies: sources.EgressPolicy.map((s) => s.object),
    credentials: sources.Credential.map((s) => s.object),
    secrets,
    files,
    fileOf,
    errors,
  };
}

/**
 * Reads, parses and compiles the manifests under `paths`. Every error in every file is reported,
 * each with its file and field path; nothing is returned unless everything is valid.
 */
export function loadManifestFiles(
  paths: string[],
): { ok: true; value: LoadedFiles } | { ok: false; errors: FileError[] } {
  return compileManifests(readManifests(paths));
}

/** Compiles a ManifestSet, locating every compile error in its file. */
export function compileManifests(
  set: ManifestSet,
): { ok: true; value: LoadedFiles } | { ok: false; errors: FileError[] } {
  const errors = [...set.errors];
  const compiled = compile({ policies: set.policies, credentials: set.credentials });
  if (!compiled.ok) errors.push(...compiled.errors.map((e) => locate(e, set.fileOf, set.files)));
  if (errors.length > 0 || !compiled.ok) return { ok: false, errors };
  return { ok: true, value: { compiled: compiled.value, secrets: set.secrets, files: set.files } };
}

function locate(error: FieldError, fileOf: Map<string, string>, files: string[]): FileError {
  const ref = error.object;
  const file = ref
    ? (fileOf.get(`${ref.kind}/${ref.namespace}/${ref.name}`) ?? files.join(","))
    : files.join(",");
  const where = ref ? ` (${ref.kind} ${ref.namespace}/${ref.name})` : "";
  return { file, path: error.path, message: `${error.message}${where}` };
}
