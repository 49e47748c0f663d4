// The pure parts of the operator's bootstrap: certificates, signing-key rotation steps, which
// webhooks' caBundle it may patch, and the permission list against operator/rbac/clusterrole.yaml.
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import {
  issueWebhookTls,
  ipBytes,
  pemCertificates,
  webhookNames,
  webhookTlsProblem,
  WEBHOOK_CERT_LIFETIME_MS,
  WEBHOOK_CERT_RENEW_BEFORE_MS,
} from "./bootstrap-pki.ts";
import {
  rotateSigningKeyData,
  signingKeysFrom,
  SIGNING_KEYS,
  UnusableSecretError,
} from "./bootstrap-secrets.ts";
import { caBundlePatch, routesTo } from "./bootstrap-webhooks.ts";
import { REQUIRED_ACCESS } from "./preflight.ts";
import { Health } from "./preflight-health.ts";

const b64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");
const encodeAll = (data: Record<string, string>) =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)]));

describe("operator bootstrap: webhook certificate", function () {
  const names = webhookNames("airlock-system", "https://10.1.2.3:9443");

  it("names the Service's .svc names and the --webhook-url host (DNS name or IP)", function () {
    expect(names).to.deep.equal({
      dnsNames: ["airlock-webhook.airlock-system.svc", "airlock-webhook.airlock-system.svc.cluster.local"],
      ipAddresses: ["10.1.2.3"],
    });
    expect(webhookNames("ns", "https://Webhook.Example.test:8443").dnsNames).to.include(
      "webhook.example.test",
    );
    expect(webhookNames("ns", "https://[::1]:8443").ipAddresses).to.deep.equal(["::1"]);
    expect(ipBytes("::ffff:10.0.0.1").toString("hex")).to.equal("00000000000000000000ffff0a000001");
  });

  it("issues a CA and a serving certificate covering exactly those names, signed by the CA", function () {
    const tls = issueWebhookTls(names);
    const cert = new X509Certificate(tls.tlsCrt);
    const ca = new X509Certificate(tls.caCrt);
    expect(ca.ca).to.equal(true);
    expect(cert.verify(ca.publicKey)).to.equal(true);
    expect(cert.subjectAltName).to.equal(
      "DNS:airlock-webhook.airlock-system.svc, DNS:airlock-webhook.airlock-system.svc.cluster.local, IP Address:10.1.2.3",
    );
    expect(webhookTlsProblem(tls, names)).to.equal(undefined);
  });

  it("asks for renewal when absent, near expiry, a name is missing, or the parts do not match", function () {
    const now = Date.now();
    const tls = issueWebhookTls(names, now);
    expect(webhookTlsProblem(undefined, names)).to.match(/absent/);
    expect(
      webhookTlsProblem(tls, names, now + WEBHOOK_CERT_LIFETIME_MS - WEBHOOK_CERT_RENEW_BEFORE_MS + 1000),
    ).to.match(/expires/);
    expect(
      webhookTlsProblem(tls, names, now + WEBHOOK_CERT_LIFETIME_MS - WEBHOOK_CERT_RENEW_BEFORE_MS - 60_000),
    ).to.equal(undefined);
    expect(webhookTlsProblem(tls, webhookNames("other"))).to.match(
      /does not cover airlock-webhook\.other\.svc/,
    );
    const other = issueWebhookTls(names, now);
    expect(webhookTlsProblem({ ...tls, caCrt: other.caCrt }, names)).to.match(/not signed/);
    expect(webhookTlsProblem({ ...tls, tlsKey: other.tlsKey }, names)).to.match(/does not match/);
    expect(webhookTlsProblem({ ...tls, tlsCrt: "junk" }, names)).to.match(/unreadable/);
  });

  it("keeps the previous CA in ca.crt after a renewal while it is valid, and only one", function () {
    const first = issueWebhookTls(names);
    const second = issueWebhookTls(names, Date.now(), first.caCrt);
    const third = issueWebhookTls(names, Date.now(), second.caCrt);
    expect(pemCertificates(second.caCrt)).to.have.length(2);
    expect(pemCertificates(second.caCrt)[1]).to.equal(first.caCrt);
    expect(pemCertificates(third.caCrt)).to.have.length(2);
    expect(pemCertificates(third.caCrt)[1]).to.equal(pemCertificates(second.caCrt)[0]);
    const expired = issueWebhookTls(names, Date.now() + 2 * WEBHOOK_CERT_LIFETIME_MS, first.caCrt);
    expect(pemCertificates(expired.caCrt)).to.have.length(1);
  });
});

