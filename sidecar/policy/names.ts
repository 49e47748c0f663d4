// Kubernetes and HTTP name grammars. Each check returns why a name is refused (ending with the
// fix), or undefined when it is fine, so callers attach their own field path.

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 1123 label (names of rules and namespaces): at most 63 of a-z, 0-9, '-'. */
export function dnsLabelProblem(name: string): string | undefined {
  if (name === "") return "must not be empty; give it a name";
  if (name.length > 63) return `"${name}" is ${name.length} characters long; use at most 63`;
  if (!DNS_LABEL.test(name)) {
    return `"${name}" is not a DNS label; use lower-case letters, digits and '-', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** RFC 1123 subdomain (names of Kubernetes objects): at most 253 characters of labels joined by '.'. */
export function dnsSubdomainProblem(name: string): string | undefined {
  if (name === "") return "must not be empty; give it a name";
  if (name.length > 253) return `"${name.slice(0, 32)}…" is ${name.length} characters long; use at most 253`;
  if (!DNS_SUBDOMAIN.test(name)) {
    return `"${name}" is not a valid name; use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Kubernetes label key: optional DNS-subdomain prefix and '/', then a name of at most 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    const problem = dnsSubdomainProblem(prefix);
    if (problem !== undefined) return `label key "${key}" has an invalid prefix: ${problem}`;
  }
  if (name === "" || name.length > 63 || !LABEL_NAME.test(name)) {
    return `label key "${key}" is not valid; use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, after an optional "prefix/"`;
  }
  return undefined;
}

/** Kubernetes label value: empty, or at most 63 letters, digits, '-', '_', '.' starting and ending alphanumeric. */
export function labelValueProblem(value: string): string | undefined {
  if (value === "") return undefined;
  if (value.length > 63 || !LABEL_NAME.test(value)) {
    return `label value "${value}" is not valid; use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** A key of a Secret's data: at most 253 of letters, digits, '-', '_', '.'. */
export function secretKeyProblem(key: string): string | undefined {
  if (key === "" || key.length > 253 || !SECRET_KEY.test(key)) {
    return `"${key}" is not a valid Secret key; use at most 253 letters, digits, '-', '_' or '.'`;
  }
  return undefined;
}

/** RFC 9110 token (header field names). */
export function httpTokenProblem(name: string): string | undefined {
  if (name === "" || !HTTP_TOKEN.test(name)) {
    return `"${name}" is not a valid HTTP header name; use letters, digits and !#$%&'*+-.^_\`|~`;
  }
  return undefined;
}
