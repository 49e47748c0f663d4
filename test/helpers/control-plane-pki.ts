// Key material for the test control plane, made fresh for each start with the `openssl` CLI
// (node:crypto makes keys but not certificates): one CA that signs both the API server's serving
// certificate (IP SAN 127.0.0.1) and the admin client certificate (O=system:masters), and an RSA
// key pair for signing ServiceAccount tokens.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Paths (and the PEM text tests need) of everything `makeControlPlanePki` wrote into its folder. */
export interface ControlPlanePki {
  /** CA certificate: trusted for the serving certificate and passed as `--client-ca-file`. */
  caFile: string;
  caPem: string;
  servingCertFile: string;
  servingKeyFile: string;
  /** Admin client certificate and key (CN=airlock-admin, O=system:masters). */
  adminCertFile: string;
  adminKeyFile: string;
  adminCertPem: string;
  adminKeyPem: string;
  /** ServiceAccount token keys: public for `--service-account-key-file`, private for signing. */
  serviceAccountPublicFile: string;
  serviceAccountPrivateFile: string;
}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      throw new Error("openssl is not installed; the test control plane needs it (apt-get install openssl)", {
        cause: err,
      });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString("utf8") ?? "";
    throw new Error(`openssl ${args.join(" ")} failed:\n${stderr}`, { cause: err });
  }
}

/** Writes a fresh CA, serving and admin certificates and ServiceAccount keys into `dir`. */
export function makeControlPlanePki(dir: string): ControlPlanePki {
  // An empty config keeps the distribution's openssl.cnf (and its default extensions) out.
  writeFileSync(join(dir, "openssl.cnf"), "[req]\ndistinguished_name = dn\n[dn]\n");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30"];
  const req = ["req", "-config", "openssl.cnf", "-x509", ...ec];
  openssl(dir, [
    ...req,
    ...["-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=airlock-test-control-plane-ca"],
    ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  ]);
  const leaf = (name: string, subject: string, usage: string, san?: string): void => {
    openssl(dir, [
      ...req,
      ...["-CA", "ca.crt", "-CAkey", "ca.key", "-keyout", `${name}.key`, "-out", `${name}.crt`],
      ...["-subj", subject, "-addext", "basicConstraints=critical,CA:FALSE"],
      ...["-addext", "keyUsage=critical,digitalSignature", "-addext", `extendedKeyUsage=${usage}`],
      ...(san ? ["-addext", `subjectAltName=${san}`] : []),
    ]);
  };
  leaf("apiserver", "/CN=kube-apiserver", "serverAuth", "IP:127.0.0.1,DNS:localhost");
  leaf("admin", "/O=system:masters/CN=airlock-admin", "clientAuth");
  const sa = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  writeFileSync(join(dir, "sa.pub"), sa.publicKey);
  writeFileSync(join(dir, "sa.key"), sa.privateKey, { mode: 0o600 });
  const file = (name: string): string => join(dir, name);
  return {
    caFile: file("ca.crt"),
    caPem: readFileSync(file("ca.crt"), "utf8"),
    servingCertFile: file("apiserver.crt"),
    servingKeyFile: file("apiserver.key"),
    adminCertFile: file("admin.crt"),
    adminKeyFile: file("admin.key"),
    adminCertPem: readFileSync(file("admin.crt"), "utf8"),
    adminKeyPem: readFileSync(file("admin.key"), "utf8"),
    serviceAccountPublicFile: file("sa.pub"),
    serviceAccountPrivateFile: file("sa.key"),
  };
}

/** An admin kubeconfig (JSON, which kubectl and client libraries read as YAML) with inline PEM. */
export function adminKubeconfig(server: string, pki: ControlPlanePki): string {
  const b64 = (pem: string): string => Buffer.from(pem).toString("base64");
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "airlock-test", cluster: { server, "certificate-authority-data": b64(pki.caPem) } }],
    users: [
      {
        name: "airlock-admin",
        user: { "client-certificate-data": b64(pki.adminCertPem), "client-key-data": b64(pki.adminKeyPem) },
      },
    ],
    contexts: [{ name: "airlock-test", context: { cluster: "airlock-test", user: "airlock-admin" } }],
    "current-context": "airlock-test",
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}
