// Test support: raw UDP and TCP DNS clients (for what real clients refuse to send), a header
// reader, and a runner for the real `dig` binary with its output parsed.
import { execFile } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";

/** The header of a response, decoded for assertions. */
export interface ResponseHeader {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

/** Decodes the 12-byte header; throws on a shorter packet (a test failure, not an input). */
export function readHeader(packet: Uint8Array): ResponseHeader {
  if (packet.length < 12) throw new Error(`response of ${packet.length} bytes has no header`);
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const flags = view.getUint16(2);
  return {
    id: view.getUint16(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
    qdcount: view.getUint16(4),
    ancount: view.getUint16(6),
    nscount: view.getUint16(8),
    arcount: view.getUint16(10),
  };
}

/**
 * Sends each packet in order from one UDP socket to `host`:`port` and returns the responses
 * received within `waitMs` of the last send, in arrival order (a dropped packet simply has none);
 * returns as soon as there is one response per packet.
 */
export async function udpExchange(
  port: number,
  packets: Uint8Array[],
  waitMs = 300,
  host = "127.0.0.1",
): Promise<Buffer[]> {
  const v6 = net.isIPv6(host);
  const socket = dgram.createSocket(v6 ? "udp6" : "udp4");
  const responses: Buffer[] = [];
  let allAnswered = (): void => undefined;
  socket.on("message", (message) => {
    responses.push(message);
    if (responses.length >= packets.length) allAnswered();
  });
  await new Promise<void>((resolve) => {
    socket.bind(0, v6 ? "::1" : "127.0.0.1", resolve);
  });
  try {
    for (const packet of packets) {
      await new Promise<void>((resolve, reject) => {
        socket.send(packet, port, host, (err) => {
          if (err) reject(err);
          else resolve();
        });
      });
    }
    if (responses.length < packets.length) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        allAnswered = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return [...responses];
  } finally {
    socket.close();
  }
}

/** Frames a message for DNS over TCP (2-byte length prefix). */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  out.set(message, 2);
  return out;
}

/** A raw TCP connection to a DNS server: write any bytes, read framed responses, see the close. */
export class TcpDnsClient {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  #buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        resolve();
      }),
    );
    socket.on("error", () => undefined);
    socket.on("data", (chunk) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on("close", () => {
      this.#wake();
    });
  }

  /** Connects to `host`:`port` (default 127.0.0.1). */
  static connect(port: number, host = "127.0.0.1"): Promise<TcpDnsClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => {
        socket.off("error", reject);
        resolve(new TcpDnsClient(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Writes raw bytes (use {@link frame} for well-formed framing). */
  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** The next framed response, or undefined if the connection closes or `timeoutMs` passes. */
  async next(timeoutMs = 2000): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#buffer.length >= 2) {
        const length = this.#buffer.readUInt16BE(0);
        if (this.#buffer.length >= 2 + length) {
          const message = this.#buffer.subarray(2, 2 + length);
          this.#buffer = this.#buffer.subarray(2 + length);
          return message;
        }
      }
      const left = deadline - Date.now();
      if (this.socket.destroyed || left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Destroys the connection. */
  close(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }
}

/** The parts of `dig` output the tests assert: status, header flags and answer records. */
export interface DigResult {
  status: string;
  flags: string[];
  answers: { name: string; ttl: number; type: string; data: string }[];
  truncatedRetry: boolean;
  output: string;
}

/** Runs the real `dig` against `host`:`port`; a missing binary fails with what to install. */
export async function dig(port: number, args: string[], host = "127.0.0.1"): Promise<DigResult> {
  const argv = [`@${host}`, "-p", String(port), "+tries=1", "+time=3", "+noall", "+comments", "+answer"];
  const output = await new Promise<string>((resolve, reject) => {
    execFile("dig", [...argv, ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err && (err as { code?: unknown }).code === "ENOENT") {
        reject(new Error("dig is not installed: apt-get install -y dnsutils (CI: .ci/run installs it)"));
      } else if (err) {
        reject(new Error(`dig ${args.join(" ")} failed: ${err.message}\n${stdout}${stderr}`));
      } else resolve(stdout + stderr);
    });
  });
  const status = /status: ([A-Z]+)/.exec(output)?.[1] ?? "";
  const flags = /;; flags: ([a-z ]*);/.exec(output)?.[1]?.trim().split(/\s+/) ?? [];
  const answers = output
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith(";"))
    .map((line) => line.split(/\s+/))
    .filter((fields) => fields.length === 5)
    .map(([name = "", ttl = "", , type = "", data = ""]) => ({ name, ttl: Number(ttl), type, data }));
  return { status, flags, answers, truncatedRetry: output.includes("Truncated, retrying"), output };
}
