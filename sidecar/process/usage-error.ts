// The one error type for a command-line mistake, shared by every `airlock` command (sidecar and
// operator): the command prints it with its usage and exits 2.

/** A command-line mistake: printed with the command's usage, exit 2. */
export class UsageError extends Error {}
