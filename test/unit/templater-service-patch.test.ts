// The fast path's core: one service rebuilt alone (core/view.ts patchService) must equal a whole
// build of the catalog with that service replaced, and core/catalog.ts's withServiceAnswers must
// give that catalog. Property-checked over random catalogs, hostile values included.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  serviceSlice,
  withServiceAnswers,
  type CatalogNode,
  type ConsulCheck,
  type ConsulService,
} from "../../services/templater/src/core/catalog.ts";
import { buildView, patchService, type ViewOptions } from "../../services/templater/src/core/view.ts";

const nodeNames = ["n1", "n2", "n3"];
const names = ["web", "api", "web.v2", "bad name"];
const status = fc.constantFrom("passing", "warning", "critical", "bogus");

const instance = (name: string, k: number) =>
  fc.record({
    node: fc.constantFrom(...nodeNames),
    service: fc.record({
      ID: fc.constant(`${name}-${k}`),
      Service: fc.constant(name),
      Tags: fc.constantFrom<string[]>(["http"], ["http", "x"], [], ["http", "a;b"]),
      Address: fc.constantFrom<string>("10.0.0.1", "10.0.0.2", "", "nope", "fd00::1"),
      Port: fc.constantFrom<number>(80, 8080, 0, 70000),
      Meta: fc.constantFrom<Record<string, string> | null>(
        null,
        {},
        { weight: "3" },
        { weight: "0" },
        { v: "1" },
      ),
    }),
    checks: fc.array(status, { maxLength: 2 }),
  });

/** `name`'s instances (k distinct IDs), each on a node, with its service checks. */
const instancesOf = (name: string) =>
  fc
    .integer({ min: 0, max: 4 })
    .chain((n) => fc.tuple(...Array.from({ length: n }, (_, k) => instance(name, k))));

const catalog = fc
  .record({
    serf: fc.tuple(status, status, status),
    services: fc.tuple(...names.map(instancesOf)),
  })
  .map(({ serf, services }) => build(serf, services.flat()));

type Inst = { node: string; service: ConsulService; checks: string[] };

function build(serf: readonly string[], instances: readonly Inst[]) {
  const nodes: CatalogNode[] = nodeNames.map((n, i) => ({
    node: n,
    address: `10.9.9.${i + 1}`,
    services: instances.filter((x) => x.node === n).map((x) => x.service),
  }));
  const checks: ConsulCheck[] = [
    ...nodeNames.map((n, i) => ({ Node: n, CheckID: "serfHealth", Status: serf[i]!, ServiceID: "" })),
    ...instances.flatMap((x) =>
      x.checks.map((st, j) => ({ Node: x.node, CheckID: `c${j}`, Status: st, ServiceID: x.service.ID })),
    ),
  ];
  return { nodes, checks, serf, instances };
}

/** `before` with every instance of `name` replaced by `fresh`'s instances of it; node health kept. */
function replaced(before: ReturnType<typeof build>, fresh: ReturnType<typeof build>, name: string) {
  return build(before.serf, [
    ...before.instances.filter((x) => x.service.Service !== name),
    ...fresh.instances.filter((x) => x.service.Service === name),
  ]);
}

const options = (retain: boolean, name: string): ViewOptions => ({
  routeTag: "http",
  statuses: ["passing", "warning"],
  retain: retain ? [name] : [],
});

