// The four clients an agent drives, as command lines for `kubectl exec` into the agent container:
// each fetches one URL and prints the HTTP status and the body, or fails with a non-zero exit. None
// is told about Airlock: they trust what the injected SSL_CERT_FILE / CURL_CA_BUNDLE /
// REQUESTS_CA_BUNDLE / GIT_SSL_CAINFO / NODE_EXTRA_CA_CERTS name, and use the explicit proxy only
// when given the usual proxy variables.
import { PORTS } from "../../sidecar/constants.ts";

export type ClientName = "curl" | "python3" | "git" | "node";
export const CLIENTS: readonly ClientName[] = ["curl", "python3", "git", "node"];

/** The command fetching `url` with `client`. git asks for `URL/info/refs?service=git-upload-pack`. */
export function clientCommand(client: ClientName, url: string): string[] {
  switch (client) {
    case "curl":
      return ["curl", "-sS", "--max-time", "15", "-w", "\n%{http_code}\n", url];
    case "python3":
      return [
        "python3",
        "-c",
        "import requests, sys\nr = requests.get(sys.argv[1], timeout=15)\nprint(r.status_code)\nprint(r.text)",
        url,
      ];
    case "git":
      // Smart HTTP discovery is a GET of info/refs: the upstream answers plain text, so git fails
      // after the request arrived; the arrival is what the test reads.
      return ["git", "-c", "http.lowSpeedTime=15", "ls-remote", url];
    case "node":
      return [
        "node",
        "-e",
        [
          "fetch(process.argv[1], { signal: AbortSignal.timeout(15000) }).then(",
          "  async (r) => { console.log(r.status); console.log(await r.text()); },",
          "  (e) => { console.error(String(e.cause?.code ?? e.message)); process.exit(1); });",
        ].join("\n"),
        url,
      ];
  }
}

/** The proxy variables every client honours, pointing at the sidecar's explicit proxy. */
export const EXPLICIT_PROXY_ENV: Record<string, string> = {
  HTTPS_PROXY: `http://127.0.0.1:${String(PORTS.explicit)}`,
  https_proxy: `http://127.0.0.1:${String(PORTS.explicit)}`,
  HTTP_PROXY: `http://127.0.0.1:${String(PORTS.explicit)}`,
  http_proxy: `http://127.0.0.1:${String(PORTS.explicit)}`,
  // Node's fetch reads the variables only when asked to (Node 24).
  NODE_USE_ENV_PROXY: "1",
};
