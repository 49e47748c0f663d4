import { expect } from "chai";
import { OperatorUsageError, parseOperatorFlags } from "./flags.ts";

const parse = (argv: string[], env: Record<string, string> = {}) =>
  parseOperatorFlags(argv, env, "node-1", "1.2.3");

describe("operator flags", function () {
  it("defaults: in-pod identity from env, image from the version, webhook on 9443", function () {
    const flags = parse([], { POD_NAMESPACE: "airlock", POD_NAME: "op-0" });
    expect(flags).to.deep.include({
      leaseNamespace: "airlock",
      identity: "op-0",
      image: "airlock:1.2.3",
      webhook: { host: "0.0.0.0", port: 9443 },
      metrics: { host: "0.0.0.0", port: 15090 },
      resyncMs: 30_000,
      leaseSeconds: 15,
      signingKeyPath: undefined,
      controlPort: undefined,
      webhookConfigurations: "create",
    });
    expect(parse(["--webhook-configurations", "patch"]).webhookConfigurations).to.equal("patch");
  });

  it("--sidecar-allow-address: repeatable CIDRs, none by default", function () {
    expect(parse([]).sidecarAllowAddresses).to.deep.equal([]);
    const flags = parse(["--sidecar-allow-address", "10.244.0.7/32", "--sidecar-allow-address", "fd00::/8"]);
    expect(flags.sidecarAllowAddresses).to.deep.equal(["10.244.0.7/32", "fd00::/8"]);
  });

  it("outside a pod: airlock-system and the host name; AIRLOCK_IMAGE and --image", function () {
    expect(parse([])).to.deep.include({ leaseNamespace: "airlock-system", identity: "node-1" });
    expect(parse([], { AIRLOCK_IMAGE: "reg/airlock:9" }).image).to.equal("reg/airlock:9");
    expect(parse(["--image", "x:1"], { AIRLOCK_IMAGE: "reg/airlock:9" }).image).to.equal("x:1");
  });

  const refused: { name: string; argv: string[]; message: RegExp }[] = [
    { name: "unknown flag", argv: ["--bogus"], message: /bogus/ },
    { name: "resync not a number", argv: ["--resync", "x"], message: /--resync/ },
    { name: "lease too short", argv: ["--lease-seconds", "2"], message: /--lease-seconds/ },
    { name: "control port out of range", argv: ["--control-port", "70000"], message: /--control-port/ },
    { name: "webhook URL not https", argv: ["--webhook-url", "http://x:1"], message: /--webhook-url/ },
    { name: "bad listen address", argv: ["--webhook", "nowhere"], message: /--webhook nowhere/ },
    {
      name: "unknown pull policy",
      argv: ["--image-pull-policy", "Sometimes"],
      message: /--image-pull-policy/,
    },
    { name: "empty image", argv: ["--image", " "], message: /--image/ },
    {
      name: "unknown webhook-configurations mode",
      argv: ["--webhook-configurations", "adopt"],
      message: /--webhook-configurations/,
    },
    {
      name: "a sidecar address range that is not a CIDR",
      argv: ["--sidecar-allow-address", "10.0.0.0/33"],
      message: /--sidecar-allow-address 10\.0\.0\.0\/33/,
    },
  ];
  for (const c of refused)
    it(`refuses: ${c.name}`, function () {
      expect(() => parse(c.argv))
        .to.throw(OperatorUsageError)
        .with.property("message")
        .that.matches(c.message);
    });
});
