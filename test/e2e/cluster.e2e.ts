// End to end on a real cluster: `helm install`, `kubectl apply` of a policy, an agent Deployment the
// webhook injects, and from inside the agent container the three outcomes for curl, python3, git
// and node, transparently and through the explicit proxy; then what the agent cannot do, live
// policy and Secret changes, losing the leader, `helm upgrade` and `helm uninstall`. Tests run in
// order on one world (test/e2e/run.sh sets the environment; docs/testing.md).
import { expect } from "chai";
import { CLIENTS, clientCommand, EXPLICIT_PROXY_ENV, type ClientName } from "./clients.ts";
import { confinementTests } from "./confinement.ts";
import { setUpWorld, type World } from "./install.ts";
import { Cluster, e2eSettings, marker } from "./kit.ts";
import { lifecycleTests } from "./lifecycle.ts";
import { AGENT, arrivalsOf, arrivedOnce, audited, auditCount, SIDECAR } from "./observe.ts";
import { prometheusTests } from "./prometheus.ts";
import { uninstallTests } from "./uninstall.ts";
import { AGENTS_NS, HOSTS } from "./world.ts";

describe("e2e on a real cluster (helm install, kubectl apply, an injected agent pod)", function () {
  this.timeout(600_000);
  let cluster: Cluster;
  let world: World;

  before(async function () {
    cluster = new Cluster(e2eSettings());
    world = await setUpWorld(cluster);
  });

  const fetchFromAgent = async (client: ClientName, url: string, explicit: boolean) =>
    cluster.exec(
      AGENTS_NS,
      world.agentPod,
      AGENT,
      clientCommand(client, url),
      explicit ? EXPLICIT_PROXY_ENV : {},
    );

  for (const explicit of [false, true]) {
    const entry = explicit ? "connect" : "transparent-tls";
    describe(`the three outcomes, ${explicit ? "through the explicit proxy" : "transparently (no proxy settings)"}`, function () {
      for (const client of CLIENTS) {
        it(`${client}: inject — the Secret's token arrives upstream, the agent never sees it`, async function () {
          const mark = marker(`inject-${client}-${entry}`);
          // git asks for URL/info/refs?service=git-upload-pack; the audit log drops the query.
          const path = client === "git" ? `/${mark}/info/refs` : `/${mark}`;
          const fields = { entry, outcome: "inject", host: HOSTS.inject, path };
          const before = await auditCount(cluster, world, fields);
          const res = await fetchFromAgent(client, `https://${HOSTS.inject}/${mark}`, explicit);
          const arrival = await arrivedOnce(cluster, mark);
          expect(arrival.headers?.["authorization"]).to.equal(`Bearer ${world.token}`);
          expect(arrival.headers?.["host"]).to.equal(HOSTS.inject);
          expect(res.stdout + res.stderr).not.to.include(world.token);
          if (client !== "git") {
            expect(res.code, res.stderr).to.equal(0);
            expect(res.stdout).to.include(`hello from ${HOSTS.inject} /${mark}`);
          }
          await audited(cluster, world, fields, before);
        });

        it(`${client}: allow — the request arrives with no credential`, async function () {
          const mark = marker(`allow-${client}-${entry}`);
          const fields = { entry, outcome: "allow", host: HOSTS.allow };
          const before = await auditCount(cluster, world, fields);
          const res = await fetchFromAgent(client, `https://${HOSTS.allow}/${mark}`, explicit);
          const arrival = await arrivedOnce(cluster, mark);
          expect(arrival.headers).not.to.have.property("authorization");
          expect(res.stdout + res.stderr).not.to.include(world.token);
          if (client !== "git") expect(res.stdout).to.include(`hello from ${HOSTS.allow} /${mark}`);
          await audited(cluster, world, fields, before);
        });

        it(`${client}: block — nothing arrives upstream`, async function () {
          const mark = marker(`block-${client}-${entry}`);
          const fields = { entry, outcome: "block", host: HOSTS.block, reason: "NoRuleMatched" };
          const before = await auditCount(cluster, world, fields);
          const res = await fetchFromAgent(client, `https://${HOSTS.block}/${mark}`, explicit);
          expect(res.stdout).not.to.include("hello from");
          if (client !== "git") expect(res.code, "the client reports the refusal").not.to.equal(0);
          await audited(cluster, world, fields, before);
          expect(await arrivalsOf(cluster, mark)).to.deep.equal([]);
        });
      }
    });
  }

  describe("the sidecar process in the pod", function () {
    it("runs the bundle with the memory addon loaded and glibc's malloc settings (it gives memory back when quiet)", async function () {
      // PID 1 of the sidecar container is the sidecar's node (bin/airlock execs it).
      const cmdline = await cluster.exec(AGENTS_NS, world.agentPod, SIDECAR, ["cat", "/proc/1/cmdline"]);
      expect(cmdline.stdout.split("\0"), "the sidecar's command line").to.include(
        "/app/sidecar/cli/bundle.js",
      );
      const script =
        "grep -c /app/sidecar/native/build/memory.node /proc/1/maps; tr '\\0' '\\n' </proc/1/environ | grep '^MALLOC_'";
      const res = await cluster.exec(AGENTS_NS, world.agentPod, SIDECAR, ["sh", "-c", script]);
      expect(res.code, res.stderr).to.equal(0);
      const [mapped, ...malloc] = res.stdout.trim().split("\n");
      // A reading, not a target (benchmarks are where targets are met): the in-pod sidecar reads
      // its Secrets from the API, which `make bench`'s `airlock run` does not.
      const reading = async (): Promise<string> => {
        const status = await cluster.exec(AGENTS_NS, world.agentPod, SIDECAR, ["cat", "/proc/1/status"]);
        const mib = (field: string): string =>
          (Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status.stdout)?.[1] ?? NaN) / 1024).toFixed(
            0,
          );
        return `VmRSS ${mib("VmRSS")} MiB (anonymous ${mib("RssAnon")}, file-backed ${mib("RssFile")})`;
      };
      const now = await reading();
      // Long enough for the release after a busy spell (three quiet seconds after a busy one).
      await new Promise((resolve) => setTimeout(resolve, 5000));
      console.log(`      [e2e] the sidecar in the pod: ${now}; 5 s later ${await reading()}`);
      expect(Number(mapped), "mappings of the addon in the sidecar").to.be.above(0);
      // The addon's unmapping of unused file pages reads /proc/self/pagemap: under the container's
      // user, capabilities and seccomp profile it must work, as it does for the sidecar itself.
      const drop = await cluster.exec(AGENTS_NS, world.agentPod, SIDECAR, [
        "/app/node_modules/.bin/node",
        "-e",
        "process.stdout.write(String(require('/app/sidecar/native/build/memory.node').dropFilePages()))",
      ]);
      expect(drop.code, drop.stderr).to.equal(0);
      expect(Number(drop.stdout), "bytes of file pages unmapped in the sidecar container").to.be.above(0);
      expect(malloc.sort()).to.deep.equal([
        "MALLOC_ARENA_MAX=2",
        "MALLOC_MMAP_THRESHOLD_=131072",
        "MALLOC_TRIM_THRESHOLD_=131072",
      ]);
    });
  });

  const ctx = { cluster: () => cluster, world: () => world };
  confinementTests(ctx);
  lifecycleTests(ctx);
  prometheusTests(ctx);
  uninstallTests(ctx);
});
