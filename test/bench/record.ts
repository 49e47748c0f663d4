// Where benchmark scripts write their results: a dated block appended to the end of one section
// of docs/benchmarks.md, formatted as `make lint` wants it.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as prettier from "prettier";
import { ROOT } from "../helpers/cli.ts";

/** The document every benchmark records into. */
export const BENCHMARKS_DOC = join(ROOT, "docs/benchmarks.md");

/**
 * Appends `block` at the end of `section` (a `## …` heading line) of docs/benchmarks.md; other
 * sections may follow it. A missing section is created at the end of the document.
 */
export async function recordBenchmark(section: string, block: string): Promise<void> {
  let doc = readFileSync(BENCHMARKS_DOC, "utf8");
  if (!doc.includes(`\n${section}\n`)) doc = `${doc.replace(/\n*$/, "\n\n")}${section}\n\n`;
  const at = doc.indexOf(`\n${section}\n`);
  const next = doc.indexOf("\n## ", at + section.length + 2);
  const end = next === -1 ? doc.length : next + 1;
  const before = doc.slice(0, end).replace(/\n*$/, "\n\n");
  const text = `${before}${block}${next === -1 ? "" : `\n${doc.slice(end)}`}`;
  const options = (await prettier.resolveConfig(BENCHMARKS_DOC)) ?? {};
  writeFileSync(BENCHMARKS_DOC, await prettier.format(text, { ...options, filepath: BENCHMARKS_DOC }));
}
