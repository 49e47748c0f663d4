// The codec against real clients: packets written by `dig` and Node's resolver (c-ares) parse as
// the queries they are, and the responses the codec builds are accepted by those same clients.
import { expect } from "chai";
import { promises as dnsPromises } from "node:dns";
import { TYPE, parseQuery } from "./codec.ts";
import { dig } from "./test-clients.ts";
import { summary } from "./test-packets.ts";
import { startFakeUpstream, type FakeUpstream } from "./test-upstream.ts";

describe("dns codec: interop with real clients", () => {
  let server: FakeUpstream;
  before(async () => {
    server = await startFakeUpstream({
      "api.example.test": { A: ["93.184.215.14"], AAAA: ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"], ttl: 60 },
    });
  });
  after(async () => {
    await server.close();
  });

  /** Parses the packets the server received from `run` (a real client invocation). */
  async function captured<T>(
    run: () => Promise<T>,
  ): Promise<{ result: T; parsed: object[]; transports: string[] }> {
    const from = server.packets.length;
    const result = await run();
    const packets = server.packets.slice(from);
    return {
      result,
      parsed: packets.map((packet) => summary(parseQuery(packet.bytes))),
      transports: packets.map((packet) => packet.transport),
    };
  }

  const question = (name: string, type: number) => ({ name, type, qclass: 1 });
  const digRows: { name: string; args: string[]; want: object; status: string; answers: string[] }[] = [
    {
      name: "dig A with its default EDNS0 and cookie, name in mixed case",
      args: ["API.Example.Test", "A"],
      want: {
        kind: "query",
        question: question("api.example.test", TYPE.A),
        edns: { udpSize: 1232, version: 0, dnssecOk: false },
      },
      status: "NOERROR",
      answers: ["93.184.215.14"],
    },
    {
      name: "dig AAAA without EDNS0",
      args: ["+noedns", "api.example.test", "AAAA"],
      want: { kind: "query", question: question("api.example.test", TYPE.AAAA), edns: undefined },
      status: "NOERROR",
      answers: ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    },
    {
      name: "dig +dnssec sets DO",
      args: ["+dnssec", "+bufsize=4096", "api.example.test", "A"],
      want: {
        kind: "query",
        question: question("api.example.test", TYPE.A),
        edns: { udpSize: 4096, version: 0, dnssecOk: true },
      },
      status: "NOERROR",
      answers: ["93.184.215.14"],
    },
    {
      name: "dig MX of a name outside the zone",
      args: ["other.example.test", "MX"],
      want: {
        kind: "query",
        question: question("other.example.test", TYPE.MX),
        edns: { udpSize: 1232, version: 0, dnssecOk: false },
      },
      status: "NXDOMAIN",
      answers: [],
    },
  ];
  for (const row of digRows) {
    for (const transport of ["udp", "tcp"] as const) {
      it(`${row.name} (${transport})`, async () => {
        const args = transport === "tcp" ? ["+tcp", ...row.args] : row.args;
        const { result, parsed, transports } = await captured(() => dig(server.port, args));
        expect(parsed).to.deep.equal([row.want]);
        expect(transports).to.deep.equal([transport]);
        expect(result.status, result.output).to.equal(row.status);
        expect(result.answers.map((answer) => answer.data)).to.deep.equal(row.answers);
        expect(result.flags).to.include.members(["qr", "rd", "ra"]);
        expect(result.flags).not.to.include("aa");
      });
    }
  }

  it("Node's resolver: A query without EDNS0, and it reads our answer with its TTL", async () => {
    const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.port}`]);
    const { result, parsed } = await captured(() => resolver.resolve4("api.example.test", { ttl: true }));
    expect(parsed).to.deep.equal([
      { kind: "query", question: question("api.example.test", TYPE.A), edns: undefined },
    ]);
    expect(result).to.deep.equal([{ address: "93.184.215.14", ttl: 60 }]);
  });

  it("Node's resolver: TXT query, and it reads our NODATA as ENODATA", async () => {
    const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.port}`]);
    const { result, parsed } = await captured(() =>
      resolver.resolveTxt("api.example.test").then(
        () => "resolved",
        (err: unknown) => (err as { code?: string }).code,
      ),
    );
    expect(parsed).to.deep.equal([
      { kind: "query", question: question("api.example.test", TYPE.TXT), edns: undefined },
    ]);
    expect(result).to.equal("ENODATA");
  });
});
