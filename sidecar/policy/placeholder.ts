// Placeholders: a Credential with `placeholder: true` has a stand-in value the agent may hold
// (many tools will not start without some API key in their environment). It is derived from the
// Credential's namespace and name only — never from the real value, so it is no prefix of it and
// tells nothing about it — and the sidecar swaps it for the real value on requests the Credential
// is attached to, and blocks it anywhere else (PlaceholderOffHost).
import { sha256Hex } from "./sha256.ts";

/** The placeholder of Credential `namespace/name`. */
export function placeholderFor(namespace: string, name: string): string {
  const digest = sha256Hex(`airlock placeholder v1\0${namespace}/${name}`);
  return `airlock_ph_${digest.slice(0, 32)}`;
}
