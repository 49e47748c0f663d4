// Faults (THREATS.md Availability): 2,000 idle CONNECT tunnels at once through a real `airlock
// run` process — 1,000 passed through to an allowed TLS host, 1,000 intercepted, every TLS
// handshake done — and the sidecar still serves a new request, the old tunnels still work, and
// closing them all gives back every descriptor. Functional only: the memory these tunnels cost is
// measured by test/bench/tunnels.ts, never asserted here.
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type tls from "node:tls";
import { startEchoUpstream, type EchoUpstream } from "../../sidecar/demo/echo-upstream.ts";
import {
  getOnTunnel,
  INTERCEPT_HOST,
  openFds,
  openFileLimits,
  openTunnel,
  openTunnels,
  PASS_HOST,
  startSidecarProcess,
  TUNNEL_SECRET,
  until,
  writeTunnelPolicy,
  type SidecarUnderLoad,
} from "./tunnel-load.ts";

const PER_KIND = 1000;
/** This process holds a client socket per tunnel and the upstream's end of each passthrough one. */
const TEST_FDS_NEEDED = 2 * PER_KIND + PER_KIND + 500;
const SIDECAR_FD_LIMIT = 8192;

describe("faults: 2,000 idle CONNECT tunnels through one sidecar process", function () {
  this.timeout(120_000); // opening them takes seconds; the deadline is only against a hang
  const dir = mkdtempSync(join(tmpdir(), "airlock-tunnels-"));
  let upstream: EchoUpstream | undefined;
  let sidecar: SidecarUnderLoad | undefined;
  let tunnels: tls.TLSSocket[] = [];
  const up = (): EchoUpstream => {
    if (!upstream) throw new Error("no upstream");
    return upstream;
  };
  const side = (): SidecarUnderLoad => {
    if (!sidecar) throw new Error("no sidecar");
    return sidecar;
  };
  const pass = (): Promise<tls.TLSSocket> => openTunnel(side().proxyPort, PASS_HOST, up().port, up().caPem);
  const intercepted = (): Promise<tls.TLSSocket> =>
    openTunnel(side().proxyPort, INTERCEPT_HOST, up().port, side().caPem);
  const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

  before(async function () {
    const limits = openFileLimits();
    if (limits.soft < TEST_FDS_NEEDED)
      throw new Error(
        `this test needs ${TEST_FDS_NEEDED} open files (ulimit -n is ${limits.soft}); raise it with ulimit -n`,
      );
    if (limits.hard < SIDECAR_FD_LIMIT)
      throw new Error(`the sidecar needs ulimit -n ${SIDECAR_FD_LIMIT}; the hard limit is ${limits.hard}`);
    const started = await startEchoUpstream({ tls: true });
    upstream = started;
    const caFile = join(dir, "upstream-ca.pem");
    writeFileSync(caFile, started.caPem);
    sidecar = await startSidecarProcess({
      dir,
      policy: writeTunnelPolicy(dir, started.port),
      upstreamCaFile: caFile,
      fdLimit: SIDECAR_FD_LIMIT,
    });
  });
  after(async function () {
    for (const t of tunnels) t.destroy();
    await sidecar?.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("2,000 tunnels open at once (1,000 passthrough, 1,000 intercepted), all handshakes done", async function () {
    const baseline = openFds(side().pid);
    tunnels = [...(await openTunnels(PER_KIND, 50, pass)), ...(await openTunnels(PER_KIND, 50, intercepted))];
    expect(tunnels).to.have.length(2 * PER_KIND);
    expect(tunnels.filter((t) => t.destroyed)).to.deep.equal([]);
    // A passthrough tunnel holds two sockets in the sidecar (agent and upstream), an intercepted one.
    expect(openFds(side().pid) - baseline).to.be.at.least(3 * PER_KIND);
  });

  it("with them open, the sidecar answers a new request on each path, the credential injected", async function () {
    const before = up().received.length;
    const injected = await getOnTunnel(await intercepted(), INTERCEPT_HOST, up().port, "/new-inject");
    expect(status(injected)).to.equal(200);
    const passed = await getOnTunnel(await pass(), PASS_HOST, up().port, "/new-pass");
    expect(status(passed)).to.equal(200);
    const got = up().received.slice(before);
    expect(got.map((r) => [r.url, r.headers["x-api-key"]])).to.deep.equal([
      ["/new-inject", TUNNEL_SECRET],
      ["/new-pass", undefined],
    ]);
  });

  it("the oldest and newest tunnels of each kind still carry a request", async function () {
    const picks = [0, PER_KIND - 1, PER_KIND, 2 * PER_KIND - 1];
    for (const i of picks) {
      const tunnel = tunnels[i];
      if (!tunnel) throw new Error(`no tunnel ${i}`);
      const host = i < PER_KIND ? PASS_HOST : INTERCEPT_HOST;
      expect(status(await getOnTunnel(tunnel, host, up().port, `/old-${i}`)), `tunnel ${i}`).to.equal(200);
    }
  });

  it("closing them all gives every descriptor back, and the sidecar keeps serving", async function () {
    const start = openFds(side().pid);
    for (const t of tunnels) t.destroy();
    tunnels = [];
    await until(
      `sidecar descriptors back near idle (from ${start})`,
      () => openFds(side().pid) < 100,
      20_000,
    );
    expect(side().child.exitCode).to.equal(null);
    expect(status(await getOnTunnel(await intercepted(), INTERCEPT_HOST, up().port, "/after"))).to.equal(200);
  });
});
