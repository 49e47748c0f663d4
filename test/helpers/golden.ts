// Golden files: generated output pinned in the repository. `UPDATE_GOLDEN=1` rewrites them.
import { expect } from "chai";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** Whether this run rewrites golden files instead of comparing against them. */
export const UPDATING_GOLDEN = process.env["UPDATE_GOLDEN"] === "1";

/** Asserts `actual` equals the file at `relativePath` (from the repository root), or writes it when updating. */
export function expectGolden(relativePath: string, actual: string): void {
  const path = join(ROOT, relativePath);
  if (UPDATING_GOLDEN) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path))
    throw new Error(`${relativePath} does not exist; run the test with UPDATE_GOLDEN=1 to create it`);
  const expected = readFileSync(path, "utf8");
  expect(actual, `${relativePath} differs; if the change is intended, rerun with UPDATE_GOLDEN=1`).to.equal(
    expected,
  );
}

/** Fails naming every file under `dir` (from the repository root) that is not in `used` (paths from the root). */
export function assertNoStaleGoldens(dir: string, used: Iterable<string>): void {
  const wanted = new Set([...used].map((p) => relative(ROOT, join(ROOT, p))));
  const present = listFiles(join(ROOT, dir)).map((p) => relative(ROOT, p));
  const stale = present.filter((p) => !wanted.has(p));
  expect(
    stale,
    `golden files no test uses (delete them, or add a test case): ${stale.join(", ")}`,
  ).to.deep.equal([]);
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(path) : [path];
  });
}
