// The view: deterministic, filtered by tag and health, every value checked.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type {
  CatalogSnapshot,
  ConsulCheck,
  ConsulService,
} from "../../services/templater/src/core/catalog.ts";
import { aggregateStatus } from "../../services/templater/src/core/catalog.ts";
import { buildView, type ViewOptions } from "../../services/templater/src/core/view.ts";

const opts: ViewOptions = { routeTag: "http", statuses: ["passing"] };

function svc(id: string, name: string, over: Partial<ConsulService> = {}): ConsulService {
  return { ID: id, Service: name, Tags: ["http"], Address: "10.0.0.1", Port: 8080, Meta: {}, ...over };
}
function snap(services: ConsulService[], checks: ConsulCheck[] = [], node = "n1"): CatalogSnapshot {
  return { nodes: [{ node, address: "10.9.9.9", services }], checks, observedAt: 0 };
}
const check = (sid: string, status: string, node = "n1"): ConsulCheck => ({
  Node: node,
  CheckID: `c-${sid}`,
  Status: status,
  ServiceID: sid,
});

describe("health", () => {
  it("is the worst of node and service checks; no checks means passing", () => {
    assert.equal(aggregateStatus([]), "passing");
    assert.equal(aggregateStatus(["passing", "warning"]), "warning");
    assert.equal(aggregateStatus(["warning", "critical", "passing"]), "critical");
    assert.equal(aggregateStatus(["maintenance?"]), "critical");
  });

  it("keeps only passing instances by default, and a service whose instances all fail", () => {
    const b = buildView(
      snap(
        [svc("web-1", "web"), svc("web-2", "web", { Address: "10.0.0.2" }), svc("api-1", "api")],
        [check("web-2", "critical"), check("api-1", "warning")],
      ),
      opts,
    );
    assert.deepEqual(
      b.view.services.map((s) => [s.name, s.instances.map((i) => i.id)]),
      [
        ["api", []],
        ["web", ["web-1"]],
      ],
    );
    assert.deepEqual(
      b.catalog.services.find((s) => s.name === "web")!.instances.map((i) => i.status),
      ["passing", "critical"],
    );
    const withWarning = buildView(snap([svc("api-1", "api")], [check("api-1", "warning")]), {
      ...opts,
      statuses: ["passing", "warning"],
    });
    assert.equal(withWarning.view.services[0]!.instances.length, 1);
  });

  it("an instance is routed only when its node's serfHealth passes, whatever --statuses allows", () => {
    const serf = (node: string, status: string): ConsulCheck => ({
      Node: node,
      CheckID: "serfHealth",
      Status: status,
      ServiceID: "",
    });
    const two: CatalogSnapshot = {
      nodes: [
        { node: "n1", address: "10.9.9.1", services: [svc("a", "web", { Address: "10.0.0.1" })] },
        { node: "n2", address: "10.9.9.2", services: [svc("b", "web", { Address: "10.0.0.2" })] },
      ],
      checks: [serf("n1", "passing"), serf("n2", "critical")],
      observedAt: 0,
    };
    const everything: ViewOptions = { ...opts, statuses: ["passing", "warning", "critical"] };
    for (const o of [opts, everything]) {
      const b = buildView(two, o);
      assert.deepEqual(
        b.view.services[0]!.instances.map((i) => i.id),
        ["a"],
      );
      // The status page still lists the failed node's instance, as critical.
      assert.deepEqual(
        b.catalog.services[0]!.instances.map((i) => [i.id, i.status]),
        [
          ["a", "passing"],
          ["b", "critical"],
        ],
      );
    }
    // Back to passing: routed again.
    const back = buildView({ ...two, checks: [serf("n1", "passing"), serf("n2", "passing")] }, opts);
    assert.equal(back.view.services[0]!.instances.length, 2);
  });

  it("a failing node check takes every instance of that node out", () => {
    const b = buildView(snap([svc("a", "web"), svc("b", "web")], [check("", "critical")]), opts);
    assert.equal(b.view.services[0]!.instances.length, 0);
  });
});

