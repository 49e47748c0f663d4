// Test support: a real UDP and TCP DNS server for a fixed zone that records every question it is asked,
// so a test can prove which names left the sidecar (and that denied ones never did).
import dgram from "node:dgram";
import net from "node:net";
import {
  TCP_LIMIT,
  TYPE,
  addressBytes,
  buildResponse,
  parseQuery,
  udpResponseLimit,
  type AnswerRecord,
} from "./codec.ts";
import { frame } from "./test-clients.ts";

/** One name of the zone; a type it lacks is NODATA; `rcode` or `silent` simulate failures. */
export interface ZoneEntry {
  A?: string[];
  AAAA?: string[];
  ttl?: number;
  rcode?: "SERVFAIL" | "REFUSED";
  silent?: boolean;
}

/** A question the fake upstream received: the name as canonical text and the numeric type. */
export interface AskedQuestion {
  name: string;
  type: number;
}

/** A running fake upstream on 127.0.0.1; `asked` and `packets` grow with every query received. */
export interface FakeUpstream {
  port: number;
  asked: AskedQuestion[];
  packets: { transport: "udp" | "tcp"; bytes: Uint8Array }[];
  askedNames(): string[];
  close(): Promise<void>;
}

/** Starts the fake upstream on UDP and TCP (one port); names outside `zone` are NXDOMAIN. */
export async function startFakeUpstream(zone: Record<string, ZoneEntry>): Promise<FakeUpstream> {
  const asked: AskedQuestion[] = [];
  const packets: FakeUpstream["packets"] = [];
  const respond = (packet: Uint8Array, transport: "udp" | "tcp"): Uint8Array | undefined => {
    packets.push({ transport, bytes: Uint8Array.from(packet) });
    const query = parseQuery(packet);
    if (query.kind !== "query") return undefined;
    const { name, type } = query.question;
    asked.push({ name, type });
    const entry = Object.hasOwn(zone, name) ? zone[name] : undefined;
    if (entry?.silent === true) return undefined;
    const answers: AnswerRecord[] = [];
    const addresses = type === TYPE.A ? entry?.A : type === TYPE.AAAA ? entry?.AAAA : undefined;
    for (const address of addresses ?? []) {
      const data = addressBytes(address);
      if (data === undefined) throw new Error(`fake upstream zone: bad address ${address}`);
      answers.push({ type: type === TYPE.A ? TYPE.A : TYPE.AAAA, ttl: entry?.ttl ?? 300, data });
    }
    const rcode = entry === undefined ? "NXDOMAIN" : (entry.rcode ?? "NOERROR");
    const limit = transport === "udp" ? udpResponseLimit(query.edns) : TCP_LIMIT;
    return buildResponse({ ...query, rcode, answers }, limit);
  };
  const sockets = new Set<net.Socket>();
  for (;;) {
    const udp = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => {
      udp.bind(0, "127.0.0.1", resolve);
    });
    const port = udp.address().port;
    const tcp = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      let buffered = Buffer.alloc(0);
      socket.on("error", () => undefined);
      socket.on("data", (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
          buffered = buffered.subarray(2 + message.length);
          const response = respond(message, "tcp");
          if (response !== undefined) socket.write(frame(response));
        }
      });
    });
    const listening = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => {
        resolve(false);
      });
      tcp.listen(port, "127.0.0.1", () => {
        resolve(true);
      });
    });
    if (!listening) {
      udp.close();
      continue;
    }
    udp.on("message", (packet, peer) => {
      const response = respond(packet, "udp");
      if (response !== undefined) udp.send(response, peer.port, peer.address);
    });
    return {
      port,
      asked,
      packets,
      askedNames: () => asked.map((question) => question.name),
      close: async () => {
        for (const socket of sockets) socket.destroy();
        await Promise.all([
          new Promise((resolve) => tcp.close(resolve)),
          new Promise<void>((resolve) => {
            udp.close(() => {
              resolve();
            });
          }),
        ]);
      },
    };
  }
}
