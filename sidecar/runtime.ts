// Assembles one sidecar from options: the gate and its services, the explicit proxy, the admin
// listener. `airlock run`, `airlock demo` and the tests all start sidecars through here.
import type { KeyObject } from "node:crypto";
import { http } from "./process/http.ts";
import https from "node:https";
import type net from "node:net";
import { isIP, type AddressInfo } from "node:net";
import type { Logger } from "pino";
import { createAddressPolicy, type Cidr } from "./net/address.ts";
import { createAdminServer } from "./process/admin-server.ts";
import type { ListenAddress } from "./process/listen.ts";
import { createSidecarMetrics, type SidecarMetrics } from "./observe/metrics.ts";
import { Boundary } from "./proxy/boundary.ts";
import { Gate } from "./proxy/gate.ts";
import { Resolver, type LookupFn } from "./proxy/resolve.ts";
import { createControlServer } from "./control/server.ts";
import { startDnsResponder, type DnsResponder } from "./dns/responder.ts";
import { createUpstreamResolve } from "./dns/upstream.ts";
import type { ResolveFn } from "./dns/answer.ts";
import type { SecretSource } from "./proxy/secrets.ts";
import { CertificateAuthority } from "./tls/ca.ts";

/** Everything a sidecar needs to start. */
export interface SidecarOptions {
  listen: ListenAddress;
  metrics: ListenAddress;
  /** The transparent listener (capture target); none when absent. */
  transparent?: ListenAddress;
  /**
   * The DNS responder (UDP and TCP; capture target for port 53); none when absent. At 127.0.0.1 it
   * also serves [::1] on the same port, where ip6tables redirects the agent's IPv6 DNS (skipped,
   * with a warning, where the namespace has no IPv6).
   */
  dns?: ListenAddress;
  /** The control port and the operator's Ed25519 public key(s, during a rotation); none when absent. */
  control?: { listen: ListenAddress; publicKey: KeyObject | readonly KeyObject[] };
  secrets: SecretSource;
  log: Logger;
  allowAddresses?: Cidr[];
  pins?: Map<string, string[]>;
  lookup?: LookupFn;
  upstreamCa?: string[];
  processMetrics?: boolean;
  /** How long an upstream may take to connect, answer, or send the next body bytes; default 30 s. */
  upstreamTimeoutMs?: number;
}

/** A started sidecar. */
export interface RunningSidecar {
  gate: Gate;
  boundary: Boundary;
  metrics: SidecarMetrics;
  ca: CertificateAuthority;
  /** Where the explicit proxy and the admin listener actually listen (port 0 resolved). */
  proxyAddress: ListenAddress;
  metricsAddress: ListenAddress;
  transparentAddress?: ListenAddress;
  dnsAddress?: ListenAddress;
  controlAddress?: ListenAddress;
  /** Identifies this process to the operator (bundles are signed for it). */
  bootId?: string;
  close(): Promise<void>;
}

function listen(server: net.Server, at: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => {
      server.off("error", reject);
      const address = server.address() as AddressInfo;
      resolve({ host: at.host, port: address.port });
    });
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    if (server instanceof http.Server || server instanceof https.Server) server.closeAllConnections();
  });
}

/** The gate of one sidecar; `self` holds its own listeners (host:port, or *:port), never dialled. */
function createGate(
  options: SidecarOptions,
  shared: {
    metrics: SidecarMetrics;
    ca: CertificateAuthority;
    addressPolicy: ReturnType<typeof createAddressPolicy>;
    self: Set<string>;
  },
): Gate {
  const { self } = shared;
  return new Gate({
    secrets: options.secrets,
    resolver: new Resolver({
      addressPolicy: shared.addressPolicy,
      ...(options.pins ? { pins: options.pins } : {}),
      ...(options.lookup ? { lookup: options.lookup } : {}),
    }),
    ca: shared.ca,
    metrics: shared.metrics,
    log: options.log,
    upstreamCa: options.upstreamCa ?? [],
    isSelf: (address, port) => self.has(`${address}:${port}`) || self.has(`*:${port}`),
  });
}

/** Starts a sidecar with no policy applied (everything blocks with NoPolicyLoaded until one is). */
export async function startSidecar(options: SidecarOptions): Promise<RunningSidecar> {
  const metrics = createSidecarMetrics({ defaults: options.processMetrics === true });
  const ca = new CertificateAuthority();
  const self = new Set<string>();
  const addressPolicy = createAddressPolicy(options.allowAddresses ?? []);
  const gate = createGate(options, { metrics, ca, addressPolicy, self });
  const boundary = new Boundary(
    gate,
    options.upstreamTimeoutMs === undefined ? {} : { upstreamTimeoutMs: options.upstreamTimeoutMs },
  );
  const explicit = boundary.createExplicitServer();
  const admin = createAdminServer(metrics.registry, () => gate.ready);
  const transparent = options.transparent ? boundary.createTransparentServer() : undefined;
  const started: net.Server[] = [];
  const start = async (server: net.Server, at: ListenAddress): Promise<ListenAddress> => {
    try {
      const address = await listen(server, at);
      started.push(server);
      return address;
    } catch (err) {
      await Promise.all(started.map(close));
      throw err;
    }
  };
  const proxyAddress = await start(explicit, options.listen);
  const metricsAddress = await start(admin, options.metrics);
  const transparentAddress =
    transparent && options.transparent ? await start(transparent, options.transparent) : undefined;
  const control = options.control
    ? createControlServer({ gate, ca, publicKey: options.control.publicKey, log: options.log })
    : undefined;
  const controlAddress =
    control && options.control ? await start(control.server, options.control.listen) : undefined;
  let dns: DnsResponder | undefined;
  if (options.dns) {
    try {
      dns = await startDnsResponder({
        ...options.dns,
        ...(options.dns.host === "127.0.0.1" ? { extraHosts: ["::1"] } : {}),
        isAllowedName: (name) => gate.nameReachable(name),
        resolve: pinnedFirst(options.pins ?? new Map<string, string[]>(), createUpstreamResolve()),
        addressPolicy,
        metrics,
        log: options.log,
      });
    } catch (err) {
      await Promise.all(started.map(close));
      throw err;
    }
  }
  const dnsAddress = dns && options.dns ? { host: options.dns.host, port: dns.udpPort } : undefined;
  for (const at of [proxyAddress, metricsAddress, ...(transparentAddress ? [transparentAddress] : [])]) {
    const unspecified = at.host === "0.0.0.0" || at.host === "::";
    self.add(unspecified ? `*:${at.port}` : `${at.host}:${at.port}`);
  }
  return {
    gate,
    boundary,
    metrics,
    ca,
    proxyAddress,
    metricsAddress,
    ...(transparentAddress ? { transparentAddress } : {}),
    ...(dnsAddress ? { dnsAddress } : {}),
    ...(controlAddress && control ? { controlAddress, bootId: control.bootId } : {}),
    close: async () => {
      boundary.close();
      await Promise.all([...started.map(close), dns?.close()]);
      boundary.upstreams.destroy();
    },
  };
}

/** Answers pinned names (`--resolve`) from the pins, the rest from `fallback`. */
function pinnedFirst(pins: Map<string, string[]>, fallback: ResolveFn): ResolveFn {
  return (name, type) => {
    const pinned = pins.get(name.toLowerCase().replace(/\.$/, ""));
    if (!pinned) return fallback(name, type);
    const family = type === "A" ? 4 : 6;
    return Promise.resolve({ addresses: pinned.filter((ip) => isIP(ip) === family) });
  };
}
