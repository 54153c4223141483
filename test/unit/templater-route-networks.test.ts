// core/route-networks.ts: addresses naming the edge's own host or its neighbours are never
// routed; --route-networks narrows what is.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseNetworks, routeNetworks } from "../../services/templater/src/core/route-networks.ts";
import { buildView } from "../../services/templater/src/core/view.ts";

describe("route networks", () => {
  it("refuses loopback, link-local, unspecified and multicast by default, IPv4 and IPv6", () => {
    const n = routeNetworks([]);
    for (const a of [
      "127.0.0.1",
      "127.9.9.9",
      "169.254.169.254",
      "0.0.0.0",
      "0.1.2.3",
      "224.0.0.1",
      "239.1.1.1",
      "::1",
      "fe80::1",
      "::",
      "ff02::1",
      "::ffff:127.0.0.1",
      "::ffff:169.254.169.254",
    ]) {
      assert.ok(n.refuse(a), `${a} should be refused`);
    }
    for (const a of ["172.18.0.5", "10.0.0.1", "192.168.1.2", "8.8.8.8", "fd00::5", "2001:db8::1"]) {
      assert.equal(n.refuse(a), null, a);
    }
    assert.match(n.refuse("169.254.169.254")!, /link-local/);
  });

  it("an allow-list narrows further and never widens", () => {
    const n = routeNetworks(parseNetworks("172.16.0.0/12, fd00::/8"));
    assert.equal(n.refuse("172.18.0.5"), null);
    assert.equal(n.refuse("fd00::5"), null);
    assert.match(n.refuse("10.0.0.1")!, /outside --route-networks \(172\.16\.0\.0\/12,fd00::\/8\)/);
    assert.match(routeNetworks(parseNetworks("127.0.0.0/8")).refuse("127.0.0.1")!, /loopback/);
  });

  it("parses CIDR lists and names a bad entry", () => {
    assert.deepEqual(parseNetworks(""), []);
    for (const bad of ["10.0.0.0", "10.0.0.0/33", "nope/8", "10.0.0.0/8/1", "::/129"]) {
      assert.throws(() => parseNetworks(bad), new RegExp(bad.replace(/[./]/g, "\\$&")));
    }
  });

  it("the view leaves refused instances out, each with its reason", () => {
    const svc = (id: string, Address: string) => ({
      ID: id,
      Service: "ssrf",
      Tags: ["http"],
      Address,
      Port: 80,
      Meta: {},
    });
    const b = buildView(
      {
        nodes: [
          {
            node: "n1",
            address: "10.9.9.9",
            services: [svc("a", "127.0.0.1"), svc("b", "169.254.169.254"), svc("c", "10.0.0.3")],
          },
        ],
        checks: [],
        observedAt: 0,
      },
      { routeTag: "http", statuses: ["passing"], networks: routeNetworks([]) },
    );
    assert.deepEqual(
      b.view.services[0]!.instances.map((i) => i.address),
      ["10.0.0.3"],
    );
    assert.deepEqual(
      b.rejects.map((r) => [r.instance, r.field]),
      [
        ['"a"', "address"],
        ['"b"', "address"],
      ],
    );
  });
});
