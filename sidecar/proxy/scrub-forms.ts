// Every recoverable encoding of what the sidecar sent, so a response that reflects a credential in
// any of them can be scrubbed. Pure: strings in, byte patterns out.
//
// Why each form: an upstream that reflects a request may hand it back raw, URL-encoded (one
// character at a time or every byte), base64 or base64url (of the value alone or of a longer
// string it sits in, so at any byte alignment), hex (either case; matching is case-insensitive),
// or JSON-escaped. Longer strings the value was sent inside (the header value, the Basic token)
// are patterns too, so a reflection of the whole form is redacted whole.

/** Derived forms shorter than this are dropped: they would redact unrelated text. */
const MIN_DERIVED_LENGTH = 8;

/**
 * The byte patterns to scrub for `sent`: each string the sidecar put on the wire (the value first,
 * then the longer strings that carry it), in every encoding listed above.
 */
export function encodedForms(sent: string[]): Buffer[] {
  const value = sent[0] ?? "";
  const minimum = Math.min(MIN_DERIVED_LENGTH, Buffer.byteLength(value));
  const out: Buffer[] = [];
  for (const text of sent) {
    const bytes = Buffer.from(text, "utf8");
    if (bytes.length === 0) continue;
    out.push(bytes);
    const derived = [
      encodeURIComponent(text),
      encodeURIComponent(text).replace(/%20/g, "+"),
      percentEveryByte(bytes),
      bytes.toString("hex"),
      jsonUnicodeEscapes(text),
      JSON.stringify(text).slice(1, -1),
      JSON.stringify(text).slice(1, -1).replace(/\//g, "\\/"),
      ...base64Slices(bytes),
    ];
    for (const form of derived) if (form.length >= minimum && form !== text) out.push(Buffer.from(form));
  }
  return out;
}

/**
 * The base64 and base64url characters that depend only on `bytes`, wherever they sit in a longer
 * encoded string: for each of the three byte alignments, the characters whose six bits all come
 * from `bytes`.
 */
export function base64Slices(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
    const encoded = padded.toString("base64").replace(/=+$/, "");
    const first = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * padded.length) / 6);
    const slice = encoded.slice(first, end);
    if (slice.length === 0) continue;
    out.push(slice, slice.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  return out;
}

function percentEveryByte(bytes: Buffer): string {
  let out = "";
  for (const byte of bytes) out += `%${byte.toString(16).padStart(2, "0")}`;
  return out;
}

function jsonUnicodeEscapes(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) out += `\\u${text.charCodeAt(i).toString(16).padStart(4, "0")}`;
  return out;
}
