// The manager's decisions, with an in-memory applier and template store (no Consul, no nginx).
// The applier here is a stand-in: what counts as "unchanged" on disk is the transaction's rule,
// tested with the real config store in templater-transaction.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Applier, ApplyOutcome } from "../../services/templater/src/apply/transaction.ts";
import type { CatalogSnapshot, ConsulService } from "../../services/templater/src/core/catalog.ts";
import type { Generation } from "../../services/templater/src/core/render.ts";
import { buildStatus, renderStatusHtml } from "../../services/templater/src/core/status.ts";
import { Manager } from "../../services/templater/src/manager.ts";
import { createMetrics } from "../../services/templater/src/metrics.ts";
import { createLogger } from "../../lib/log.ts";

class MemoryApplier implements Applier {
  liveId: string | null = null;
  applied: Generation[] = [];
  calls = 0;
  /** Every generation id the manager handed over, in order. */
  ids: string[] = [];
  failNext: ApplyOutcome | undefined;
  async apply(g: Generation): Promise<ApplyOutcome> {
    this.calls++;
    this.ids.push(g.id);
    if (this.failNext) {
      const f = this.failNext;
      this.failNext = undefined;
      return f;
    }
    if (g.id === this.liveId) return { result: "unchanged" };
    this.liveId = g.id;
    this.applied.push(g);
    return { result: "applied", validateMs: 1, reloadMs: 1 };
  }
}

const upstreams =
  "{{#each services}}upstream {{upstream this}} {\n{{#each instances}}  {{server this}}\n{{/each}}\n}\n{{/each}}";

function setup(texts: Record<string, string> = { "/t/main.hbs": upstreams }) {
  const files = new Map(Object.entries(texts));
  const applier = new MemoryApplier();
  const metrics = createMetrics();
  const lines: Record<string, unknown>[] = [];
  const manager = new Manager({
    templates: [...files.keys()].map((source, i) => ({ source, dest: `f${i}.conf` })),
    readTemplate: async (f) => {
      const t = files.get(f);
      if (t === undefined) throw new Error(`ENOENT: ${f}`);
      return t;
    },
    applier,
    viewOptions: { routeTag: "http", statuses: ["passing"] },
    edge: { listenPort: 8080, opsPort: 9102, hostDomain: "localhost", routeTag: "http" },
    wait: { minMs: 0, maxMs: 0 },
    metrics,
    log: createLogger({ service: "test", level: "debug", write: (l) => lines.push(JSON.parse(l)) }),
  });
  return { files, applier, metrics, manager, lines };
}

const svc = (id: string, address: string, over: Partial<ConsulService> = {}): ConsulService => ({
  ID: id,
  Service: "web",
  Tags: ["http"],
  Address: address,
  Port: 80,
  Meta: {},
  ...over,
});
const snap = (...services: ConsulService[]): CatalogSnapshot => ({
  nodes: [{ node: "n1", address: "10.0.0.254", services }],
  checks: [],
  observedAt: Date.now(),
});
const metric = async (
  m: ReturnType<typeof createMetrics>,
  name: string,
  labels: Record<string, string> = {},
) => {
  const v = (await m.registry.getSingleMetric(name)!.get()).values.find((x) =>
    Object.entries(labels).every(([k, l]) => (x.labels as Record<string, string>)[k] === l),
  );
  return v?.value ?? 0;
};

