// The edge when its own files or nginx misbehave: a template file deleted while the templater
// runs, and an old nginx worker that still accepts connections when the reload's confirmation
// deadline passes (made real by stopping the worker with SIGSTOP, so it never handles the
// master's order to shut down).
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import { registerInstance, startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { containerIp, createNetwork, type TestNetwork } from "../helpers/docker.ts";
import { outputDir, startEdge, templatesCopy, type EdgeHandle } from "../helpers/edge.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";
import { createWorkload, type Workload } from "../helpers/workload.ts";

const confirmTimeoutMs = 3000;

describe("edge faults: templates and nginx workers", { timeout: 240_000 }, () => {
  const scope = testScope();
  let network: TestNetwork;
  let consul: ConsulHandle;
  let edge: EdgeHandle;
  let backend: Workload;
  let ip: string;
  let templates: string;

  const register = (id: string, name: string, meta?: Record<string, string>) =>
    registerInstance(consul.client, { id, name, address: ip, meta });
  /** What nginx answers on a fresh connection. */
  const served = async (p: string) => {
    const res = await fetch(`${edge.url}${p}`, { headers: { connection: "close" } });
    return { status: res.status, body: (await res.text()).trim() };
  };
  const servedBy = (p: string) =>
    waitFor(async () => (await served(p)).body === backend.name, { what: `nginx to route ${p}` });
  const logged = async (msg: string) => (await edge.logLines()).filter((l) => l.msg === msg);

  before(async () => {
    network = await createNetwork(scope);
    consul = await startConsul(scope, { network, alias: "consul" });
    backend = await createWorkload(scope, { network: network.name });
    ip = await containerIp(backend.id, network.name);
    templates = templatesCopy(scope);
    edge = await startEdge(scope, {
      network,
      templatesDir: templates,
      outputDir: outputDir(scope),
      args: ["--confirm-timeout", `${confirmTimeoutMs / 1000}s`],
    });
  });

  it("a template file deleted while it runs: reported, its last good version stays in use, Consul changes still reach nginx; putting it back recovers", async () => {
    await register("web-1", "web");
    await servedBy("/web/");
    const file = path.join(templates, "services.conf.hbs");
    const text = readFileSync(file, "utf8");
    rmSync(file);
    await waitFor(async () => (await edge.metric("templater_template_errors")) === 1, {
      what: "the missing template reported",
    });
    const entry = (await edge.status()).templates.find((t) => t.dest === "services.conf")!;
    assert.match(String(entry.error), /cannot read template: .*ENOENT/);
    // A change after the deletion is rendered with the last good template and served.
    await register("api-1", "api");
    await servedBy("/api/");
    assert.equal((await served("/web/")).body, backend.name, "the other service still served");
    assert.equal((await logged("template unreadable; its last good version stays in use")).length, 1);

    writeFileSync(file, text);
    await waitFor(async () => (await edge.metric("templater_template_errors")) === 0, {
      what: "the template back",
    });
    assert.equal((await logged("template fixed")).length, 1);
    assert.equal((await edge.status()).templates.find((t) => t.dest === "services.conf")!.error, null);
  });

  it("an old worker still accepting at the confirmation deadline: warned about by pid, the new config is live, and the next reload is normal", async () => {
    const workers = async () => {
      const r = await edge.exec([
        "sh",
        "-c",
        'for d in /proc/[0-9]*; do c=$(tr "\\0" " " < $d/cmdline 2>/dev/null); case "$c" in "nginx: worker process"*) echo "${d#/proc/} $c";; esac; done',
      ]);
      return r.output
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => ({ pid: Number(l.split(" ")[0]), title: l.slice(l.indexOf(" ") + 1).trim() }));
    };
    const before = await workers();
    assert.ok(before.length >= 1, `nginx workers: ${JSON.stringify(before)}`);
    const stuck = before[0]!.pid;
    const stop = await edge.exec(["sh", "-c", `kill -STOP ${stuck}`]);
    assert.equal(stop.exitCode, 0, stop.output);
    try {
      const warnedBefore = (await logged("old nginx workers still accept connections after the reload"))
        .length;
      const reloads = await edge.metric("templater_reloads_total", { result: "ok" });
      await register("late-1", "late");
      const warning = await waitFor(
        async () =>
          (await logged("old nginx workers still accept connections after the reload"))[warnedBefore],
        { what: "the warning about the old worker", timeoutMs: 30_000 },
      );
      assert.ok(
        (warning.pids as number[]).includes(stuck),
        `names the stopped worker: ${JSON.stringify(warning)}`,
      );
      await waitFor(
        async () => (await edge.metric("templater_reloads_total", { result: "ok" })) === reloads + 1,
        {
          what: "the reload counted as done",
        },
      );
      await servedBy("/late/");
    } finally {
      await edge.exec(["sh", "-c", `kill -CONT ${stuck}`]);
    }
    // Woken up, it obeys the order to shut down; the next reload finds no stale worker.
    await waitFor(async () => !(await workers()).some((w) => w.pid === stuck), {
      what: "the old worker gone",
    });
    const warned = (await logged("old nginx workers still accept connections after the reload")).length;
    const reloads = await edge.metric("templater_reloads_total", { result: "ok" });
    await register("later-1", "later");
    await servedBy("/later/");
    await waitFor(async () => (await edge.metric("templater_reloads_total", { result: "ok" })) > reloads, {
      what: "the next reload finished",
    });
    assert.equal(
      (await logged("old nginx workers still accept connections after the reload")).length,
      warned,
    );
  });
});