describe("operator bootstrap: signing key rotation steps", function () {
  it("stages a next key (sidecars then accept both), then promotes it (the old one is dropped)", function () {
    const start = rotateSigningKeyData({});
    const initial = rotateSigningKeyData(start); // promote: a key to begin with
    const one = signingKeysFrom(encodeAll(initial));
    expect(pemCount(one.publicKeysPem)).to.equal(1);
    const staged = rotateSigningKeyData(initial);
    const both = signingKeysFrom(encodeAll(staged));
    expect(both.privateKey.equals(one.privateKey)).to.equal(true); // still signs with the current key
    expect(pemCount(both.publicKeysPem)).to.equal(2);
    expect(both.publicKeysPem.startsWith(one.publicKeysPem)).to.equal(true);
    const promoted = signingKeysFrom(encodeAll(rotateSigningKeyData(staged)));
    expect(promoted.privateKey.equals(one.privateKey)).to.equal(false);
    expect(pemCount(promoted.publicKeysPem)).to.equal(1);
    expect(both.publicKeysPem.endsWith(promoted.publicKeysPem)).to.equal(true);
    expect(Object.keys(rotateSigningKeyData(staged)).sort()).to.deep.equal([
      SIGNING_KEYS.private,
      SIGNING_KEYS.public,
    ]);
  });

  it("refuses an unusable Secret rather than replacing it", function () {
    expect(() => signingKeysFrom({})).to.throw(UnusableSecretError, /no private.pem/);
    expect(() => signingKeysFrom(encodeAll({ "private.pem": "nope" }))).to.throw(UnusableSecretError);
  });
});

function pemCount(text: string): number {
  return text.split("-----BEGIN PUBLIC KEY-----").length - 1;
}

describe("operator bootstrap: webhook configurations owned by someone else", function () {
  const who = {
    namespace: "airlock-system",
    names: webhookNames("airlock-system", "https://127.0.0.9:9443"),
  };

  it("patches only the caBundle of webhooks that route to this operator", function () {
    const existing = {
      webhooks: [
        { name: "a", clientConfig: { service: { namespace: "airlock-system", name: "airlock-webhook" } } },
        { name: "b", clientConfig: { service: { namespace: "elsewhere", name: "airlock-webhook" } } },
        { name: "c", clientConfig: { url: "https://127.0.0.9:9443/inject", caBundle: "old" } },
        { name: "d", clientConfig: { url: "https://127.0.0.10:9443/inject" } },
        { name: "e", clientConfig: { url: "https://127.0.0.9:9443/x", caBundle: "new" } },
      ],
    };
    expect(caBundlePatch(existing, "new", who)).to.deep.equal([
      { op: "test", path: "/webhooks/0/name", value: "a" },
      { op: "add", path: "/webhooks/0/clientConfig/caBundle", value: "new" },
      { op: "test", path: "/webhooks/2/name", value: "c" },
      { op: "add", path: "/webhooks/2/clientConfig/caBundle", value: "new" },
    ]);
    expect(routesTo(undefined, who)).to.equal(false);
    expect(routesTo({ url: "not a url" }, who)).to.equal(false);
  });
});

describe("operator bootstrap: start-up problems", function () {
  it("the permissions it checks are exactly those of operator/rbac/clusterrole.yaml", function () {
    const docs = loadAll(readFileSync(join(import.meta.dirname, "../rbac/clusterrole.yaml"), "utf8")) as {
      metadata: { name: string };
      rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
    }[];
    const grants = (role: string): string[] =>
      (docs.find((d) => d.metadata.name === role)?.rules ?? [])
        .flatMap((r) =>
          r.apiGroups.flatMap((g) =>
            r.resources.flatMap((res) =>
              r.verbs.flatMap((v) => (r.resourceNames ?? ["*"]).map((n) => `${g}|${res}|${v}|${n}`)),
            ),
          ),
        )
        .sort();
    const checked = (scope: string): string[] =>
      REQUIRED_ACCESS.filter((a) => a.scope === scope)
        .flatMap((a) =>
          a.verbs.flatMap((v) =>
            (a.names ?? ["*"]).map(
              (n) =>
                `${a.group}|${a.resource}${a.subresource === undefined ? "" : `/${a.subresource}`}|${v}|${n}`,
            ),
          ),
        )
        .sort();
    expect(checked("cluster")).to.deep.equal(grants("airlock-operator"));
    expect(checked("namespace")).to.deep.equal(grants("airlock-operator-namespace"));
  });

  it("Health logs a problem once, again only when it changes, and its resolution", function () {
    const lines: string[] = [];
    const log = {
      warn: (_o: unknown, m: string) => lines.push(`warn ${m}`),
      info: (_o: unknown, m: string) => lines.push(`info ${m}`),
    };
    const health = new Health(log as never);
    expect(health.ready).to.equal(false); // before the first check
    const p = {
      key: "namespace",
      message: "namespace x does not exist: kubectl create namespace x",
      blocking: true,
    };
    health.report("preflight", [p]);
    health.report("preflight", [p]);
    expect(health.ready).to.equal(false);
    expect(health.reason()).to.equal(`not ready:\n- ${p.message}\n`);
    health.report("preflight", []);
    expect(health.ready).to.equal(true);
    expect(lines).to.deep.equal([`warn ${p.message}`, "info resolved: namespace"]);
  });
});
