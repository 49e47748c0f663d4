// gRPC through the credential path with a real gRPC library on both ends (@grpc/grpc-js client and
// server, HTTP/2 over TLS), the client going through the explicit proxy (grpc_proxy, CONNECT):
// unary and streaming calls get the credential as metadata upstream; the status trailers reach the
// client; a reflection of the credential in a message, in initial metadata or in trailing metadata
// is scrubbed with every message still readable; a blocked call fails with PERMISSION_DENIED and
// the reason (THREATS.md I1, I3, I4).
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { REDACTED } from "../sidecar/proxy/scrub.ts";
import { CertificateAuthority } from "../sidecar/tls/ca.ts";
import { ADMIN, ECHO, type Message } from "./fixtures/grpc-echo.ts";
import { credential, policy, secret, startTestSidecar, type TestSidecar } from "./helpers/sidecar.ts";

const API = "grpc-api.example.test";
const SECRET = "grpc-s3cr3t-19fa0c6e2b";

type EchoClient = grpc.Client & {
  unary(
    m: Message,
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null, res?: Message) => void,
  ): grpc.ClientUnaryCall;
  serverStream(m: Message): grpc.ClientReadableStream<Message>;
  clientStream(
    cb: (err: grpc.ServiceError | null, res?: Message) => void,
  ): grpc.ClientWritableStream<Message>;
  bidi(): grpc.ClientDuplexStream<Message, Message>;
};
type AdminClient = grpc.Client & {
  drop(m: Message, cb: (err: grpc.ServiceError | null, res?: Message) => void): grpc.ClientUnaryCall;
};

const EchoClient = grpc.makeGenericClientConstructor(ECHO, "Echo");
const AdminClient = grpc.makeGenericClientConstructor(ADMIN, "Admin");

