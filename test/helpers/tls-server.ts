// An HTTPS server on 127.0.0.1 for tests that stand in for an upstream (an API, a token endpoint,
// a hook): a certificate for whatever name a client asks for, from a CA of its own that the
// sidecar is told to trust (pass `ca.certificatePem` as upstreamCa).
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { CertificateAuthority } from "../../sidecar/tls/ca.ts";

export interface TlsTestServer {
  server: https.Server;
  port: number;
  ca: CertificateAuthority;
  close(): Promise<void>;
}

/** Starts `handler` over TLS on an ephemeral port (a fresh CA, or `ca`). */
export async function startTlsServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  ca = new CertificateAuthority(),
): Promise<TlsTestServer> {
  const server = https.createServer(
    {
      SNICallback: (name, callback) => {
        callback(null, ca.contextFor(name));
      },
    },
    handler,
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    ca,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
