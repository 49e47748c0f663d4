// Run by the Containerfile (and by `make bench`, to measure what the image runs; not in
// development): writes ROOT/sidecar/cli/bundle.js, the sidecar's entry point and everything it
// imports — its modules and its production dependencies — as one ES module, whitespace and syntax
// minified, names kept. bin/airlock runs it when it exists. One module instead of ~150 loaded one
// by one takes 8 MiB off the idle sidecar (docs/decisions.md, "The sidecar runs as one bundle").
//
//   node image/bundle.ts ROOT [ESBUILD_DIR]   (ESBUILD_DIR holds node_modules/esbuild; default:
//                                              this repository's)
//
// The bundle sits next to the modules it replaces, so the paths they resolve against their own
// location (the memory addon, the demo policy) resolve the same from it; undici's Pool is still
// required at run time from node_modules.
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import process from "node:process";

const [rootArg, esbuildDir] = process.argv.slice(2);
if (rootArg === undefined) {
  process.stderr.write("usage: node image/bundle.ts ROOT [ESBUILD_DIR]\n");
  process.exit(2);
}
const root = resolve(rootArg);
const from = esbuildDir === undefined ? import.meta.url : join(resolve(esbuildDir), "package.json");
const { buildSync } = createRequire(from)("esbuild") as typeof import("esbuild");

const outfile = join(root, "sidecar/cli/bundle.js");
const result = buildSync({
  entryPoints: [join(root, "sidecar/cli/main.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node24",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "eof",
  // The CommonJS dependencies call require() for Node's built-in modules.
  banner: {
    js:
      'import { createRequire as __airlockRequire } from "node:module";' +
      "const require = __airlockRequire(import.meta.url);",
  },
  logLevel: "warning",
  metafile: true,
});
const inputs = Object.keys(result.metafile.inputs).length;
process.stderr.write(`bundle: ${outfile} from ${String(inputs)} modules\n`);