describe("patchService", () => {
  it("equals a whole build of the catalog with that service replaced", () => {
    fc.assert(
      fc.property(catalog, catalog, fc.constantFrom(...names), fc.boolean(), (a, b, name, retain) => {
        const after = replaced(a, b, name);
        const opts = options(retain, name);
        const whole = buildView({ nodes: after.nodes, checks: after.checks, observedAt: 0 }, opts);
        const patched = patchService(
          buildView({ nodes: a.nodes, checks: a.checks, observedAt: 0 }, opts),
          name,
          serviceSlice(after.nodes, after.checks, name),
          opts,
        );
        // "bad name" is never watched (its instances are all rejects), but the equality still holds.
        assert.deepEqual(patched, whole);
      }),
      { numRuns: 400 },
    );
  });

  it("refuses a slice that shows a node's health other than the view does", () => {
    const a = build(["passing", "passing", "passing"], []);
    const down = build(
      ["critical", "passing", "passing"],
      [
        {
          node: "n1",
          service: { ID: "web-0", Service: "web", Tags: ["http"], Address: "10.0.0.1", Port: 80, Meta: null },
          checks: [],
        },
      ],
    );
    const opts = options(false, "web");
    const built = buildView({ nodes: a.nodes, checks: a.checks, observedAt: 0 }, opts);
    assert.equal(patchService(built, "web", serviceSlice(down.nodes, down.checks, "web"), opts), undefined);
    const up = build(["passing", "passing", "passing"], down.instances);
    const ok = patchService(built, "web", serviceSlice(up.nodes, up.checks, "web"), opts);
    assert.deepEqual(
      ok?.view.services.map((s) => [s.name, s.instances.map((i) => i.id)]),
      [["web", ["web-0"]]],
    );
  });
});

describe("withServiceAnswers", () => {
  it("gives the catalog with each answered service replaced", () => {
    fc.assert(
      fc.property(catalog, catalog, fc.subarray(names, { minLength: 1 }), (a, b, answered) => {
        let after = a;
        for (const name of answered) after = replaced(after, b, name);
        const answers = answered.map((name, i) => ({
          name,
          index: 100 + i,
          ...serviceSlice(after.nodes, after.checks, name),
        }));
        const merged = withServiceAnswers(a.nodes, a.checks, answers);
        const opts = options(false, "");
        assert.deepEqual(
          buildView({ ...merged, observedAt: 0 }, opts),
          buildView({ nodes: after.nodes, checks: after.checks, observedAt: 0 }, opts),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("takes an answer's instances but not its checks when the snapshot's checks are newer", () => {
    const web = { ID: "web-1", Service: "web", Tags: ["http"], Address: "10.0.0.1", Port: 80, Meta: null };
    const web2 = { ...web, ID: "web-2", Address: "10.0.0.2" };
    const node = (services: ConsulService[]) => [{ node: "n1", address: "10.9.9.1", services }];
    const serf = { Node: "n1", CheckID: "serfHealth", Status: "passing", ServiceID: "" };
    // The checks (index 20) say web-1 failed; the answer (index 15) still has it passing, and web-2.
    const checks = [serf, { Node: "n1", CheckID: "c", Status: "critical", ServiceID: "web-1" }];
    const answer = {
      name: "web",
      index: 15,
      nodes: node([web, web2]),
      checks: [serf, { Node: "n1", CheckID: "c", Status: "passing", ServiceID: "web-1" }],
    };
    const routed = (checksIndex: number) =>
      buildView(
        { ...withServiceAnswers(node([web]), checks, [answer], checksIndex), observedAt: 0 },
        options(false, ""),
      ).view.services[0]?.instances.map((i) => i.id);
    assert.deepEqual(routed(20), ["web-2"], "an older answer took web-1's health back in time");
    assert.deepEqual(routed(10), ["web-1", "web-2"], "a newer answer's checks were not used");
  });

  it("adds a node the snapshot does not know, with its node checks", () => {
    const answer = {
      name: "web",
      index: 7,
      nodes: [
        {
          node: "n9",
          address: "10.9.9.9",
          services: [{ ID: "w", Service: "web", Tags: ["http"], Address: "10.0.0.9", Port: 80, Meta: null }],
        },
      ],
      checks: [{ Node: "n9", CheckID: "serfHealth", Status: "critical", ServiceID: "" }],
    };
    const merged = withServiceAnswers([], [], [answer]);
    const v = buildView({ ...merged, observedAt: 0 }, options(false, ""));
    assert.deepEqual(v.nodesDown, ["n9"]);
    assert.equal(v.view.services[0]?.instances.length, 0, "an instance on a node that is down was routed");
  });
});
