import { expect } from "chai";
import { assertNoStaleGoldens, expectGolden } from "../../test/helpers/golden.ts";
import {
  captureRules,
  captureTables,
  formatDryRun,
  hookRules,
  parseListing,
  removalCommands,
  resolveCaptureOptions,
  splitRuleLine,
  verifyTable,
  type CaptureOptions,
  type CaptureSettings,
  type TableListing,
  type TableRules,
} from "./rules.ts";

const GOLDEN_DIR = "test/golden/capture";

const GOLDEN_CASES: { name: string; file: string; options: CaptureOptions }[] = [
  { name: "defaults", file: "defaults.rules", options: {} },
  {
    name: "custom uid and ports",
    file: "custom-uid-ports.rules",
    options: {
      sidecarUid: 20000,
      transparentPort: 16001,
      dnsPort: 16053,
      explicitPort: 16080,
      metricsPort: 16090,
      controlPort: 16443,
    },
  },
  {
    name: "capture ports 80,443,8443",
    file: "capture-ports-8443.rules",
    options: { capturePorts: [80, 443, 8443] },
  },
  { name: "--no-ipv6", file: "no-ipv6.rules", options: { ipv6: false } },
];

function settings(options: CaptureOptions = {}): CaptureSettings {
  const resolved = resolveCaptureOptions(options);
  if (!resolved.ok) throw new Error(JSON.stringify(resolved.errors));
  return resolved.value;
}

/** What `iptables -S` would list for `t` applied to an empty table, plus `builtin` rules first. */
function listingOf(
  t: TableRules,
  builtin: { chain: string; comment: string; target: string }[] = [],
): TableListing {
  const rule = (chain: string, comment: string, target: string) => ({
    chain,
    comment,
    target,
    line: `-A ${chain} -m comment --comment "${comment}" -j ${target}`,
  });
  return {
    chains: [...t.chains],
    rules: [
      ...builtin.map((b) => rule(b.chain, b.comment, b.target)),
      ...t.hooks.map((h) => rule(h.builtin, h.comment, h.chain)),
      ...t.rules.map((r) => rule(r.chain, r.comment, r.target[1] ?? "")),
    ],
  };
}

