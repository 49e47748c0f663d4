// The agent's trust bundle (DESIGN.md §3): what the agent's clients trust when the webhook points
// SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO and NODE_EXTRA_CA_CERTS at it.
// It holds exactly the roots the sidecar trusts for upstreams (the system roots and every
// --upstream-ca), so a passthrough host verifies in the agent as it does in the sidecar, plus the
// sidecar's interception CA for the hosts it terminates. The agent runs as another UID: the file is
// 0644 whatever the umask, its folder searchable by others, and it is replaced atomically so a
// client never reads half a bundle.
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { rootCertificates } from "node:tls";
import { basename, dirname, join } from "node:path";

/** The bundle's text: system roots, then the upstream roots, then the interception CA. */
export function trustBundlePem(upstreamCa: readonly string[], interceptionCaPem: string): string {
  const blocks = [...rootCertificates, ...upstreamCa, interceptionCaPem];
  return blocks.map((pem) => (pem.endsWith("\n") ? pem : `${pem}\n`)).join("");
}

/**
 * Writes `pem` to `path` atomically (a temp file in the same folder, fsynced, then renamed over),
 * mode 0644. Creates the folder (0755) when missing and adds the search bit for others when it
 * lacks it; throws with the path and what failed otherwise (a folder it cannot fix included).
 */
export function writeTrustBundle(path: string, pem: string): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new Error(`trust bundle ${path}: cannot create ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const mode = statSync(dir).mode;
  if ((mode & 0o001) === 0) {
    try {
      chmodSync(dir, (mode & 0o7777) | 0o001);
    } catch (err) {
      throw new Error(
        `trust bundle ${path}: ${dir} is not searchable by other users (the agent could not read the ` +
          `bundle) and cannot be changed: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, "wx", 0o600);
    writeFileSync(fd, pem);
    fchmodSync(fd, 0o644);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    throw new Error(`trust bundle ${path}: cannot write it: ${(err as Error).message}`, { cause: err });
  }
}
