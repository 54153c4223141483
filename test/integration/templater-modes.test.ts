// The templater's modes in the real edge image: --once, --dry, exec (supervising nginx) and
// command mode, against a real Consul.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import { registerInstance, startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { containerIp, createNetwork, type TestNetwork } from "../helpers/docker.ts";
import { outputDir, runEdge, startEdge, templatesCopy } from "../helpers/edge.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";
import { createWorkload, type Workload } from "../helpers/workload.ts";

const jsonLines = (text: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith("{") && l.includes('"service":"templater"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("templater modes", { timeout: 300_000 }, () => {
  const scope = testScope();
  let network: TestNetwork;
  let consul: ConsulHandle;
  let workload: Workload;
  let ip: string;
  let onceOutput: string;

  const register = (id: string, name: string, address: string) =>
    registerInstance(consul.client, { id, name, address });

  before(async () => {
    network = await createNetwork(scope);
    consul = await startConsul(scope, { network, alias: "consul" });
    workload = await createWorkload(scope, { network: network.name });
    ip = await containerIp(workload.id, network.name);
    await register("web-1", "web", ip);
    onceOutput = outputDir(scope);
  });

  describe("--once", () => {
    it("renders, validates, applies and exits 0 without starting nginx", async () => {
      const run = await runEdge(scope, { network, outputDir: onceOutput, args: ["--once"] });
      assert.equal(run.exitCode, 0, run.stdout + run.stderr);
      const done = jsonLines(run.stdout).find((l) => l.msg === "--once done")!;
      assert.equal(done.result, "applied");
      assert.ok(!jsonLines(run.stdout).some((l) => l.msg === "nginx started"));
      assert.equal(readlinkSync(path.join(onceOutput, "current")), `generations/${done.generation}`);
      // dynamic upstreams (the default): routes in the config, the instance set kept for nginx's start
      assert.match(
        readFileSync(path.join(onceOutput, "current", "services.conf"), "utf8"),
        /upstream svc_web \{/,
      );
      assert.match(
        readFileSync(path.join(onceOutput, ".dockside-sets.json"), "utf8"),
        new RegExp(`"${ip}:8080"`),
      );
    });

    it("with nothing new: exits 0 and writes nothing", async () => {
      const before = readdirSync(path.join(onceOutput, "generations"));
      const run = await runEdge(scope, { network, outputDir: onceOutput, args: ["--once"] });
      assert.equal(run.exitCode, 0);
      assert.equal(jsonLines(run.stdout).find((l) => l.msg === "--once done")!.result, "unchanged");
      assert.deepEqual(readdirSync(path.join(onceOutput, "generations")), before);
    });

    it("exits 1 when nginx rejects the render, and changes nothing on disk", async () => {
      const templates = templatesCopy(scope);
      const file = path.join(templates, "services.conf.hbs");
      writeFileSync(
        file,
        readFileSync(file, "utf8").replace("server_name _;", "server_name _;\n    bogus_directive on;"),
      );
      const link = readlinkSync(path.join(onceOutput, "current"));
      const run = await runEdge(scope, {
        network,
        outputDir: onceOutput,
        templatesDir: templates,
        args: ["--once"],
      });
      assert.equal(run.exitCode, 1);
      const err = jsonLines(run.stdout).find((l) => l.msg === "config not applied; the live config stays")!;
      assert.equal(err.stage, "validate");
      assert.match(String(err.error), /bogus_directive/);
      assert.equal(readlinkSync(path.join(onceOutput, "current")), link);
      assert.ok(!readdirSync(onceOutput).some((e) => e.startsWith(".staging-")));
    });

    it("exits 1 when a template does not compile", async () => {
      const templates = templatesCopy(scope);
      writeFileSync(path.join(templates, "services.conf.hbs"), "{{#each services}\n");
      const run = await runEdge(scope, {
        network,
        outputDir: outputDir(scope),
        templatesDir: templates,
        args: ["--once"],
      });
      assert.equal(run.exitCode, 1);
      assert.ok(
        jsonLines(run.stdout).some(
          (l) => l.msg === "template does not compile; its last good version stays in use" && l.line === 1,
        ),
      );
    });

    it("exits 1 when Consul does not answer within --once-timeout", async () => {
      const started = Date.now();
      const run = await runEdge(scope, {
        network,
        consulAddr: "127.0.0.1:1",
        outputDir: outputDir(scope),
        args: ["--once", "--once-timeout", "1s"],
      });
      assert.equal(run.exitCode, 1);
      assert.ok(
        jsonLines(run.stdout).some((l) => l.msg === "--once: Consul did not answer in time; nothing applied"),
      );
      assert.ok(Date.now() - started < 15_000);
    });
  });

  describe("--dry", () => {
    it("--dry --once prints the render on stdout (logs on stderr) and touches nothing", async () => {
      const out = outputDir(scope);
      const run = await runEdge(scope, { network, outputDir: out, args: ["--dry", "--once"] });
      assert.equal(run.exitCode, 0, run.stderr);
      assert.match(run.stdout, /^> nginx\.conf \(generation [0-9a-f]{16}\)$/m);
      assert.match(run.stdout, /^> services\.conf \(generation [0-9a-f]{16}\)$/m);
      assert.match(run.stdout, /upstream svc_web \{/);
      assert.equal(jsonLines(run.stdout).length, 0, "no logs on stdout");
      assert.ok(jsonLines(run.stderr).some((l) => l.msg === "--once done" && l.result === "dry"));
      assert.deepEqual(readdirSync(out), []);
    });

    it("--dry keeps following Consul and prints each new render; no nginx, no files", async () => {
      const out = outputDir(scope);
      const edge = await startEdge(scope, { network, outputDir: out, args: ["--dry"] });
      await register("api-1", "api", ip);
      await waitFor(async () => (await edge.logs()).stdout.includes("upstream svc_api {"), {
        what: "the second render printed",
      });
      assert.equal((await edge.logs()).stdout.match(/^> services\.conf/gm)!.length, 2);
      assert.deepEqual(readdirSync(out), []);
      await assert.rejects(fetch(`${edge.url}/web/`), "nothing listens on 8080");
      await consul.client.agent.service.deregister("api-1");
    });
  });

  describe("exec mode", () => {
    it("after a restart, serves the last applied config even while Consul is unreachable", async () => {
      const edge = await startEdge(scope, { network, consulAddr: "127.0.0.1:1", outputDir: onceOutput });
      // The ops port answers a moment before nginx's published port does on a busy engine.
      const body = await waitFor(
        async () =>
          (await (await fetch(`${edge.url}/web/`, { headers: { connection: "close" } })).text()).trim(),
        { what: "nginx to answer", timeoutMs: 10_000 },
      );
      assert.equal(body, workload.name);
      assert.equal(await edge.metric("templater_consul_up"), 0);
    });

    it("forwards the stop signal (QUIT: graceful) and exits with nginx's status", async () => {
      const edge = await startEdge(scope, { network });
      await edge.container.stop({ t: 10 }); // the image's STOPSIGNAL is SIGQUIT
      const state = (await edge.container.inspect()).State;
      assert.equal(state.ExitCode, 0);
      const exit = (await edge.logLines()).find((l) => l.msg === "nginx exited")!;
      assert.equal(exit.requested, true);
      assert.equal(exit.code, 0);
    });

    it("exits with nginx's status when nginx dies", async () => {
      const edge = await startEdge(scope, { network });
      const kill = await edge.exec(["sh", "-c", "kill -9 $(cat /tmp/dockside-nginx.pid)"]);
      assert.equal(kill.exitCode, 0, kill.output);
      const { StatusCode } = (await edge.container.wait()) as { StatusCode: number };
      assert.equal(StatusCode, 128 + 9);
      const exit = (await edge.logLines()).find((l) => l.msg === "nginx exited")!;
      assert.equal(exit.requested, false);
      assert.equal(exit.signal, "SIGKILL");
    });
  });

  describe("command mode", () => {
    it("runs the reload command after each apply; a failing command puts the previous config back", async () => {
      const out = outputDir(scope);
      const edge = await startEdge(scope, {
        network,
        outputDir: out,
        args: [
          "--mode",
          "command",
          "--upstreams",
          "reload",
          "--reload-command",
          "echo reloaded >> /tmp/reloads && test ! -e /tmp/fail-reload",
        ],
      });
      const reloads = async () => (await edge.exec(["sh", "-c", "wc -l < /tmp/reloads"])).output.trim();
      assert.equal(await reloads(), "1");
      await register("cmd-1", "cmd", ip);
      await waitFor(async () => (await reloads()) === "2", { what: "a second reload" });
      const link = readlinkSync(path.join(out, "current"));

      await edge.exec(["touch", "/tmp/fail-reload"]);
      await register("cmd-2", "cmd", ip);
      await waitFor(async () => (await edge.metric("templater_reloads_total", { result: "failed" })) === 1, {
        what: "the failed reload",
      });
      // The failure is counted before the previous config is put back on disk; the reload of the
      // previous config comes after that (and fails too here, the command still failing).
      const afterRestore = [
        "nginx serves the previous config again",
        "could not reload nginx with the previous config",
      ];
      await waitFor(async () => (await edge.logLines()).some((l) => afterRestore.includes(String(l.msg))), {
        what: "the previous config put back and reloaded",
      });
      assert.equal(readlinkSync(path.join(out, "current")), link, "the previous config is live again");
      assert.equal(readdirSync(path.join(out, "generations")).length, 2, "the failed generation is removed");
      assert.equal(await edge.metric("templater_apply_failures_total", { stage: "reload" }), 1);

      await edge.exec(["rm", "/tmp/fail-reload"]);
      await register("cmd-3", "cmd", ip);
      await waitFor(async () => readlinkSync(path.join(out, "current")) !== link, {
        what: "the next change applied",
      });
      assert.ok(existsSync(path.join(out, "current", "services.conf")));
      assert.match(readFileSync(path.join(out, "current", "services.conf"), "utf8"), /upstream svc_cmd/);
      for (const id of ["cmd-1", "cmd-2", "cmd-3"]) await consul.client.agent.service.deregister(id);
    });
  });
});
