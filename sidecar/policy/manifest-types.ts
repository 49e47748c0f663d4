// The custom resources as validateEgressPolicy/validateCredential return them: the YAML of
// DESIGN.md §2 after structural and semantic checks, with defaults that change meaning filled in.

import type { HookSpec } from "./hook.ts";
import type { SigV4Injection } from "./aws-sigv4.ts";
import type { GitHubAppSpec } from "./github-app.ts";
import type { OAuth2Spec } from "./oauth2.ts";
import type { HeaderSet } from "./header-edits.ts";
import type { Mode } from "./types.ts";

/** The part of `metadata` the core reads; a manifest's other metadata fields are ignored. */
export interface ManifestMeta {
  name: string;
  /** Filled with the caller's default namespace when absent. */
  namespace: string;
  generation?: number;
}

/** One `matchExpressions` item of a Kubernetes LabelSelector. */
export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  /** Non-empty for In/NotIn; absent for Exists/DoesNotExist. */
  values?: string[];
}

/** A standard Kubernetes LabelSelector; `{}` selects every pod of the namespace. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** One `spec.egress` rule as written (defaults for ports/methods/paths are applied by compile). */
export interface EgressRule {
  name: string;
  hosts: string[];
  ports?: number[];
  methods?: string[];
  paths?: string[];
  /** Name of a Credential in the policy's namespace. */
  credential?: string;
  /** Headers set on every request the rule matches (non-secret values). */
  setHeaders?: HeaderSet[];
  /** Headers removed from every request the rule matches. */
  removeHeaders?: string[];
  /** A service asked about every request the rule matches (allow/deny, header edits). */
  hook?: HookSpec;
}

/** A validated EgressPolicy; `mode` defaults to Enforce and `egress` to []. */
export interface EgressPolicy {
  apiVersion: "airlock.dev/v1alpha1";
  kind: "EgressPolicy";
  metadata: ManifestMeta;
  spec: { podSelector: LabelSelector; mode: Mode; egress: EgressRule[] };
}

/** `spec.injection` of a Credential: exactly one form. */
export type CredentialInjection =
  | { header: { name: string; valuePrefix?: string } }
  | { basicAuth: { username: string } }
  | { queryParam: { name: string } }
  | { awsSigV4: Omit<SigV4Injection, "kind" | "unsignedPayload"> & { unsignedPayload?: boolean } };

/** A validated Credential: where the secret value lives, how it is attached, where it may go. */
export interface Credential {
  apiVersion: "airlock.dev/v1alpha1";
  kind: "Credential";
  metadata: ManifestMeta;
  spec: {
    secretRef: { name: string; key: string };
    injection: CredentialInjection;
    /** Hard bound of host patterns; absent = no bound beyond the rules naming it. */
    hosts?: string[];
    /** The value attached is an OAuth2 access token obtained with the Secret's client secret. */
    oauth2?: OAuth2Spec;
    /** The value attached is a GitHub App installation token signed for with the Secret's key. */
    githubApp?: GitHubAppSpec;
    /** The agent may hold a placeholder, swapped for the real value where the credential goes. */
    placeholder?: boolean;
  };
}
