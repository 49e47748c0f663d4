import { expect } from "chai";
import { REDACTED, Scrubber, scrubPatterns, scrubText } from "./scrub.ts";

function streamThrough(chunks: string[], patterns: Buffer[]): { text: string; count: number } {
  let count = 0;
  const scrubber = new Scrubber(patterns, (n) => (count += n));
  const out: Buffer[] = [];
  for (const chunk of chunks) out.push(Buffer.from(scrubber.push(Buffer.from(chunk))));
  out.push(scrubber.end());
  return { text: Buffer.concat(out).toString(), count };
}

describe("scrub", function () {
  const patterns = scrubPatterns(["Bearer tok123", "tok123", "dG9rMTIz"]);

  const cases = [
    { name: "no occurrence passes unchanged", input: "hello world", want: "hello world", count: 0 },
    { name: "the longer encoding wins", input: "x Bearer tok123 y", want: `x ${REDACTED} y`, count: 1 },
    { name: "every occurrence", input: "tok123tok123", want: REDACTED + REDACTED, count: 2 },
    { name: "base64 form", input: "a dG9rMTIz b", want: `a ${REDACTED} b`, count: 1 },
    { name: "a near miss is kept", input: "tok12 tok1234", want: `tok12 ${REDACTED}4`, count: 1 },
  ];
  for (const c of cases) {
    it(`text: ${c.name}`, function () {
      expect(scrubText(c.input, patterns)).to.deep.equal({ text: c.want, count: c.count });
    });
    it(`stream split at every offset: ${c.name}`, function () {
      for (let cut = 0; cut <= c.input.length; cut++) {
        const got = streamThrough([c.input.slice(0, cut), c.input.slice(cut)], patterns);
        expect(got, `cut at ${cut}`).to.deep.equal({ text: c.want, count: c.count });
      }
    });
  }

  it("stream one byte at a time", function () {
    const input = "start Bearer tok123 middle dG9rMTIz end tok123";
    const got = streamThrough(input.split(/(?=.)/u), patterns);
    expect(got.text).to.equal(`start ${REDACTED} middle ${REDACTED} end ${REDACTED}`);
    expect(got.count).to.equal(3);
  });

  /** What the scrubber has given out so far, after each of `chunks` (the body not ended). */
  function emittedAfterEach(chunks: string[]): string[] {
    const scrubber = new Scrubber(patterns, () => undefined);
    let out = "";
    const seen: string[] = [];
    for (const chunk of chunks) {
      out += scrubber.push(Buffer.from(chunk)).toString();
      seen.push(out);
    }
    return seen;
  }

  it("a chunk whose end cannot begin a secret goes on whole at once (a server-sent event is not held)", function () {
    expect(emittedAfterEach(["data: one\n\n", "data: two\n\n"])).to.deep.equal([
      "data: one\n\n",
      "data: one\n\ndata: two\n\n",
    ]);
  });

  it("only a tail that may begin a secret is held, until the next chunk tells", function () {
    expect(emittedAfterEach(["event Bear", "er tok123 done", "x tok", "12", "x"])).to.deep.equal([
      "event ",
      `event ${REDACTED} done`,
      `event ${REDACTED} donex `,
      `event ${REDACTED} donex `,
      `event ${REDACTED} donex tok12x`,
    ]);
  });

  it("empty patterns are ignored and duplicates merged", function () {
    expect(scrubPatterns(["", "a", "a", Buffer.from("a")])).to.have.length(1);
  });
});
