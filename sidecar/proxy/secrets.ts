// Where credential values come from. The sidecar asks by namespace/name/key at request time, so a
// rotated value is used on the next request; nothing here is ever logged.

/** Why a credential's value could not be had (bounded label values for credential errors). */
export type SecretFailure = "SecretMissing" | "KeyMissing";

/** The answer to one lookup. */
export type SecretLookup = { ok: true; value: Buffer } | { ok: false; reason: SecretFailure };

/** A Secret by namespace and name. */
export interface SecretRef {
  namespace: string;
  name: string;
}

/** A source of Secret values: files for `airlock run`, the Kubernetes API in a cluster. */
export interface SecretSource {
  get(namespace: string, name: string, key: string): SecretLookup;
  /** Told which Secrets the applied policy references (sources that watch start watching them). */
  track?(refs: SecretRef[]): void;
  /** Writes one key of a Secret (a rotated refresh token); sources that cannot, lack it. */
  update?(
    namespace: string,
    name: string,
    key: string,
    value: string,
  ): Promise<{ ok: true } | { ok: false; message: string }>;
}

/** Secret data as a manifest carries it, already decoded. */
export interface SecretData {
  namespace: string;
  name: string;
  data: Map<string, Buffer>;
}

/** A fixed set of Secrets (from YAML files); replaced whole when the files are read again. */
export class StaticSecrets implements SecretSource {
  #secrets = new Map<string, Map<string, Buffer>>();

  constructor(secrets: SecretData[] = []) {
    for (const secret of secrets) this.#secrets.set(`${secret.namespace}/${secret.name}`, secret.data);
  }

  get(namespace: string, name: string, key: string): SecretLookup {
    const data = this.#secrets.get(`${namespace}/${name}`);
    if (!data) return { ok: false, reason: "SecretMissing" };
    const value = data.get(key);
    return value ? { ok: true, value } : { ok: false, reason: "KeyMissing" };
  }
}
