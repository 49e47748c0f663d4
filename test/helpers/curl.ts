// Runs the real curl binary and returns what it saw. A missing curl fails the test, saying so.
// What curl saw is the agent's view: it is recorded for the canary scan (canary.ts).
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canary } from "./canary.ts";

/** curl's view of one exchange. */
export interface CurlResult {
  code: number | null;
  status: number;
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/** Writes PEMs into one bundle file (for --cacert) and returns its path. */
export function pemBundle(...pems: string[]): string {
  const path = join(mkdtempSync(join(tmpdir(), "airlock-ca-")), "bundle.pem");
  writeFileSync(path, pems.join("\n"));
  return path;
}

/**
 * Runs curl with `args` plus flags that print the response headers; never follows redirects. Its
 * stdout and stderr are recorded as an exposed response.
 */
export function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile(
      "curl",
      ["-sS", "-D", "-", "--max-time", "10", "--noproxy", "", ...args],
      { encoding: "utf8", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === "ENOENT") {
          reject(new Error("curl is not installed: install Debian's curl (apt-get install curl)"));
          return;
        }
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        canary.record("response", `curl ${args.join(" ")}`, `${stdout}\n${stderr}`, "exposed");
        // With a proxy, -D prints the CONNECT response first; keep the last header block.
        const blocks = stdout.split(/\r\n\r\n/);
        let headerBlock = "";
        let bodyStart = 0;
        let offset = 0;
        for (const block of blocks) {
          if (/^HTTP\/\d(\.\d)? \d{3}/.test(block)) {
            headerBlock = block;
            bodyStart = offset + block.length + 4;
          } else break;
          offset += block.length + 4;
        }
        const lines = headerBlock.split("\r\n");
        const status = Number(/^HTTP\/\S+ (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0);
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(":");
          if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        resolve({
          code: typeof code === "number" ? code : 1,
          status,
          headers,
          body: stdout.slice(bodyStart),
          stderr,
        });
      },
    );
  });
}
