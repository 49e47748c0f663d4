// The policy core's public surface: pure functions from manifests to a CompiledPolicy, from a
// CompiledPolicy to a PolicyIndex, and from request facts to a Decision. No I/O anywhere below.

export { canonicalJson, policyHash } from "./canonical-json.ts";
export { compile, type CompileInput } from "./compile.ts";
export { decide, decideTunnel } from "./decide.ts";
export {
  canonicalHost,
  hostMatches,
  parseHostPattern,
  type CanonicalHost,
  type HostPatternResult,
} from "./host.ts";
export { labelSelectorMatches, validateLabelSelector } from "./label-selector.ts";
export { load, type PolicyIndex } from "./load.ts";
export type {
  Credential,
  CredentialInjection,
  EgressPolicy,
  EgressRule,
  LabelSelector,
  LabelSelectorRequirement,
  ManifestMeta,
} from "./manifest-types.ts";
export {
  compilePathPattern,
  normalizePath,
  pathMatches,
  type NormalizedPath,
  type PathPattern,
  type PathPatternResult,
} from "./path.ts";
export { validateCredential } from "./validate-credential.ts";
export { validatePolicy } from "./validate-policy.ts";
export type * from "./types.ts";
export type { OAuth2Spec } from "./oauth2.ts";
export type { GitHubAppSpec } from "./github-app.ts";
export type { HookSpec } from "./hook.ts";
export { placeholderFor } from "./placeholder.ts";
export { dnsSubdomainProblem } from "./names.ts";
export { awsScopeOf, SIGV4_HEADERS } from "./aws-sigv4.ts";
export {
  credentialOwnedHeaders,
  editableHeaderProblem,
  lowerNames,
  validateRemoveHeaders,
  validateSetHeaders,
} from "./header-edits.ts";
export { nameReachable } from "./reachable.ts";
export { sha256Hex } from "./sha256.ts";
