// The canary scan itself (test/helpers/canary.ts) can fail: a value planted in each encoding and in
// each kind of sink is found and reported without printing it; clean, short and upstream-side
// texts are not hits. THREATS.md I1.
import { expect } from "chai";
import {
  CanaryRegistry,
  encodedForms,
  formatHits,
  MIN_SECRET_LENGTH,
  scanForSecrets,
  secretHash,
  type CanaryRecord,
  type SinkKind,
} from "./helpers/canary.ts";
import { registerKubectlSecrets, registerManifestSecrets } from "./helpers/canary-kube.ts";

const VALUE = "plant3d-Canary/value+x=????~~~~";
const SECRETS = [{ label: "planted", value: VALUE }];
const b64 = (s: string): string => Buffer.from(s).toString("base64");
const b64url = (s: string): string => Buffer.from(s).toString("base64url");

const record = (text: string, kind: SinkKind = "log"): CanaryRecord => ({ kind, source: "unit", text });

describe("canary scan: the scanner finds planted secrets and says so without printing them", function () {
  // [encoding reported, the secret, the text that leaks it]
  const SPACED = "plant3d canary value";
  const QUOTED = 'plant3d "canary" \\ value';
  const encodings: [string, string, string][] = [
    ["raw", VALUE, VALUE],
    ["base64 (shift 0)", VALUE, b64(VALUE)],
    ["base64url (shift 0)", VALUE, b64url(VALUE)],
    ["base64 (shift 0)", VALUE, b64(`x-access-token:${VALUE}`)], // Basic user:value, 15 bytes in
    ["base64 (shift 1)", VALUE, b64(`a${VALUE}`)],
    ["base64url (shift 2)", VALUE, b64url(`ab${VALUE}`)],
    ["url", VALUE, `https://x.test/?q=${encodeURIComponent(VALUE)}`],
    ["url (form)", SPACED, new URLSearchParams({ k: SPACED }).toString()],
    ["hex", VALUE, Buffer.from(VALUE).toString("hex")],
    ["HEX", VALUE, Buffer.from(VALUE).toString("hex").toUpperCase()],
    ["json", QUOTED, JSON.stringify({ v: QUOTED })],
  ];
  for (const [encoding, value, leaked] of encodings) {
    it(`finds a leak encoded as ${encoding} (${leaked.length} chars)`, function () {
      const hits = scanForSecrets(
        [{ label: "planted", value }],
        [record(`{"msg":"upstream said ${leaked} and more"}`)],
      );
      expect(hits.map((h) => [h.secret, h.encoding])).to.deep.equal([["planted", encoding]]);
    });
  }

  const kinds: SinkKind[] = ["log", "metrics", "status", "event", "response", "process-output"];
  for (const kind of kinds) {
    it(`finds a leak in a ${kind} record and names the sink`, function () {
      const records = [record("nothing here", kind), { kind, source: `the ${kind}`, text: `x ${VALUE} y` }];
      const hits = scanForSecrets(SECRETS, records);
      expect(hits.map((h) => [h.kind, h.source, h.encoding])).to.deep.equal([[kind, `the ${kind}`, "raw"]]);
    });
  }

  it("a clean run has no hits: other values, and parts of the secret shorter than it", function () {
    const texts = [
      "GET /v1/me 200 credential=agents/api-token",
      VALUE.slice(0, -1),
      b64(VALUE.slice(0, 4)),
      'airlock_credential_scrubbed_total{credential="agents/api"} 3',
    ];
    expect(
      scanForSecrets(
        SECRETS,
        texts.map((t) => record(t)),
      ),
    ).to.deep.equal([]);
  });

  it(`ignores values shorter than ${MIN_SECRET_LENGTH} characters (noise, documented in canary.ts)`, function () {
    const hits = scanForSecrets([{ label: "short", value: "s3cret" }], [record("the s3cret is out")]);
    expect(hits).to.deep.equal([]);
  });

  it("reports label, hash, count and masked context; never the value or an encoding of it", function () {
    const text = `${"a".repeat(100)} first=${VALUE} second=${b64(VALUE)} again ${VALUE} ${"b".repeat(100)}`;
    const hits = scanForSecrets(SECRETS, [record(text)]);
    const raw = hits.find((h) => h.encoding === "raw");
    expect(raw?.occurrences).to.equal(2);
    expect(raw?.hash).to.equal(secretHash(VALUE)).and.to.have.length(12);
    expect(raw?.context).to.include("first=").and.to.include("█");
    const report = formatHits(hits);
    expect(report).to.include('secret "planted"').and.to.include(secretHash(VALUE));
    for (const form of encodedForms(VALUE)) expect(report, form.encoding).not.to.include(form.text);
  });

  it("a registry scans exposed records, counts upstream-side ones without scanning them, and throws on a hit", function () {
    const registry = new CanaryRegistry();
    registry.secret(VALUE, "planted");
    registry.record("log", "upstream request log", `authorization: Bearer ${VALUE}`, "upstream-side");
    let live = "clean so far";
    registry.recordLive("process-output", "sidecar process", () => live, "exposed");
    const lines: string[] = [];
    registry.assertNoLeak((line) => lines.push(line));
    expect(lines).to.deep.equal([
      "canary scan: 1 secrets, 1 records (1 upstream-side, not scanned), no leak",
    ]);
    live += ` then ${b64(VALUE)}`;
    expect(() => {
      registry.assertNoLeak((line) => lines.push(line));
    }).to.throw(
      /secret "planted" \(sha256 [0-9a-f]{12}\) as base64 \(shift 0\) in process-output of sidecar process/,
    );
    expect(lines.at(-1)).to.match(/1 LEAK\(S\)$/);
  });

  it("registers Secret values from manifests (stringData, data) and from kubectl --from-literal", function () {
    const registry = new CanaryRegistry();
    registerManifestSecrets(
      `kind: Secret\nmetadata: {name: a}\nstringData: {token: manifest-value-1}\n---\n` +
        `{"kind":"Secret","metadata":{"name":"b"},"data":{"token":"${b64("manifest-value-2")}"}}\n`,
      "unit",
      registry,
    );
    registerKubectlSecrets(
      ["create", "secret", "generic", "c", "--from-literal=token=literal-value-3"],
      undefined,
      registry,
    );
    registerKubectlSecrets(
      ["create", "configmap", "d", "--from-literal=k=not-a-secret-4"],
      undefined,
      registry,
    );
    registry.record(
      "log",
      "unit",
      "manifest-value-1 manifest-value-2 literal-value-3 not-a-secret-4",
      "exposed",
    );
    const hits = registry.scan().hits.map((h) => h.secret);
    expect(hits).to.deep.equal([
      "unit: Secret a key token",
      "unit: Secret b key token",
      "kubectl: Secret c key token",
    ]);
  });
});
