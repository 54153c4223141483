// The apply transaction with the real config store on a temporary directory; nginx -t and
// the reload are stand-ins that record what they were asked and fail on demand. The rules
// under test are the transaction's own: unchanged output writes and reloads nothing, any
// failure leaves the live generation (files and nginx), the same failed render is not tried
// twice, and a failed reload puts nginx back on the previous generation.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, it } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { ConfigStore } from "../../services/templater/src/apply/config-store.ts";
import { Transaction } from "../../services/templater/src/apply/transaction.ts";
import type { Generation } from "../../services/templater/src/core/render.ts";
import { createMetrics } from "../../services/templater/src/metrics.ts";
import { parseMetrics, sampleValue } from "../helpers/prometheus.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const gen = (id: string, body = id): Generation => ({
  id,
  files: [
    { dest: "nginx.conf", content: `include services.conf; # ${id}\n` },
    { dest: "services.conf", content: `# ${body}\n` },
  ],
});

async function rig() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-tx-"));
  dirs.push(dir);
  const log = createLogger({ service: "test", level: "error", write: () => {} });
  const store = new ConfigStore({ dir, main: "nginx.conf", keep: 3, log });
  await store.init();
  const validated: string[] = [];
  const reloaded: string[] = [];
  const faults = { validate: false, reloadOf: new Set<string>() };
  const metrics = createMetrics();
  const tx = new Transaction({
    store,
    metrics,
    log,
    validator: {
      async validate(mainPath) {
        validated.push(readFileSync(mainPath, "utf8"));
        return faults.validate
          ? { ok: false, output: `${mainPath}:1: unknown directive "x"` }
          : { ok: true, output: "" };
      },
    },
    reloader: {
      async reload(id) {
        reloaded.push(id);
        if (faults.reloadOf.has(id)) throw new Error(`nginx does not serve ${id}`);
      },
    },
  });
  const metric = async (name: string, labels?: Record<string, string>) =>
    sampleValue(parseMetrics(await metrics.registry.metrics()), name, labels);
  const live = () => path.basename(readlinkSync(path.join(dir, "current")));
  const entries = () => readdirSync(dir).sort();
  return { dir, store, tx, validated, reloaded, faults, metric, live, entries };
}

describe("apply transaction", () => {
  it("applies a new generation: validated from staging, made live, reloaded", async () => {
    const r = await rig();
    const out = await r.tx.apply(gen("aaaa"));
    assert.equal(out.result, "applied");
    assert.equal(r.live(), "aaaa");
    assert.equal(r.store.liveId, "aaaa");
    assert.deepEqual(r.reloaded, ["aaaa"]);
    assert.deepEqual(r.validated, ["include services.conf; # aaaa\n"]);
    assert.equal(readFileSync(path.join(r.dir, "current", "services.conf"), "utf8"), "# aaaa\n");
    assert.deepEqual(r.entries(), ["current", "generations"], "no staging left behind");
    assert.equal(await r.metric("templater_reloads_total", { result: "ok" }), 1);
  });

  it("output identical to the live generation writes nothing, validates nothing, reloads nothing", async () => {
    const r = await rig();
    await r.tx.apply(gen("aaaa"));
    const before = readdirSync(path.join(r.dir, "generations"));
    assert.deepEqual(await r.tx.apply(gen("aaaa")), { result: "unchanged" });
    assert.deepEqual([r.validated.length, r.reloaded.length], [1, 1]);
    assert.deepEqual(readdirSync(path.join(r.dir, "generations")), before);
    assert.deepEqual(r.entries(), ["current", "generations"]);
  });

  it("a config nginx -t rejects: staging removed, live generation untouched, counted; the same render is not tried again", async () => {
    const r = await rig();
    await r.tx.apply(gen("aaaa"));
    r.faults.validate = true;
    const out = await r.tx.apply(gen("bbbb"));
    assert.equal(out.result, "failed");
    assert.equal(out.result === "failed" && out.stage, "validate");
    assert.match(
      out.result === "failed" ? out.message : "",
      /nginx -t rejected the config: nginx\.conf:1: unknown directive/,
    );
    assert.equal(r.live(), "aaaa");
    assert.deepEqual(r.entries(), ["current", "generations"], "staging removed");
    assert.deepEqual(r.reloaded, ["aaaa"], "nginx not reloaded");
    assert.equal(await r.metric("templater_validations_failed_total"), 1);
    assert.equal(await r.metric("templater_apply_failures_total", { stage: "validate" }), 1);

    const again = await r.tx.apply(gen("bbbb"));
    assert.equal(again.result === "failed" && again.repeated, true, "reported as the same failure");
    assert.equal(r.validated.length, 2, "not validated a second time");
    r.tx.forgetFailure();
    await r.tx.apply(gen("bbbb"));
    assert.equal(r.validated.length, 3, "tried again once the failure is forgotten");
  });

  it("a failed reload puts `current` back, removes the new generation and reloads the previous one", async () => {
    const r = await rig();
    await r.tx.apply(gen("aaaa"));
    r.faults.reloadOf.add("bbbb");
    const out = await r.tx.apply(gen("bbbb"));
    assert.equal(out.result === "failed" && out.stage, "reload");
    assert.equal(r.live(), "aaaa");
    assert.equal(r.store.liveId, "aaaa");
    assert.deepEqual(readdirSync(path.join(r.dir, "generations")), ["aaaa"]);
    assert.deepEqual(r.reloaded, ["aaaa", "bbbb", "aaaa"]);
    assert.equal(await r.metric("templater_reloads_total", { result: "failed" }), 1);
    // A different render afterwards goes through normally.
    assert.equal((await r.tx.apply(gen("cccc"))).result, "applied");
    assert.equal(r.live(), "cccc");
  });

  it("the first generation failing its reload leaves no `current` at all", async () => {
    const r = await rig();
    r.faults.reloadOf.add("aaaa");
    assert.equal((await r.tx.apply(gen("aaaa"))).result, "failed");
    assert.equal(r.store.liveId, null);
    assert.deepEqual(r.entries(), ["generations"]);
    assert.deepEqual(r.reloaded, ["aaaa"], "nothing earlier to go back to");
  });

  it("keeps the live generation and the newest others, `keep` in all", async () => {
    const r = await rig();
    for (const id of ["aaaa", "bbbb", "cccc", "dddd", "eeee"]) {
      await r.tx.apply(gen(id));
      await new Promise((res) => setTimeout(res, 5)); // distinct mtimes
    }
    assert.deepEqual(readdirSync(path.join(r.dir, "generations")).sort(), ["cccc", "dddd", "eeee"]);
    assert.equal(r.live(), "eeee");
  });
});
