// Render + validate + apply for 1,000 services × 10 instances.
//   node bench/templater-render.ts
// 1. In process: building the view and rendering the default templates (goal: render ≤ 50 ms).
// 2. The real edge image against Consul holding that catalog: for single-instance changes, the
//    templater's own timings of render, nginx -t, reload (SIGHUP until no old worker accepts
//    connections) and the whole apply, from its "config applied" log lines.

import { readFileSync } from "node:fs";
import path from "node:path";
import type { CatalogSnapshot, ConsulService } from "../services/templater/src/core/catalog.ts";
import {
  compileTemplate,
  generationPlaceholder,
  renderAll,
  seal,
} from "../services/templater/src/core/render.ts";
import { buildView } from "../services/templater/src/core/view.ts";
import {
  appliedLines,
  bigCatalog,
  registerInBulk,
  runBench,
  sleep,
  startBench,
  summary,
} from "./templater-harness.ts";

const SERVICES = 1000;
const PER_SERVICE = 10;

function inProcess(): void {
  const catalog = bigCatalog(SERVICES, PER_SERVICE);
  const byNode = new Map<string, ConsulService[]>();
  for (const i of catalog) {
    const list = byNode.get(i.node) ?? [];
    list.push({
      ID: i.id,
      Service: i.service,
      Tags: ["http"],
      Address: i.address,
      Port: i.port,
      Meta: { version: "1" },
    });
    byNode.set(i.node, list);
  }
  const snapshot: CatalogSnapshot = {
    nodes: [...byNode].map(([node, services]) => ({ node, address: "10.255.0.1", services })),
    checks: [...byNode.keys()].map((n) => ({
      Node: n,
      CheckID: "serfHealth",
      Status: "passing",
      ServiceID: "",
    })),
    observedAt: 0,
  };
  const dir = path.resolve(import.meta.dirname, "..", "deploy", "nginx", "templates");
  const templates = [
    ["nginx.conf.hbs", "nginx.conf"],
    ["services.conf.hbs", "services.conf"],
  ].map(([src, dest]) =>
    compileTemplate(
      { source: path.join(dir, src!), dest: dest! },
      readFileSync(path.join(dir, src!), "utf8"),
    ),
  );
  const edge = { listenPort: 8080, opsPort: 9102, hostDomain: "localhost", routeTag: "http" };

  const viewMs: number[] = [];
  const renderMs: number[] = [];
  let size = 0;
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    const built = buildView(snapshot, { routeTag: "http", statuses: ["passing"] });
    const t1 = performance.now();
    const files = seal(
      renderAll(templates, { services: built.view.services, edge, generation: generationPlaceholder }),
    ).files;
    const t2 = performance.now();
    if (i >= 5) {
      viewMs.push(t1 - t0);
      renderMs.push(t2 - t1);
    }
    size = files.reduce((n, f) => n + f.content.length, 0);
  }
  console.log(
    `in process, ${SERVICES} services × ${PER_SERVICE} instances (${(size / 1e6).toFixed(2)} MB of config):`,
  );
  console.log(`  build the view (checks every value): ${summary(viewMs)}`);
  console.log(`  render + seal (default templates):   ${summary(renderMs)}   goal: ≤ 50 ms`);
}

async function inTheEdge(): Promise<void> {
  const bench = await startBench();
  try {
    const { consul, edge } = bench;
    const t0 = Date.now();
    await registerInBulk(consul.url, bigCatalog(SERVICES, PER_SERVICE));
    console.log(`edge: registered ${SERVICES * PER_SERVICE} instances in ${Date.now() - t0} ms (/v1/txn)`);
    for (;;) {
      const last = (await appliedLines(edge)).at(-1);
      if (
        last &&
        last.services === SERVICES &&
        (await edge.metric("templater_instances")) === SERVICES * PER_SERVICE
      )
        break;
      if (Date.now() - t0 > 120_000)
        throw new Error("the edge did not apply the big catalog within 2 minutes");
      await sleep(250);
    }
    const full = (await appliedLines(edge)).at(-1)!;
    const conf = await edge.exec(["sh", "-c", "wc -c < /var/lib/dockside/nginx/current/services.conf"]);
    console.log(
      `edge: full catalog applied ${Date.now() - t0} ms after the first registration (the templater's log and metrics; ` +
        `not checked with requests: the instances' addresses do not exist); services.conf ${(Number(conf.output.trim()) / 1e6).toFixed(2)} MB`,
    );
    console.log(
      `  that apply: render ${full.renderMs} ms, nginx -t ${full.validateMs} ms, reload ${full.reloadMs} ms, apply ${full.applyMs} ms`,
    );

    const before = (await appliedLines(edge)).length;
    const changes = 15;
    for (let k = 0; k < changes; k++) {
      await sleep(1500); // a quiet spell: each change is applied on its own
      await registerInBulk(consul.url, [
        {
          node: "bench-node-0",
          id: `extra-${k}`,
          service: `svc-${k}`,
          address: `10.99.0.${k + 1}`,
          port: 8080,
        },
      ]);
      const deadline = Date.now() + 30_000;
      while ((await appliedLines(edge)).length < before + k + 1) {
        if (Date.now() > deadline) throw new Error(`change ${k} was not applied within 30 s`);
        await sleep(50);
      }
    }
    const lines = (await appliedLines(edge)).slice(before);
    console.log(`edge: one instance added to a ${SERVICES} × ${PER_SERVICE} catalog, ${lines.length} times:`);
    console.log(`  render + seal:        ${summary(lines.map((l) => l.renderMs))}`);
    console.log(`  nginx -t:             ${summary(lines.map((l) => l.validateMs))}`);
    console.log(`  reload (SIGHUP → old workers stop accepting): ${summary(lines.map((l) => l.reloadMs))}`);
    console.log(`  whole apply (write, nginx -t, swap, reload): ${summary(lines.map((l) => l.applyMs))}`);
    console.log(`  Consul change → live:  ${summary(lines.map((l) => l.sinceChangeMs ?? NaN))}`);
    const view = (await edge.metrics()).filter((s) => s.name.startsWith("templater_view_duration_seconds_"));
    const sum = view.find((s) => s.name.endsWith("_sum"))!.value;
    const count = view.find((s) => s.name.endsWith("_count"))!.value;
    console.log(
      `  view build in the edge: mean ${((sum / count) * 1000).toFixed(1)} ms over ${count} snapshots`,
    );
  } finally {
    await bench.scope.close();
  }
}

await runBench("templater-render", async () => {
  inProcess();
  await inTheEdge();
});
