// What the agent cannot do from inside its container, each shown next to a control that proves the
// probe would have seen it: the bystander pod (same image, a namespace without the boundary) or
// the sidecar container of the same pod does what the agent cannot.
import { expect } from "chai";
import { PORTS, TOKEN_DIR } from "../../sidecar/constants.ts";
import { eventually } from "../helpers/eventually.ts";
import type { World } from "./install.ts";
import { arrivals, marker, type Cluster } from "./kit.ts";
import { AGENT, arrivalsOf, SIDECAR } from "./observe.ts";
import { AGENTS_NS, HOSTS, SECRET_NAME, WORLD_NS } from "./world.ts";

/** Sends one UDP datagram carrying `payload` to HOST:PORT with python3 (exit 0 once sent). */
const udpSend = (host: string, port: number, payload: string): string[] => [
  "python3",
  "-c",
  "import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ntry:\n  s.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))\nexcept OSError as e:\n  print(e); sys.exit(1)",
  host,
  String(port),
  payload,
];

/** curl printing only the HTTP status of ARGS (the URL last). */
const statusOf = (args: string[]): string[] => [
  "curl",
  "-sS",
  "--max-time",
  "5",
  "-o",
  "/dev/null",
  "-w",
  "%{http_code}",
  ...args,
];

/** Resolves `name` with Node's resolver (straight DNS, not /etc/hosts): prints the addresses or the error code. */
const resolve = (name: string): string[] => [
  "node",
  "-e",
  "require('node:dns').promises.resolve4(process.argv[1]).then((a) => console.log(a.join(',')), (e) => { console.log(e.code); process.exit(1); })",
  name,
];

export function confinementTests(ctx: { cluster(): Cluster; world(): World }): void {
  const inAgent = (command: string[]) => ctx.cluster().exec(AGENTS_NS, ctx.world().agentPod, AGENT, command);
  const inBystander = (command: string[]) => ctx.cluster().exec(WORLD_NS, "bystander", "bystander", command);

  describe("what the agent cannot do", function () {
    it("read the Secret through the API: it holds no token, and the API server is not reachable", async function () {
      const { token, agentPod } = ctx.world();
      expect((await inAgent(["ls", TOKEN_DIR])).code, "the agent has no token folder").not.to.equal(0);
      const sidecar = await ctx.cluster().exec(AGENTS_NS, agentPod, SIDECAR, ["ls", `${TOKEN_DIR}/token`]);
      expect(sidecar.code, "control: the sidecar of the same pod has its token").to.equal(0);
      // The `kubernetes` Service, as the kubelet tells every container where it is.
      const path = `/api/v1/namespaces/${AGENTS_NS}/secrets/${SECRET_NAME}`;
      const script = `exec curl -sS -k --max-time 10 "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT${path}"`;
      const res = await inAgent(["sh", "-c", script]);
      expect(res.code).not.to.equal(0);
      expect(res.stdout + res.stderr).not.to.include(token);
      expect(res.stdout).not.to.include('"kind": "Secret"');
    });

    it("reach the sidecar's control port; the metrics port answers reads only", async function () {
      const control = await inAgent([
        "curl",
        "-sS",
        "-k",
        "--max-time",
        "5",
        `https://127.0.0.1:${String(PORTS.control)}/`,
      ]);
      expect(control.code, "the control port refuses the agent").not.to.equal(0);
      expect(control.stderr, "refused at connect (curl exit 7), not a TLS or HTTP error").to.match(
        /^curl: \(7\)/,
      );
      const podIp = await ctx
        .cluster()
        .jsonpath(["pod", ctx.world().agentPod, "-n", AGENTS_NS], "{.status.podIP}");
      const bystander = await inBystander(statusOf(["-k", `https://${podIp}:${String(PORTS.control)}/`]));
      expect(bystander.code, "control: the port is open to the operator's side").to.equal(0);
      const metrics = `http://127.0.0.1:${String(PORTS.metrics)}/metrics`;
      const read = await inAgent(["curl", "-sS", "--max-time", "5", metrics]);
      expect(read.stdout).to.include("airlock_decisions_total");
      expect(read.stdout).not.to.include(ctx.world().token);
      for (const method of ["POST", "PUT", "DELETE"]) {
        const write = await inAgent(statusOf(["-X", method, metrics]));
        expect(write.stdout, `${method} /metrics`).to.equal("405");
      }
    });

    it("undo the capture: iptables -F fails, and a blocked host stays blocked", async function () {
      const flush = await inAgent(["iptables", "-w", "-t", "nat", "-F"]);
      expect(flush.code, "iptables -t nat -F as root without NET_ADMIN").not.to.equal(0);
      expect(flush.stderr).to.match(/permission denied|not permitted/i);
      const filter = await inAgent(["iptables", "-w", "-F"]);
      expect(filter.code).not.to.equal(0);
      const mark = marker("after-flush");
      const res = await inAgent(["curl", "-sS", "--max-time", "10", `https://${HOSTS.block}/${mark}`]);
      expect(res.code).not.to.equal(0);
      expect(await arrivalsOf(ctx.cluster(), mark)).to.deep.equal([]);
    });

    it("send UDP or ICMP anywhere (the bystander's reach the upstream)", async function () {
      const upstream = ctx.world().upstreamIp;
      const agentMark = marker("udp-agent");
      await inAgent(udpSend(upstream, 5353, agentMark));
      expect((await inAgent(["ping", "-c", "1", "-W", "2", upstream])).code, "agent ping").not.to.equal(0);
      const bystanderMark = marker("udp-bystander");
      expect((await inBystander(udpSend(upstream, 5353, bystanderMark))).code).to.equal(0);
      expect(
        (await inBystander(["ping", "-c", "1", "-W", "2", upstream])).code,
        "control: bystander ping",
      ).to.equal(0);
      const agentIp = await ctx
        .cluster()
        .jsonpath(["pod", ctx.world().agentPod, "-n", AGENTS_NS], "{.status.podIP}");
      const bystanderIp = await ctx
        .cluster()
        .jsonpath(["pod", "bystander", "-n", WORLD_NS], "{.status.podIP}");
      const udpFrom = async (ip: string) =>
        (await arrivals(ctx.cluster(), WORLD_NS, "upstream")).filter((a) => a.kind === "udp" && a.from === ip)
          .length;
      await eventually(async () =>
        expect(await udpFrom(bystanderIp), "control: the bystander's datagram").to.be.greaterThan(0),
      );
      expect(await udpFrom(agentIp), "datagrams from the agent pod").to.equal(0);
    });

    it("resolve a name no rule allows: NXDOMAIN from the sidecar's DNS", async function () {
      // On the node of make e2e nothing else answers DNS (pods' resolv.conf names the node address,
      // where no server listens): without the sidecar this would be ECONNREFUSED or ETIMEOUT.
      const res = await inAgent(resolve("not-allowed.e2e.test"));
      expect(res.stdout.trim()).to.equal("ENOTFOUND");
    });
  });
}