describe("capture rules", () => {
  describe("golden restore input", () => {
    for (const c of GOLDEN_CASES)
      it(c.name, () => {
        expectGolden(`${GOLDEN_DIR}/${c.file}`, formatDryRun(captureRules(c.options)));
      });

    it("every file in test/golden/capture is used by a case", () => {
      assertNoStaleGoldens(
        GOLDEN_DIR,
        GOLDEN_CASES.map((c) => `${GOLDEN_DIR}/${c.file}`),
      );
    });
  });

  describe("invariants of every generated rule set", () => {
    for (const c of GOLDEN_CASES) {
      const s = settings(c.options);
      const families = s.ipv6 ? (["ipv4", "ipv6"] as const) : (["ipv4"] as const);
      it(`${c.name}: comments, owner matching, order`, () => {
        for (const family of families) {
          const [filter, nat] = captureTables(s, family);
          if (!filter || !nat) throw new Error("expected filter and nat");
          for (const r of [...filter.rules, ...nat.rules, ...filter.hooks, ...nat.hooks]) {
            expect(r.comment, r.comment).to.match(/^airlock: [A-Za-z0-9 :,.()/-]+$/);
            expect(r.comment.length).to.be.below(256);
          }
          for (const r of [...filter.rules, ...nat.rules]) {
            expect(r.match, "never by GID").not.to.include("--gid-owner");
            const owner = r.match.indexOf("--uid-owner");
            if (owner >= 0)
              expect(r.match[owner - 1], "never ! --uid-owner: it matches ownerless packets").to.equal(
                "owner",
              );
          }
          const uidRules = filter.rules.filter((r) => r.target[1] === "AIRLOCK_AGENT");
          const ranges = uidRules.map((r) => (r.match[3] ?? "").split("-").map(Number));
          expect(ranges).to.deep.equal([
            [0, s.sidecarUid - 1],
            [s.sidecarUid + 1, 4294967294],
          ]);
          const agent = filter.rules.filter((r) => r.chain === "AIRLOCK_AGENT");
          expect(agent[0]?.target, "control port refused first").to.deep.equal([
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
          ]);
          expect(agent.at(-1), "ends in DROP for everything").to.deep.include({
            match: [],
            target: ["-j", "DROP"],
          });
          const natAgent = nat.rules.filter((r) => r.chain === "AIRLOCK_AGENT");
          expect(natAgent.at(-1)?.target).to.deep.equal([
            "-j",
            "REDIRECT",
            "--to-ports",
            String(s.transparentPort),
          ]);
          expect(natAgent.filter((r) => r.target[1] === "DNAT")).to.have.length(
            family === "ipv4" ? s.capturePorts.length : 0,
          );
        }
      });
    }
  });

  describe("option checks", () => {
    const table: { name: string; options: CaptureOptions; field: string; message: RegExp }[] = [
      {
        name: "capture port 0",
        options: { capturePorts: [0, 443] },
        field: "capturePorts",
        message: /^0: expected/,
      },
      {
        name: "capture port 1 collides with 127.0.0.1",
        options: { capturePorts: [1] },
        field: "capturePorts",
        message: /127\.0\.0\.1/,
      },
      {
        name: "duplicate capture port",
        options: { capturePorts: [443, 80, 443] },
        field: "capturePorts",
        message: /twice/,
      },
      {
        name: "capture port 53 is DNS",
        options: { capturePorts: [53] },
        field: "capturePorts",
        message: /DNS/,
      },
      {
        name: "capture port above 65535",
        options: { capturePorts: [65536] },
        field: "capturePorts",
        message: /65535/,
      },
      { name: "sidecar uid 0", options: { sidecarUid: 0 }, field: "sidecarUid", message: /not root/ },
      {
        name: "sidecar uid -1",
        options: { sidecarUid: 4294967295 },
        field: "sidecarUid",
        message: /4294967294/,
      },
      {
        name: "two sidecar ports equal",
        options: { dnsPort: 15001 },
        field: "dnsPort",
        message: /transparentPort/,
      },
      { name: "port 0", options: { metricsPort: 0 }, field: "metricsPort", message: /1 to 65535/ },
      {
        name: "fractional port",
        options: { controlPort: 15443.5 },
        field: "controlPort",
        message: /1 to 65535/,
      },
    ];
    for (const c of table)
      it(c.name, () => {
        const resolved = resolveCaptureOptions(c.options);
        expect(resolved.ok).to.equal(false);
        if (resolved.ok) return;
        expect(resolved.errors).to.have.length(1);
        expect(resolved.errors[0]?.field).to.equal(c.field);
        expect(resolved.errors[0]?.message).to.match(c.message);
        expect(() => captureRules(c.options)).to.throw(RangeError);
      });

    it("defaults come from constants.ts", () => {
      expect(settings()).to.deep.equal({
        sidecarUid: 15000,
        transparentPort: 15001,
        dnsPort: 15053,
        explicitPort: 15080,
        metricsPort: 15090,
        controlPort: 15443,
        capturePorts: [80, 443],
        ipv6: true,
      });
    });
  });

  describe("idempotence and removal", () => {
    it("deletes each hook a previous run left before inserting one, first", () => {
      const old = '-A OUTPUT -m comment --comment "airlock: older" -j AIRLOCK_OUTPUT';
      const { ipv4, ipv6 } = captureRules({}, { ipv4: { nat: [old, old] } });
      const nat = ipv4.slice(ipv4.indexOf("*nat"));
      const deletes = nat.split("\n").filter((l) => l.startsWith("-D "));
      expect(deletes).to.deep.equal([old.replace("-A", "-D"), old.replace("-A", "-D")]);
      expect(nat.indexOf("-D OUTPUT")).to.be.below(nat.indexOf("-I OUTPUT 1"));
      expect(ipv4.slice(0, ipv4.indexOf("*nat"))).not.to.include("-D ");
      expect(ipv6).not.to.include("-D ");
    });

    it("removal deletes hooks into our chains first, then the chains, and nothing else", () => {
      const listing = parseListing(
        [
          "-P OUTPUT ACCEPT",
          "-N AIRLOCK_AGENT",
          "-N AIRLOCK_OUTPUT",
          "-N OTHER",
          '-A OUTPUT -p tcp -m comment --comment "someone else" -j OTHER',
          '-A OUTPUT -m comment --comment "airlock: hook" -j AIRLOCK_OUTPUT',
          "-A AIRLOCK_OUTPUT -j AIRLOCK_AGENT",
        ].join("\n"),
      );
      expect(removalCommands({ nat: listing })).to.deep.equal([
        ["-t", "nat", "-D", "OUTPUT", "-m", "comment", "--comment", "airlock: hook", "-j", "AIRLOCK_OUTPUT"],
        ["-t", "nat", "-F", "AIRLOCK_AGENT"],
        ["-t", "nat", "-F", "AIRLOCK_OUTPUT"],
        ["-t", "nat", "-X", "AIRLOCK_AGENT"],
        ["-t", "nat", "-X", "AIRLOCK_OUTPUT"],
      ]);
      const foreign = parseListing("-P OUTPUT ACCEPT\n-N OTHER\n-A OUTPUT -j OTHER\n");
      expect(removalCommands({ filter: foreign })).to.deep.equal([]);
    });

    it("parses listings, including escaped comments", () => {
      const listing = parseListing(
        `-N AIRLOCK_AGENT\n-A AIRLOCK_AGENT -p tcp -m comment --comment "it\\'s \\"x\\"" -j DROP\n`,
      );
      expect(listing.rules[0]).to.deep.include({
        chain: "AIRLOCK_AGENT",
        comment: `it's "x"`,
        target: "DROP",
      });
      expect(hookRules(listing)).to.deep.equal([]);
      expect(splitRuleLine(listing.rules[0]?.line ?? "")).to.deep.equal([
        "-A",
        "AIRLOCK_AGENT",
        "-p",
        "tcp",
        "-m",
        "comment",
        "--comment",
        `it's "x"`,
        "-j",
        "DROP",
      ]);
    });
  });

  describe("verification of what the kernel holds", () => {
    const [filter] = captureTables(settings(), "ipv4");
    if (!filter) throw new Error("no filter table");
    const foreign = { chain: "OUTPUT", comment: "someone else", target: "ACCEPT" };
    const hook = { chain: "OUTPUT", comment: "airlock: again", target: "AIRLOCK_OUTPUT" };

    it("accepts exactly the generated rules with one hook, first", () => {
      expect(verifyTable(filter, listingOf(filter))).to.deep.equal([]);
    });

    it("names the first rule that differs", () => {
      const listing = listingOf(filter);
      listing.rules = listing.rules.filter((r) => r.target !== "DROP");
      expect(verifyTable(filter, listing).join()).to.match(
        /AIRLOCK_AGENT rule 8: expected "airlock: everything else.*found no rule/,
      );
    });

    it("refuses a hook that is not first, or is there twice", () => {
      expect(verifyTable(filter, listingOf(filter, [foreign])).join()).to.match(
        /OUTPUT: expected one jump to AIRLOCK_OUTPUT, first; found 1/,
      );
      expect(verifyTable(filter, listingOf(filter, [hook])).join()).to.match(/found 2/);
    });

    it("refuses a missing chain", () => {
      expect(verifyTable(filter, { chains: [], rules: [] }).join()).to.match(/AIRLOCK_OUTPUT: chain missing/);
    });
  });

  it("--dry-run marks each family, and says when IPv6 is not captured", () => {
    expect(formatDryRun({ ipv4: "*nat\nCOMMIT\n", ipv6: "*nat\nCOMMIT\n" })).to.equal(
      "# ipv4\n*nat\nCOMMIT\n# ipv6\n*nat\nCOMMIT\n",
    );
    expect(formatDryRun({ ipv4: "*nat\nCOMMIT\n", ipv6: "" })).to.equal(
      "# ipv4\n*nat\nCOMMIT\n# ipv6: not captured (--no-ipv6)\n",
    );
  });
});
