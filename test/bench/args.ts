// Command-line flags of the benchmark scripts (`node test/bench/X.ts --flag [value]`).

/** True when `name` is given. */
export const flag = (name: string): boolean => process.argv.slice(2).includes(name);

/** The value after `name`, or undefined when `name` is not given. */
export function option(name: string): string | undefined {
  const argv = process.argv.slice(2);
  const at = argv.indexOf(name);
  return at === -1 ? undefined : argv[at + 1];
}