describe("manager", () => {
  it("renders the first snapshot at once and applies it", async () => {
    const { manager, applier } = setup();
    assert.equal(await manager.loadTemplates(), true);
    manager.onSnapshot(snap(svc("a", "10.0.0.1")));
    await manager.idle();
    assert.equal(applier.applied.length, 1);
    assert.equal(applier.applied[0]!.files[0]!.content, "upstream svc_web {\n  server 10.0.0.1:80;\n}\n");
  });

  it("an equal catalog renders nothing; an equal output is handed over under the same id and counted as unchanged", async () => {
    const { manager, applier, metrics } = setup();
    await manager.loadTemplates();
    manager.onSnapshot(snap(svc("a", "10.0.0.1")));
    await manager.idle();
    manager.onSnapshot(snap(svc("a", "10.0.0.1")));
    await manager.idle();
    assert.equal(applier.calls, 1, "same view: no render at all");
    manager.onSnapshot(snap(svc("a", "10.0.0.1", { Meta: { unused: "x" } })));
    await manager.idle();
    assert.equal(applier.calls, 2);
    assert.equal(applier.ids[1], applier.ids[0], "same output, same generation id");
    assert.equal(await metric(metrics, "templater_renders_total", { result: "unchanged" }), 1);
  });

  it("a template that stops compiling keeps its last good version in use, and recovers", async () => {
    const { manager, applier, files, lines, metrics } = setup();
    await manager.loadTemplates();
    manager.onSnapshot(snap(svc("a", "10.0.0.1")));
    await manager.idle();
    files.set("/t/main.hbs", "ok\n{{#each services}\n");
    assert.equal(await manager.loadTemplates(), false);
    const err = lines.find((l) => l.msg === "template does not compile; its last good version stays in use")!;
    assert.equal(err.file, "/t/main.hbs");
    assert.equal(err.line, 2);
    assert.equal(await metric(metrics, "templater_template_errors"), 1);
    manager.onSnapshot(snap(svc("a", "10.0.0.1"), svc("b", "10.0.0.2")));
    await manager.idle();
    assert.match(applier.applied.at(-1)!.files[0]!.content, /10\.0\.0\.2/, "Consul changes still flow");
    files.set("/t/main.hbs", "fixed {{#each services}}{{name}}{{/each}}\n");
    await manager.loadTemplates();
    await manager.idle();
    assert.equal(applier.applied.at(-1)!.files[0]!.content, "fixed web\n");
    assert.equal(await metric(metrics, "templater_template_errors"), 0);
  });

  it("a render error or a failed apply leaves the live config, is counted, and the next change retries", async () => {
    const { manager, applier, metrics, files } = setup({
      "/t/main.hbs": upstreams,
      "/t/extra.hbs": "{{#each services}}{{server this}}{{/each}}",
    });
    await manager.loadTemplates();
    manager.onSnapshot(snap(svc("a", "10.0.0.1")));
    await manager.idle();
    assert.equal(manager.lastOutcome.result, "render-failed");
    assert.equal(applier.calls, 0);
    assert.equal(await metric(metrics, "templater_renders_total", { result: "failed" }), 1);
    assert.match(manager.state().lastError!.message, /extra\.hbs:1: server: expects an instance/);

    files.set("/t/extra.hbs", "ok\n");
    await manager.loadTemplates();
    await manager.idle();
    assert.equal(applier.applied.length, 1);
    applier.failNext = { result: "failed", stage: "validate", message: "nginx -t: no" };
    manager.onSnapshot(snap(svc("a", "10.0.0.1"), svc("b", "10.0.0.2")));
    await manager.idle();
    assert.equal(applier.applied.length, 1);
    assert.equal(manager.state().lastError!.stage, "validate");
    manager.onSnapshot(snap(svc("a", "10.0.0.1"), svc("b", "10.0.0.2"), svc("c", "10.0.0.3")));
    await manager.idle();
    assert.equal(applier.applied.length, 2);
    assert.equal(manager.state().lastError, null);
  });

  it("logs each unsafe value once while it lasts", async () => {
    const { manager, lines } = setup();
    await manager.loadTemplates();
    const bad = svc("x", "not-an-ip");
    manager.onSnapshot(snap(svc("a", "10.0.0.1"), bad));
    manager.onSnapshot(snap(svc("a", "10.0.0.2"), bad));
    await manager.idle();
    const logged = () =>
      lines.filter((l) => l.msg === "value from Consul left out: not safe in nginx config");
    assert.equal(logged().length, 1);
    assert.equal(logged()[0]!.field, "address");
    manager.onSnapshot(snap(svc("a", "10.0.0.2")));
    manager.onSnapshot(snap(svc("a", "10.0.0.2"), bad));
    await manager.idle();
    assert.equal(logged().length, 2, "logged again after it went away and came back");
  });

  it("feeds the status page: instances of every health, and what nginx uses now", async () => {
    const { manager } = setup();
    await manager.loadTemplates();
    manager.onSnapshot({
      ...snap(svc("a", "10.0.0.1"), svc("b", "10.0.0.2")),
      checks: [{ Node: "n1", CheckID: "x", Status: "critical", ServiceID: "b" }],
    });
    await manager.idle();
    const status = buildStatus({
      ...manager.state(),
      mode: "exec",
      consul: { address: "http://consul:8500", up: true },
      nginx: { running: true },
      hostDomain: "localhost",
    });
    assert.deepEqual(status.services, [
      {
        name: "web",
        routes: { path: "/web/", host: "web.localhost" },
        upstream: ["10.0.0.1:80"],
        instances: [
          { id: "a", node: "n1", endpoint: "10.0.0.1:80", status: "passing", live: true },
          { id: "b", node: "n1", endpoint: "10.0.0.2:80", status: "critical", live: false },
        ],
      },
    ]);
    const html = renderStatusHtml({
      ...status,
      dropped: [{ key: "k", service: "<script>x", field: "name", value: '"<b>"', reason: "bad" }],
    });
    assert.match(html, /<h2>web<\/h2>/);
    // the page's own refresh script is the only <script>; the hostile name is escaped
    assert.ok(!html.includes("<script>x") && html.includes("&lt;script&gt;x"));
    assert.equal(html.split("<script>").length, 2);
  });
});
