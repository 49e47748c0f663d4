import { expect } from "chai";
import { compile } from "./compile.ts";
import { load } from "./load.ts";
import { nameReachable } from "./reachable.ts";

describe("nameReachable", function () {
  const compiled = compile({
    policies: [
      {
        apiVersion: "airlock.dev/v1alpha1",
        kind: "EgressPolicy",
        metadata: { name: "p", namespace: "ns" },
        spec: {
          podSelector: {},
          egress: [
            { name: "exact", hosts: ["api.example.com"], ports: [8443] },
            { name: "wild", hosts: ["*.pkg.example.org"] },
          ],
        },
      },
    ],
    credentials: [],
  });
  if (!compiled.ok) throw new Error("fixture must compile");
  const loaded = load(compiled.value);
  if (!loaded.ok) throw new Error("fixture must load");
  const index = loaded.value;
  const table = [
    { name: "exact host, whatever the port", host: "api.example.com", want: true },
    { name: "case and trailing dot", host: "API.Example.com.", want: true },
    { name: "under a wildcard, any depth", host: "a.b.pkg.example.org", want: true },
    { name: "wildcard apex", host: "pkg.example.org", want: false },
    { name: "sibling of an exact host", host: "www.example.com", want: false },
    { name: "exfiltration-shaped name", host: "c2VjcmV0.evil.example", want: false },
    { name: "IP literal", host: "127.0.0.1", want: false },
    { name: "invalid name", host: "bad_name..x", want: false },
  ];
  for (const row of table) {
    it(row.name, function () {
      expect(nameReachable(index, row.host)).to.equal(row.want);
    });
  }
  it("nothing is reachable before a policy is loaded", function () {
    expect(nameReachable(null, "api.example.com")).to.equal(false);
  });
});
