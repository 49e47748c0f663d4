// The canary scan (THREATS.md I1): every secret value a test hands the system is registered here,
// everything the suite sees the system produce on the agent's or operator's side of the boundary is
// recorded here, and at the end of the run (root-hooks.ts) every record is searched for every
// value, raw and encoded. A hit fails the run.
//
// Secrets are registered automatically where helpers create them — secret() in sidecar.ts, Secret
// objects sent through the control plane's kubectl (control-plane.ts), Secret manifests written
// with netns.ts scratchFile(), ServiceAccount tokens minted by serviceAccountToken() — and by hand
// with canary.secret(value, label) in tests that build a Secret themselves.
//
// Each record call states its exposure, as a parameter, never guessed from the text:
// - "exposed": anything the agent can read (responses through the proxy, agent commands' output)
//   or an operator can read (logs, audit lines, metrics, statuses, events, process output).
//   These are scanned.
// - "upstream-side": what the test upstreams RECEIVED (e.g. the world namespace's request log in
//   test/fixtures/world-upstream.ts). Such a record holds the injected credential by design — that
//   is the product — so it is counted but neither kept nor scanned.
import { createHash } from "node:crypto";

/** Where a recorded text came from. */
export type SinkKind = "log" | "metrics" | "status" | "event" | "response" | "process-output";

/** Whether a record is on the agent's/operator's side (scanned) or is what an upstream received. */
export type Exposure = "exposed" | "upstream-side";

/** One registered secret value and the label reports name it by (never the value). */
export interface CanarySecret {
  label: string;
  value: string;
}

/** One recorded text: what kind of sink, which one (e.g. `sidecar 127.0.0.1:4567 audit`). */
export interface CanaryRecord {
  kind: SinkKind;
  source: string;
  text: string;
}

/** One leak: which secret (label, hash), in which form, where, and masked context. */
export interface CanaryHit {
  secret: string;
  hash: string;
  encoding: string;
  kind: SinkKind;
  source: string;
  occurrences: number;
  /** About 80 characters around the first occurrence, every secret form in it masked. */
  context: string;
}

/**
 * Values shorter than this are not scanned: tests use short placeholders ("v", "x", "s3cret") whose
 * raw and encoded forms turn up by chance in unrelated text (hex ids, base64 certificates, words),
 * so hits on them would be noise. From 8 bytes on, a base64 core is ≥ 10 characters (60 bits).
 */
export const MIN_SECRET_LENGTH = 8;
const CONTEXT = 40;
const MASK = "█";

/** The short, non-reversible name of a value used in reports: the first 12 hex of its SHA-256. */
export function secretHash(value: string): string {
  return createHash("sha256").update(value).digest("hex").slice(0, 12);
}

// The base64 characters that depend only on the value's bytes when it starts `shift` bytes into a
// larger encoded buffer: what appears in `Basic base64(user:value)` or in any base64 blob holding it.
function base64Core(value: Buffer, shift: number, url: boolean): string {
  const encoded = Buffer.concat([Buffer.alloc(shift), value]).toString(url ? "base64url" : "base64");
  const first = Math.ceil((8 * shift) / 6);
  const last = Math.floor((8 * (shift + value.length)) / 6);
  return encoded.slice(first, last);
}

/**
 * Every form of `value` the scan looks for, by name: raw; base64 and base64url at each of the three
 * byte alignments; URL (percent and form) encoding; hex in either case; JSON string escaping.
 * Forms identical to an earlier one are listed once.
 */
export function encodedForms(value: string): { encoding: string; text: string }[] {
  const bytes = Buffer.from(value, "utf8");
  const hex = bytes.toString("hex");
  const forms = [
    { encoding: "raw", text: value },
    ...[0, 1, 2].map((s) => ({ encoding: `base64 (shift ${s})`, text: base64Core(bytes, s, false) })),
    ...[0, 1, 2].map((s) => ({ encoding: `base64url (shift ${s})`, text: base64Core(bytes, s, true) })),
    { encoding: "url", text: encodeURIComponent(value) },
    { encoding: "url (form)", text: new URLSearchParams({ v: value }).toString().slice(2) },
    { encoding: "hex", text: hex },
    { encoding: "HEX", text: hex.toUpperCase() },
    { encoding: "json", text: JSON.stringify(value).slice(1, -1) },
  ];
  const unique = new Map<string, string>();
  for (const f of forms) if (f.text.length > 0 && !unique.has(f.text)) unique.set(f.text, f.encoding);
  return [...unique].map(([text, encoding]) => ({ encoding, text }));
}

