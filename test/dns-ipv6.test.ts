// Agent DNS over IPv6 (root, netns): `airlock init`'s ip6tables rules redirect the agent's UDP and
// TCP port 53 to [::1]:15053, and the sidecar must answer there — before, nothing listened and
// IPv6 DNS failed (closed). A world namespace runs a real resolver (dnsmasq) on its IPv6 address
// that knows the allowed name by a *different* address and logs every question, so an answer
// from the sidecar, and a silent log, prove the redirect. docs/capture.md "IPv6"; THREATS.md I2.
import { expect } from "chai";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually } from "./helpers/eventually.ts";
import { scratchFile, type PodWorld } from "./helpers/netns.ts";
import {
  AGENT_UID as AGENT,
  PodHarness,
  runExact,
  SIDECAR_UID as SIDECAR,
  TEST_PATH,
  type Run,
} from "./helpers/pod-harness.ts";
import { egressPolicyYaml } from "./helpers/policy-yaml.ts";

const PINNED = "10.77.1.10"; // what the sidecar answers for the allowed name
const WORLD_ANSWER = "10.77.1.99"; // what the world's resolver would answer, were it asked

/** Runs `args` with only PATH in its environment. */
const run = (args: string[]): Promise<Run> => runExact(args, { PATH: TEST_PATH });

describe("agent DNS over IPv6 (root, netns): redirected to the sidecar at [::1]:15053", function () {
  this.timeout(60_000);
  const harness = new PodHarness();
  let pw: PodWorld;
  const dnsLog = (): string => harness.dnsLog();
  /** How many questions the world's resolver has logged. */
  const queries = (): number => (dnsLog().match(/query\[/g) ?? []).length;
  /** `dig` as the agent; `server` is where the agent thinks it sends the query. */
  const agentDig = (server: string, name: string, extra: string[]) =>
    run(pw.asUser(AGENT, ["dig", `@${server}`, "+tries=1", "+time=3", ...extra, name]));

  before(async function () {
    pw = harness.create(
      ["ip", "setpriv", "iptables-restore", "ip6tables-restore", "dnsmasq", "dig", "python3"],
      [PINNED],
    );
    const lo = await run(pw.inPod(["ip", "-6", "addr", "show", "dev", "lo"]));
    expect(lo.stdout, "the pod's loopback must be up with ::1").to.match(/inet6 ::1\/128/);
    await harness.startDnsmasq(pw.worldIp6, [["api.example.test", WORLD_ANSWER]]);
    // The control: from the sidecar's UID (exempt from capture) the world's resolver does answer.
    const direct = await pollDig(() =>
      run(
        pw.asUser(SIDECAR, ["dig", `@${pw.worldIp6}`, "+tries=1", "+time=1", "+short", "api.example.test"]),
      ),
    );
    expect(direct, "the world's resolver must answer the sidecar UID directly").to.equal(WORLD_ANSWER);
    await harness.init();
    const policy = scratchFile(
      pw,
      "policy.yaml",
      egressPolicyYaml("agent", ["{name: api, hosts: [api.example.test]}"]),
    );
    harness.makeTrustDir();
    await harness.start(
      harness.sidecarArgs({ policy, resolve: [`api.example.test:${PINNED}`], allow: [`${PINNED}/32`] }),
      /listening on/,
    );
  });

  after(async function () {
    await harness.teardown();
  });

  for (const transport of ["+notcp", "+tcp"]) {
    it(`dig @::1 ${transport}: answered by the sidecar`, async function () {
      const res = await agentDig("::1", "api.example.test", [transport, "+short"]);
      expect(res.stdout.trim(), res.stdout + res.stderr).to.equal(PINNED);
    });

    it(`dig @<the world's IPv6 resolver> ${transport}: redirected to the sidecar, the world never asked`, async function () {
      const before = queries();
      const res = await agentDig(pw.worldIp6, "api.example.test", [transport, "+short"]);
      expect(res.stdout.trim(), res.stdout + res.stderr).to.equal(PINNED);
      const denied = await agentDig(pw.worldIp6, "c2VjcmV0.leak.example.test", [transport]);
      expect(denied.stdout, denied.stderr).to.match(/status: NXDOMAIN/);
      expect(dnsLog()).not.to.include("leak.example.test");
      expect(queries()).to.equal(before);
    });
  }

  it("the system resolver with an IPv6 nameserver (getaddrinfo) resolves through the sidecar", async function () {
    const before = queries();
    writeFileSync(
      join("/etc/netns", pw.pod, "resolv.conf"),
      `nameserver ${pw.worldIp6}\noptions timeout:1 attempts:1\n`,
    );
    const res = await run(
      pw.asUser(AGENT, [
        "python3",
        "-c",
        "import socket;print(socket.getaddrinfo('api.example.test',80,socket.AF_INET)[0][4][0])",
      ]),
    );
    expect(res.stdout.trim(), res.stderr).to.equal(PINNED);
    expect(queries(), "the world's resolver was asked").to.equal(before);
  });
});

/** Runs `once` until it prints an answer or 5 s pass (dnsmasq may still be starting). */
async function pollDig(once: () => Promise<Run>): Promise<string> {
  let answer = "";
  return eventually(
    async () => {
      answer = (await once()).stdout.trim();
      expect(answer).to.match(/^[\d.]+$/);
      return answer;
    },
    { timeoutMs: 5000, intervalMs: 50 },
  ).catch(() => answer); // the caller says what it wanted
}
