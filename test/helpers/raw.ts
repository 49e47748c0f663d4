// Raw TCP conversations with the proxy, for what real clients refuse to send: CONNECT followed by
// plain HTTP, malformed requests, smuggling attempts, abrupt disconnects. Everything read is the
// agent's view and is recorded for the canary scan (canary.ts).
import net from "node:net";
import { canary } from "./canary.ts";

/** Opens a TCP connection to host:port. */
export function connect(port: number, host = "127.0.0.1"): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Sends `data` and collects everything until the peer closes (or `ms` passes); records it. */
export function exchange(port: number, data: string | Buffer, ms = 3000): Promise<string> {
  return connect(port).then(
    (socket) =>
      new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        const done = (): void => {
          clearTimeout(timer);
          socket.destroy();
          const text = Buffer.concat(chunks).toString("latin1");
          canary.record("response", `raw exchange with port ${port}`, text, "exposed");
          resolve(text);
        };
        const timer = setTimeout(done, ms);
        socket.on("data", (c: Buffer) => chunks.push(c));
        socket.on("close", done);
        socket.on("error", done);
        socket.write(data);
      }),
  );
}

/** Reads from `socket` until `predicate` holds for the text so far (or the peer closes); records it. */
export function readUntil(
  socket: net.Socket,
  predicate: (text: string) => boolean,
  ms = 3000,
): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    const finish = (): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", finish);
      canary.record("response", `raw read from port ${String(socket.remotePort)}`, text, "exposed");
      resolve(text);
    };
    const onData = (c: Buffer): void => {
      text += c.toString("latin1");
      if (predicate(text)) finish();
    };
    const timer = setTimeout(finish, ms);
    socket.on("data", onData);
    socket.on("close", finish);
  });
}

/** A parsed HTTP/1.1 response head plus body text. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses the first response in `text` (no chunked decoding; tests ask for Connection: close). */
export function parseResponse(text: string): RawResponse {
  const end = text.indexOf("\r\n\r\n");
  const head = end === -1 ? text : text.slice(0, end);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    status: Number(statusLine.split(" ")[1] ?? 0),
    headers,
    body: end === -1 ? "" : text.slice(end + 4),
  };
}

/** CONNECTs to host:port through the proxy, then sends one plain HTTP request inside the tunnel. */
export async function httpInsideConnect(
  proxyPort: number,
  target: { host: string; port: number },
  request: string,
): Promise<{ connect: RawResponse; response?: RawResponse }> {
  const socket = await connect(proxyPort);
  socket.write(
    `CONNECT ${target.host}:${target.port} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\n\r\n`,
  );
  const connectText = await readUntil(
    socket,
    (t) => t.includes("\r\n\r\n") && (!t.startsWith("HTTP/1.1 4") || t.includes("}")),
  );
  const connectResponse = parseResponse(connectText);
  if (connectResponse.status !== 200) {
    socket.destroy();
    return { connect: connectResponse };
  }
  socket.write(request);
  const text = await readUntil(socket, () => false);
  socket.destroy();
  return { connect: connectResponse, response: parseResponse(text) };
}

/** True once `text` holds a whole response with a Content-Length body (or a chunked one's end). */
export function responseComplete(text: string): boolean {
  const end = text.indexOf("\r\n\r\n");
  if (end === -1) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end))?.[1];
  if (length !== undefined) return Buffer.byteLength(text.slice(end + 4), "latin1") >= Number(length);
  return text.endsWith("0\r\n\r\n");
}