describe("shape", () => {
  it("routes only services carrying the route tag", () => {
    const b = buildView(
      snap([svc("w", "web"), svc("db", "db", { Tags: ["tcp"] }), svc("x", "x", { Tags: null })]),
      opts,
    );
    assert.deepEqual(
      b.view.services.map((s) => s.name),
      ["web"],
    );
    assert.deepEqual(
      buildView(snap([svc("db", "db", { Tags: ["tcp"] })]), { ...opts, routeTag: "tcp" }).view.services
        .length,
      1,
    );
  });

  it("uses the node's address when the service has none", () => {
    const b = buildView(snap([svc("w", "web", { Address: "" })]), opts);
    assert.equal(b.view.services[0]!.instances[0]!.address, "10.9.9.9");
  });

  it("gives service-level tags (union) and meta (entries all instances agree on)", () => {
    const b = buildView(
      snap([
        svc("1", "web", { Tags: ["http", "v1"], Meta: { team: "a", version: "1" } }),
        svc("2", "web", { Tags: ["http", "canary"], Meta: { team: "a", version: "2" } }),
      ]),
      opts,
    );
    const web = b.view.services[0]!;
    assert.deepEqual(web.tags, ["canary", "http", "v1"]);
    assert.deepEqual(web.meta, { team: "a" });
  });

  it("is the same whatever order Consul lists things in (property)", () => {
    const services = [
      svc("web-2", "web", { Address: "10.0.0.2", Meta: { b: "2", a: "1" }, Tags: ["z", "http", "a"] }),
      svc("web-1", "web", { Address: "10.0.0.1" }),
      svc("api-1", "api", { Address: "10.0.0.3" }),
      svc("api-0", "api", { Address: "10.0.0.4" }),
    ];
    const checks = [check("web-1", "passing"), check("api-0", "critical"), check("", "passing")];
    const reference = JSON.stringify(buildView(snap(services, checks), opts));
    fc.assert(
      fc.property(
        fc.shuffledSubarray(services, { minLength: 4 }),
        fc.shuffledSubarray(checks, { minLength: 3 }),
        (s, c) => {
          assert.equal(JSON.stringify(buildView(snap(s, c), opts)), reference);
        },
      ),
    );
    const view = JSON.parse(reference).view;
    assert.deepEqual(
      view.services.map((s: { name: string }) => s.name),
      ["api", "web"],
    );
    assert.deepEqual(Object.keys(view.services[1].instances[1].meta), ["a", "b"]);
  });

  it("tells instances with the same ID on two nodes apart", () => {
    const b = buildView(
      {
        nodes: [
          { node: "n2", address: "10.0.0.2", services: [svc("w", "web", { Address: "" })] },
          { node: "n1", address: "10.0.0.1", services: [svc("w", "web", { Address: "" })] },
        ],
        checks: [],
        observedAt: 0,
      },
      opts,
    );
    assert.deepEqual(
      b.view.services[0]!.instances.map((i) => i.node),
      ["n1", "n2"],
    );
  });
});

describe("unsafe values are left out with a reason", () => {
  it("a bad service name drops the service", () => {
    const b = buildView(snap([svc("x", "web;\nserver evil"), svc("w", "web")]), opts);
    assert.deepEqual(
      b.view.services.map((s) => s.name),
      ["web"],
    );
    assert.equal(b.rejects.length, 1);
    assert.equal(b.rejects[0]!.field, "name");
    assert.match(b.rejects[0]!.reason, /letters, digits/);
  });

  it("a bad address, port or ID drops the instance", () => {
    const b = buildView(
      snap([
        svc("ok", "web"),
        svc("host", "web", { Address: "evil.example.com" }),
        svc("port", "web", { Port: 0 }),
        svc("id;x", "web"),
      ]),
      opts,
    );
    assert.deepEqual(
      b.view.services[0]!.instances.map((i) => i.id),
      ["ok"],
    );
    assert.deepEqual(b.rejects.map((r) => r.field).sort(), ["address", "id", "port"]);
    assert.ok(b.rejects.every((r) => /instance left out/.test(r.reason)));
  });

  it("a bad tag or meta value drops only that entry; quotable ones are quoted", () => {
    const b = buildView(
      snap([
        svc("w", "web", {
          Tags: ["http", "ok", "two words", "new\nline", "$var"],
          Meta: { a: "fine", b: "x;y", c: "${bad}", "d e": "v" },
        }),
      ]),
      opts,
    );
    const i = b.view.services[0]!.instances[0]!;
    assert.deepEqual(i.tags, ['"two words"', "http", "ok"]);
    assert.deepEqual(i.meta, { a: "fine", b: '"x;y"' });
    assert.equal(b.rejects.length, 4);
  });

  it("never throws on garbage shaped like Consul data (property)", () => {
    const junk = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.constant(null),
      fc.constant(undefined),
      fc.array(fc.string()),
      fc.dictionary(fc.string(), fc.string()),
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            ID: junk,
            Service: junk,
            Tags: fc.oneof(junk, fc.constant(["http"])),
            Address: junk,
            Port: junk,
            Meta: junk,
          }),
          { maxLength: 8 },
        ),
        (services) => {
          buildView(snap(services as never), opts);
        },
      ),
    );
  });
});

describe("services scaled to zero", () => {
  it("a retained service with no instance left stays in the view, empty, so it answers 503", () => {
    const b = buildView(snap([svc("api-1", "api")]), { ...opts, retain: ["web", "api"] });
    assert.deepEqual(
      b.view.services.map((s) => [s.name, s.instances.length]),
      [
        ["api", 1],
        ["web", 0],
      ],
    );
  });
});

describe("instances that are not routed", () => {
  it("do not change the view: a critical registration with other tags and meta leaves it byte-identical", () => {
    const before = buildView(snap([svc("web-1", "web", { Meta: { v: "1" } })]), opts);
    const after = buildView(
      snap(
        [
          svc("web-1", "web", { Meta: { v: "1" } }),
          svc("web-2", "web", { Tags: ["http", "canary"], Meta: { v: "2" } }),
        ],
        [check("web-2", "critical")],
      ),
      opts,
    );
    assert.equal(JSON.stringify(after.view), JSON.stringify(before.view));
    assert.deepEqual(after.catalog.services[0]!.tags, ["canary", "http"], "the status page still sees it");
  });
});