function count(text: string, needle: string, from: number): number {
  let n = 0;
  for (let i = from; i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

// The window around [at, at+length) with every occurrence of every needle that overlaps it masked.
function maskedContext(text: string, at: number, length: number, needles: string[]): string {
  const start = Math.max(0, at - CONTEXT);
  const end = Math.min(text.length, at + length + CONTEXT);
  const out = text
    .slice(start, end)
    .split("")
    .map((c) => (c < " " ? " " : c));
  for (const needle of needles) {
    let i = text.indexOf(needle, Math.max(0, start - needle.length + 1));
    while (i !== -1 && i < end) {
      for (let j = Math.max(i, start); j < Math.min(i + needle.length, end); j++) out[j - start] = MASK;
      i = text.indexOf(needle, i + 1);
    }
  }
  return `${start > 0 ? "…" : ""}${out.join("")}${end < text.length ? "…" : ""}`;
}

/**
 * Searches every record for every form (encodedForms) of every secret at least MIN_SECRET_LENGTH
 * long; returns one hit per secret, form and record, in order. Pure: the unit tests drive it.
 */
export function scanForSecrets(secrets: CanarySecret[], records: CanaryRecord[]): CanaryHit[] {
  const scanned = secrets.filter((s) => s.value.length >= MIN_SECRET_LENGTH);
  const needles = scanned.map((s) => ({ secret: s, forms: encodedForms(s.value) }));
  const allTexts = needles.flatMap((n) => n.forms.map((f) => f.text));
  const hits: CanaryHit[] = [];
  for (const record of records) {
    for (const { secret, forms } of needles) {
      for (const form of forms) {
        const at = record.text.indexOf(form.text);
        if (at === -1) continue;
        hits.push({
          secret: secret.label,
          hash: secretHash(secret.value),
          encoding: form.encoding,
          kind: record.kind,
          source: record.source,
          occurrences: count(record.text, form.text, at),
          context: maskedContext(record.text, at, form.text.length, allTexts),
        });
      }
    }
  }
  return hits;
}

/** One line per hit, naming the secret by label and hash only; at most `limit` lines plus a count. */
export function formatHits(hits: CanaryHit[], limit = 40): string {
  const lines = hits
    .slice(0, limit)
    .map(
      (h) =>
        `  secret "${h.secret}" (sha256 ${h.hash}) as ${h.encoding} in ${h.kind} of ${h.source}` +
        ` (${h.occurrences}×): ${JSON.stringify(h.context)}`,
    );
  if (hits.length > limit) lines.push(`  … and ${hits.length - limit} more`);
  return lines.join("\n");
}

interface LiveRecord {
  kind: SinkKind;
  source: string;
  read: () => string;
}

/** The run's registry of secrets and records (one per mocha process; see `canary`). */
export class CanaryRegistry {
  private readonly secrets = new Map<string, string>();
  private readonly records: LiveRecord[] = [];
  private upstreamSide = 0;
  private context: string | undefined;
  // Records made outside a test (before/after hooks) get the name of the next test that starts.
  private pending: LiveRecord[] = [];

  /**
   * Names the test now running (root-hooks.ts), or undefined between tests; appended to every
   * record's source. A record made between tests is named after the next test to start.
   */
  setContext(test: string | undefined): void {
    this.context = test;
    if (test === undefined) return;
    for (const r of this.pending.splice(0)) r.source += ` [hook between tests, before test "${test}"]`;
  }

  /** Registers a secret value under `label` (first label wins); returns the value, for inline use. */
  secret(value: string, label = `secret #${this.secrets.size + 1}`): string {
    if (!this.secrets.has(value)) this.secrets.set(value, label);
    return value;
  }

  /** Records a finished text (a response, a metrics scrape, a status dump) from `source`. */
  record(kind: SinkKind, source: string, text: string, exposure: Exposure): void {
    this.recordLive(kind, source, () => text, exposure);
  }

  /**
   * Records a text that keeps growing (a process's output, a sidecar's audit lines): `read` is
   * called once, at scan time, so nothing is copied while the suite runs.
   */
  recordLive(kind: SinkKind, source: string, read: () => string, exposure: Exposure): void {
    if (exposure === "upstream-side") this.upstreamSide++;
    else if (this.context !== undefined)
      this.records.push({ kind, source: `${source} [test "${this.context}"]`, read });
    else {
      const r = { kind, source, read };
      this.records.push(r);
      this.pending.push(r);
    }
  }

  /** Scans every exposed record for every registered secret; returns the hits and the counts. */
  scan(): { hits: CanaryHit[]; secrets: number; records: number; upstreamSide: number } {
    const secrets = [...this.secrets].map(([value, label]) => ({ value, label }));
    const records = this.records.map((r) => ({ kind: r.kind, source: r.source, text: r.read() }));
    const scanned = secrets.filter((s) => s.value.length >= MIN_SECRET_LENGTH).length;
    return {
      hits: scanForSecrets(secrets, records),
      secrets: scanned,
      records: records.length,
      upstreamSide: this.upstreamSide,
    };
  }

  /**
   * Runs scan(), writes the one-line summary to `write`, and throws listing every hit (the root
   * hook's failure) if any secret was found.
   */
  assertNoLeak(write: (line: string) => void): void {
    const { hits, secrets, records, upstreamSide } = this.scan();
    const counts = `${secrets} secrets, ${records} records (${upstreamSide} upstream-side, not scanned)`;
    if (hits.length === 0) {
      write(`canary scan: ${counts}, no leak`);
      return;
    }
    write(`canary scan: ${counts}, ${hits.length} LEAK(S)`);
    throw new Error(`canary scan: secret values found in exposed output:\n${formatHits(hits)}`);
  }
}

/** The registry every helper and test of this mocha run registers with. */
export const canary = new CanaryRegistry();

/**
 * GETs a metrics endpoint (`url` ends in /metrics) and records the body as "exposed" metrics of
 * `source`. Never throws: a sink that no longer answers records nothing, quickly (2 s at most).
 */
export async function recordMetricsScrape(url: string, source: string): Promise<void> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    canary.record("metrics", source, await res.text(), "exposed");
  } catch {
    // The process is gone or not serving: its other sinks are still recorded.
  }
}
