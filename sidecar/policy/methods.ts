// The request methods rules speak of. One list serves validation (what a rule may name) and
// decide() (what a rule that names no methods allows), so the two can never disagree.

/**
 * Methods a rule may name, and the methods a rule without `methods` allows. TRACE (it reflects
 * the request, an injected credential included), CONNECT (an upstream tunnel no rule can
 * inspect) and extension methods (PROPFIND, …) are in neither.
 */
export const HTTP_METHODS: readonly string[] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** HTTP_METHODS as a set, for the per-request check. */
export const DEFAULT_METHODS: ReadonlySet<string> = new Set(HTTP_METHODS);