describe("gRPC through the credential path (@grpc/grpc-js client and server, explicit proxy)", function () {
  let sidecar: TestSidecar;
  let server: grpc.Server;
  let port = 0;
  const seen: { path: string; authorization: string }[] = [];
  let savedProxy: string | undefined;

  /** The credential as the upstream received it, on a call. */
  function authorizationOf(call: { metadata: grpc.Metadata }, path: string): string {
    const value = String(call.metadata.get("authorization")[0] ?? "");
    seen.push({ path, authorization: value });
    return value;
  }

  /** Trailing metadata reflecting the credential. */
  function trailer(auth: string): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set("x-trailer-echo", auth);
    return md;
  }

  before(async function () {
    const upstreamCa = new CertificateAuthority();
    const { key, cert } = upstreamCa.serverCredentials(API);
    server = new grpc.Server();
    server.addService(ECHO, {
      unary: (call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>) => {
        const auth = authorizationOf(call, ECHO.unary.path);
        const initial = new grpc.Metadata();
        initial.set("x-echo", auth);
        call.sendMetadata(initial);
        callback(null, { text: `unary ${call.request.text} auth ${auth}` }, trailer(auth));
      },
      serverStream: (call: grpc.ServerWritableStream<Message, Message>) => {
        const auth = authorizationOf(call, ECHO.serverStream.path);
        for (let i = 0; i < 3; i++) call.write({ text: `part ${i} auth ${auth}` });
        call.end(trailer(auth));
      },
      clientStream: (
        call: grpc.ServerReadableStream<Message, Message>,
        callback: grpc.sendUnaryData<Message>,
      ) => {
        const auth = authorizationOf(call, ECHO.clientStream.path);
        const texts: string[] = [];
        call.on("data", (m: Message) => texts.push(m.text));
        call.on("end", () => {
          callback(null, { text: `got ${texts.join(",")} auth ${auth}` });
        });
      },
      bidi: (call: grpc.ServerDuplexStream<Message, Message>) => {
        const auth = authorizationOf(call, ECHO.bidi.path);
        call.on("data", (m: Message) => {
          if (m.text === "fail") {
            call.emit("error", { code: grpc.status.FAILED_PRECONDITION, details: `refused ${auth}` });
            return;
          }
          call.write({ text: `echo ${m.text} auth ${auth}` });
        });
        call.on("end", () => {
          call.end(trailer(auth));
        });
      },
    });
    server.addService(ADMIN, {
      drop: (call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>) => {
        authorizationOf(call, ADMIN.drop.path);
        callback(null, { text: "dropped" });
      },
    });
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(
        "127.0.0.1:0",
        grpc.ServerCredentials.createSsl(null, [
          { private_key: Buffer.from(key), cert_chain: Buffer.from(cert) },
        ]),
        (err, bound) => {
          if (err) reject(err);
          else resolve(bound);
        },
      );
    });
    sidecar = await startTestSidecar({
      policies: [
        policy("agent", [
          {
            name: "echo",
            hosts: [API],
            ports: [port],
            paths: ["/airlock.test.Echo/*"],
            credential: "api-token",
          },
        ]),
      ],
      credentials: [
        credential("api-token", "api-secret", { header: { name: "Authorization", valuePrefix: "Bearer " } }),
      ],
      secrets: [secret("agents", "api-secret", { token: SECRET })],
      pins: { [API]: "127.0.0.1" },
      upstreamCa: [upstreamCa.certificatePem],
    });
    // grpc-js reads the proxy from the environment when a channel is made.
    savedProxy = process.env.grpc_proxy;
    process.env.grpc_proxy = `http://127.0.0.1:${sidecar.proxyAddress.port}`;
  });

  after(async function () {
    if (savedProxy === undefined) delete process.env.grpc_proxy;
    else process.env.grpc_proxy = savedProxy;
    await sidecar.close();
    server.forceShutdown();
  });

  /** A client of `Ctor` for API, trusting the sidecar's CA (the proxy is in the environment). */
  function client(Ctor: grpc.ServiceClientConstructor): grpc.Client {
    return new Ctor(`${API}:${port}`, grpc.credentials.createSsl(Buffer.from(sidecar.ca.certificatePem)));
  }

  it("unary: the credential goes as metadata; message, initial and trailing metadata come back scrubbed", async function () {
    seen.length = 0;
    const echo = client(EchoClient) as EchoClient;
    try {
      let initial: grpc.Metadata | undefined;
      let status: grpc.StatusObject | undefined;
      const answer = await new Promise<Message>((resolve, reject) => {
        const call = echo.unary({ text: "hello" }, new grpc.Metadata(), (err, res) => {
          if (err) reject(err);
          else resolve(res as Message);
        });
        call.on("metadata", (md: grpc.Metadata) => (initial = md));
        call.on("status", (s: grpc.StatusObject) => (status = s));
      });
      expect(answer.text).to.equal(`unary hello auth ${REDACTED}`);
      expect(initial?.get("x-echo")).to.deep.equal([REDACTED]);
      expect(initial?.get("x-airlock-decision")).to.deep.equal(["inject"]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(status?.code).to.equal(grpc.status.OK);
      expect(status?.metadata.get("x-trailer-echo")).to.deep.equal([REDACTED]);
      expect(seen).to.deep.equal([{ path: ECHO.unary.path, authorization: `Bearer ${SECRET}` }]);
    } finally {
      echo.close();
    }
  });

  it("server streaming: every message arrives, each scrubbed, then OK with scrubbed trailers", async function () {
    seen.length = 0;
    const echo = client(EchoClient) as EchoClient;
    try {
      const call = echo.serverStream({ text: "go" });
      const texts: string[] = [];
      call.on("data", (m: Message) => texts.push(m.text));
      const status = await new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      expect(status.code).to.equal(grpc.status.OK);
      expect(texts).to.deep.equal([0, 1, 2].map((i) => `part ${i} auth ${REDACTED}`));
      expect(status.metadata.get("x-trailer-echo")).to.deep.equal([REDACTED]);
      expect(seen.map((s) => s.authorization)).to.deep.equal([`Bearer ${SECRET}`]);
    } finally {
      echo.close();
    }
  });

  it("client streaming: the messages the agent sends reach the upstream in order", async function () {
    seen.length = 0;
    const echo = client(EchoClient) as EchoClient;
    try {
      const answer = await new Promise<Message>((resolve, reject) => {
        const call = echo.clientStream((err, res) => {
          if (err) reject(err);
          else resolve(res as Message);
        });
        for (const text of ["a", "b", "c"]) call.write({ text });
        call.end();
      });
      expect(answer.text).to.equal(`got a,b,c auth ${REDACTED}`);
      expect(seen.map((s) => s.authorization)).to.deep.equal([`Bearer ${SECRET}`]);
    } finally {
      echo.close();
    }
  });

  it("bidi streaming: each answer arrives before the next message is sent; an upstream error status reaches the client scrubbed", async function () {
    const echo = client(EchoClient) as EchoClient;
    try {
      const call = echo.bidi();
      const next = (): Promise<Message> =>
        new Promise((resolve) => {
          call.once("data", resolve);
        });
      for (const text of ["one", "two"]) {
        const answer = next();
        call.write({ text });
        expect((await answer).text).to.equal(`echo ${text} auth ${REDACTED}`);
      }
      const failed = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
      call.write({ text: "fail" });
      const err = await failed;
      expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(err.details).to.equal(`refused ${REDACTED}`);
    } finally {
      echo.close();
    }
  });

  it("a method no rule allows fails with PERMISSION_DENIED naming the reason; the upstream never sees it", async function () {
    seen.length = 0;
    const admin = client(AdminClient) as AdminClient;
    try {
      const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
        admin.drop({ text: "x" }, (e) => {
          if (e) resolve(e);
          else reject(new Error("the blocked call succeeded"));
        });
      });
      expect(err.code).to.equal(grpc.status.PERMISSION_DENIED);
      expect(err.details).to.match(/^airlock NoRuleMatched: /);
      expect(err.metadata.get("x-airlock-decision")).to.deep.equal(["block"]);
      expect(seen).to.deep.equal([]);
    } finally {
      admin.close();
    }
  });
});
