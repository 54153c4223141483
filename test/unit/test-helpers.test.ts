// The helpers that decide whether other tests pass: they must fail where they would hide a fault.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatSummary, summarise } from "../../bench/lib/stats.ts";
import { parseMetrics, sampleValue } from "../helpers/prometheus.ts";
import { Scope } from "../helpers/scope.ts";

const exposition = [
  "# HELP reloads_total Reloads.",
  "# TYPE reloads_total counter",
  'reloads_total{result="ok"} 3',
  "# HELP failures_total Failures by stage.",
  "# TYPE failures_total counter",
  "# HELP up Is it up.",
  "# TYPE up gauge",
  "up 1",
].join("\n");

describe("sampleValue", () => {
  const samples = parseMetrics(exposition);

  it("reads a sample by name and labels", () => {
    assert.equal(sampleValue(samples, "reloads_total", { result: "ok" }), 3);
    assert.equal(sampleValue(samples, "up"), 1);
  });

  it("reads an untouched labelled child of a declared counter as 0", () => {
    assert.equal(sampleValue(samples, "failures_total", { stage: "reload" }), 0);
    assert.equal(sampleValue(samples, "reloads_total", { result: "failed" }), 0);
  });

  it("throws for a metric that is not exposed, so a rename fails the test", () => {
    assert.throws(
      () => sampleValue(samples, "reload_total", { result: "ok" }),
      /reload_total.*is not exposed/,
    );
    assert.throws(() => sampleValue(samples, "down"), /down.*is not exposed/);
  });

  it("throws for a declared gauge without a sample", () => {
    assert.throws(
      () => sampleValue(parseMetrics("# TYPE g gauge\n"), "g"),
      /declared as gauge but has no sample/,
    );
  });
});

describe("Scope", () => {
  it("runs every step in reverse order and throws when one fails", async () => {
    const ran: string[] = [];
    const scope = new Scope();
    scope.defer("first", () => ran.push("first"));
    scope.defer("leaky", () => {
      throw new Error("still attached");
    });
    scope.defer("last", () => ran.push("last"));
    await assert.rejects(scope.close(), /clean-up of leaky failed: still attached/);
    assert.deepEqual(ran, ["last", "first"]);
  });

  it("names every failed step", async () => {
    const scope = new Scope();
    scope.defer("a", () => Promise.reject(new Error("x")));
    scope.defer("b", () => Promise.reject(new Error("y")));
    await assert.rejects(scope.close(), (err: AggregateError) => {
      assert.equal(err.errors.length, 2);
      assert.match(err.message, /clean-up of b failed: y; clean-up of a failed: x/);
      return true;
    });
  });

  it("resolves when every step succeeds", async () => {
    const scope = new Scope();
    scope.defer("fine", () => undefined);
    await scope.close();
  });
});

describe("bench statistics", () => {
  const ramp = (n: number) => Array.from({ length: n }, (_, i) => n - i);

  it("gives no p99 below 100 samples, where it would be the maximum", () => {
    const s = summarise(ramp(99));
    assert.equal(s.p99, undefined);
    assert.equal(s.p90, 90);
    assert.equal(s.max, 99);
    assert.doesNotMatch(formatSummary("x", s), /p99/);
    assert.match(formatSummary("x", s), /^x: n=99 min 1\.0ms p50 50\.0ms p90 90\.0ms max 99\.0ms$/);
  });

  it("gives p99 from 100 samples on", () => {
    const s = summarise(ramp(200));
    assert.equal(s.p99, 198);
    assert.match(
      formatSummary("x", s),
      /^x: n=200 min 1\.0ms p50 100\.0ms p90 180\.0ms p99 198\.0ms max 200\.0ms$/,
    );
  });
});
