// The edge image end to end: a real Consul, the real nginx (1.30) supervised by the templater,
// busybox HTTP servers as upstreams, all on one test network. Templates and the output
// directory are bind-mounted from the host so the test can edit the one and read the other.
import assert from "node:assert/strict";
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { before, describe, it } from "node:test";
import Consul from "consul";
import { maxConsulSockets } from "../../services/templater/src/watch/consul-api.ts";
import { registerInstance, startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { containerIp, createNetwork, docker, type TestNetwork } from "../helpers/docker.ts";
import { outputDir, startEdge, templatesCopy, type EdgeHandle } from "../helpers/edge.ts";
import { testScope } from "../helpers/scope.ts";
import { establishedIn } from "../helpers/sockets.ts";
import { delay, waitFor } from "../helpers/wait.ts";
import { createWorkload, type Workload } from "../helpers/workload.ts";

/** GET on a fresh connection (so each request may reach any nginx worker), optional Host header. */
function get(base: string, p: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `${base}${p}`,
      { agent: false, headers: host ? { host } : {}, timeout: 5000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** A catalog registration on a connection of its own (an edge test counts the edge's connections, not ours). */
function consulCatalogRegister(base: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/v1/catalog/register`, { method: "PUT", agent: false }, (res) => {
      res.resume();
      res.on("end", () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`catalog register: ${res.statusCode}`)),
      );
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

async function answers(base: string, p: string, n: number, host?: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await get(base, p, host);
    assert.equal(r.status, 200, `${p} answered ${r.status}: ${r.body}`);
    out.push(r.body);
  }
  return out;
}

/** The edge's --consul-service-watches: few, so the connection bound below stays small. */
const serviceWatches = 16;

describe("edge: templater + nginx against Consul", { timeout: 300_000 }, () => {
  const scope = testScope();
  let network: TestNetwork;
  let consul: ConsulHandle;
  let client: Consul;
  let edge: EdgeHandle;
  let workloads: Workload[];
  let ips: string[];
  let templates: string;
  let output: string;

  const register = (
    id: string,
    name: string,
    address: string,
    extra: { tags?: string[]; meta?: Record<string, string>; port?: number; status?: string } = {},
  ) => registerInstance(client, { id, name, address, ...extra });
  const upstream = async (name: string) =>
    (await edge.status()).services.find((s) => s.name === name)?.upstream ?? [];
  const waitUpstream = (name: string, n: number, timeoutMs = 10_000) =>
    waitFor(async () => (await upstream(name)).length === n, {
      what: `${n} live servers for ${name}`,
      timeoutMs,
    });
  const liveFile = (f: string) => readFileSync(path.join(output, "current", f), "utf8");
  /** Waits until nginx serves the generation the templater reports as live; returns it. */
  const settled = () =>
    waitFor(
      async () => {
        const [served, status] = await Promise.all([edge.generation(), edge.status()]);
        return (
          served === status.nginx.generation &&
          served === path.basename(readlinkSync(path.join(output, "current"))) &&
          served
        );
      },
      { what: "nginx to serve the live generation" },
    );

  before(async () => {
    network = await createNetwork(scope);
    consul = await startConsul(scope, { network, alias: "consul" });
    client = consul.client;
    workloads = await Promise.all([1, 2, 3].map(() => createWorkload(scope, { network: network.name })));
    ips = await Promise.all(workloads.map((w) => containerIp(w.id, network.name)));
    templates = templatesCopy(scope);
    if (process.env.DOCKSIDE_TEST_DEBUG) {
      const main = path.join(templates, "nginx.conf.hbs");
      writeFileSync(
        main,
        readFileSync(main, "utf8").replace("error_log stderr warn;", "error_log stderr notice;"),
      );
    }
    output = outputDir(scope);
    edge = await startEdge(scope, {
      network,
      templatesDir: templates,
      outputDir: output,
      // Reload mode: instances are server lines in the rendered config (dynamic mode: templater-dynamic.test.ts).
      // 16 service watches: the bound below is theirs plus the whole-catalog watcher's, whatever the number of services.
      args: [
        "--confirm-timeout",
        "3s",
        "--upstreams",
        "reload",
        "--consul-service-watches",
        String(serviceWatches),
      ],
    });
    const dump = process.env.DOCKSIDE_TEST_DEBUG;
    // DOCKSIDE_TEST_DEBUG=<file>: nginx logs at notice level, and the edge's logs written to <file>
    if (dump) scope.defer("edge logs", async () => writeFileSync(dump, JSON.stringify(await edge.logs())));
  });

  it("routes to every registered instance, round-robin, by path prefix and by host", async () => {
    for (let i = 0; i < 3; i++) await register(`web-${i + 1}`, "web", ips[i]!);
    await waitUpstream("web", 3);
    const byPath = new Set(await answers(edge.url, "/web/", 30));
    assert.deepEqual([...byPath].sort(), workloads.map((w) => w.name).sort());
    const byHost = new Set(await answers(edge.url, "/", 30, "web.localhost"));
    assert.equal(byHost.size, 3);
    // the prefix is stripped: busybox httpd serves /index.html for /web/index.html
    assert.equal((await get(edge.url, "/web/index.html")).status, 200);
    assert.equal((await get(edge.url, "/nope/")).status, 404);
    assert.match(liveFile("services.conf"), new RegExp(`server ${ips[0]!.replaceAll(".", "\\.")}:8080`));
  });

  it("a deregistered instance is gone from nginx", async () => {
    await client.agent.service.deregister("web-3");
    await waitUpstream("web", 2);
    const seen = new Set(await answers(edge.url, "/web/", 30));
    assert.deepEqual([...seen].sort(), [workloads[0]!.name, workloads[1]!.name].sort());
    assert.ok(!liveFile("services.conf").includes(`${ips[2]}:8080`));
  });

  it("a service with no passing instance answers 503 while the others keep working", async () => {
    // Registered critical, never routed. (An instance that was routed and fails with every other
    // instance of its service stays routed: panic mode, templater-consul-restart.test.ts.)
    await register("api-1", "api", ips[2]!, { status: "critical" });
    await waitFor(async () => (await get(edge.url, "/api/")).status === 503, {
      what: "/api/ routed, answering 503",
    });
    await settled();
    const byPath = await get(edge.url, "/api/");
    assert.equal(byPath.status, 503);
    assert.match(byPath.body, /no healthy instance/);
    assert.equal((await get(edge.url, "/", "api.localhost")).status, 503);
    await answers(edge.url, "/web/", 10);
    const api = (await edge.status()).services.find((s) => s.name === "api")!;
    assert.deepEqual(
      api.instances.map((i) => [i.id, i.status, i.live]),
      [["api-1", "critical", false]],
    );
  });

  it("output identical to the live config writes nothing and reloads nothing", async () => {
    const before = {
      gen: await edge.generation(),
      reloads: await edge.metric("templater_reloads_total", { result: "ok" }),
      unchanged: await edge.metric("templater_renders_total", { result: "unchanged" }),
      dirs: readdirSync(path.join(output, "generations")).sort(),
    };
    // instance meta is not printed by the default templates: the view changes, the output does not
    await register("web-1", "web", ips[0]!, { meta: { build: "42" } });
    await waitFor(
      async () => (await edge.metric("templater_renders_total", { result: "unchanged" })) > before.unchanged,
      { what: "an unchanged render" },
    );
    assert.equal(await edge.metric("templater_reloads_total", { result: "ok" }), before.reloads);
    assert.equal(await edge.generation(), before.gen);
    assert.deepEqual(readdirSync(path.join(output, "generations")).sort(), before.dirs);
  });

  it("hostile names, tags, meta and addresses never reach the config; each is logged once", async () => {
    const huge = "x".repeat(20_000);
    await register("evil-1", "evil;\n}server{", ips[0]!);
    await register("evil-2", "okname", "1.2.3.4; server 6.6.6.6:80");
    await register("evil-3", "tagged", ips[1]!, {
      tags: ["http", "a;b", "x\n}", "$evil_var", `${huge}`, "# evil comment", 'quote"d'],
      meta: { dollar: "${evil}", brace: "}{", nl: "one\ntwo", long: "y".repeat(500) },
    });
    await waitUpstream("tagged", 1);
    const conf = readdirSync(path.join(output, "current"))
      .map((f) => liveFile(f))
      .join("\n");
    for (const bad of [
      "evil;",
      "6.6.6.6",
      "$evil_var",
      "${evil}",
      "x\n}",
      huge,
      "# evil comment",
      "one\ntwo",
    ]) {
      assert.ok(!conf.includes(bad), `${JSON.stringify(bad.slice(0, 20))} reached the config`);
    }
    assert.equal((await get(edge.url, "/tagged/")).body, workloads[1]!.name);
    assert.deepEqual(await upstream("okname"), []);
    const dropped = (await edge.status()).dropped;
    assert.ok(dropped.some((d) => d.field === "name" && /letters, digits/.test(d.reason)));
    assert.ok(dropped.some((d) => d.field === "address" && /not an IP address/.test(d.reason)));
    assert.ok(dropped.some((d) => d.field === "tag" && /longer than/.test(d.reason)));
    assert.ok(dropped.some((d) => d.field === "meta dollar"));
    assert.equal(await edge.metric("templater_dropped_values"), dropped.length);
    const leftOut = async () =>
      (await edge.logLines()).filter((l) => l.msg === "value from Consul left out: not safe in nginx config")
        .length;
    const count = await leftOut();
    assert.equal(count, dropped.length, "one log line per value");
    const unchanged = await edge.metric("templater_renders_total", { result: "unchanged" });
    await register("web-1", "web", ips[0]!, { meta: { build: "43" } });
    // meta is not printed: the next change renders to the same output, which the counter shows
    await waitFor(
      async () => (await edge.metric("templater_renders_total", { result: "unchanged" })) > unchanged,
      { what: "the next change rendered" },
    );
    assert.equal(await leftOut(), count, "not logged again on the next change");
    for (const id of ["evil-1", "evil-2", "evil-3"]) await client.agent.service.deregister(id);
  });

  it("50 registrations in a burst are coalesced into far fewer reloads", async () => {
    await waitFor(async () => (await edge.status()).dropped.length === 0, { what: "hostile entries gone" });
    await delay(1200); // a quiet spell, so the burst starts like a real one
    const before = await edge.metric("templater_reloads_total", { result: "ok" });
    for (let i = 0; i < 50; i++) await register(`burst-${i}`, "burst", `10.99.0.${i + 1}`);
    await waitUpstream("burst", 50, 15_000);
    await delay(1200);
    const reloads = (await edge.metric("templater_reloads_total", { result: "ok" })) - before;
    // A generous bound that still tells "coalesces" from "one reload per change" apart; how
    // many reloads a burst takes is bench/templater-latency.ts's figure, not this test's.
    assert.ok(reloads >= 1 && reloads <= 25, `reloads: ${reloads} for 50 registrations`);
  });

  /** Runs `fn` with services.conf.hbs changed by `edit`; the good template is back afterwards, whatever happens. */
  async function withServicesTemplate(
    edit: (good: string) => string,
    fn: (restore: () => void) => Promise<void>,
  ) {
    const file = path.join(templates, "services.conf.hbs");
    const good = readFileSync(file, "utf8");
    const restore = () => writeFileSync(file, good);
    writeFileSync(file, edit(good));
    try {
      await fn(restore);
    } finally {
      restore();
    }
  }

  it("a config nginx rejects is not applied; the old one stays on disk and serving; fixing the template recovers", async () => {
    const gen = await settled();
    const onDisk = liveFile("services.conf");
    const link = readlinkSync(path.join(output, "current"));
    const reloads = await edge.metric("templater_reloads_total", { result: "ok" });
    const failed = await edge.metric("templater_validations_failed_total");

    await withServicesTemplate(
      (good) => good.replace("server_name _;", "server_name _;\n    bogus_directive on;"),
      async (fix) => {
        await waitFor(async () => (await edge.metric("templater_validations_failed_total")) > failed, {
          what: "nginx -t to reject the config",
        });
        const status = await edge.status();
        assert.equal(status.lastError!.stage, "validate");
        assert.match(status.lastError!.message, /unknown directive "bogus_directive" in services\.conf:\d+/);
        assert.equal(
          await edge.metric("templater_apply_failures_total", { stage: "validate" }),
          await edge.metric("templater_validations_failed_total"),
        );
        // a Consul change meanwhile is rejected too: nothing reaches nginx
        await register("web-3", "web", ips[2]!);
        await waitFor(async () => (await edge.metric("templater_validations_failed_total")) > failed + 1, {
          what: "the next render rejected too",
        });
        assert.equal(await edge.generation(), gen);
        assert.equal(liveFile("services.conf"), onDisk);
        assert.equal(readlinkSync(path.join(output, "current")), link);
        assert.ok(!readdirSync(output).some((e) => e.startsWith(".staging-")), "staging removed");
        assert.equal(await edge.metric("templater_reloads_total", { result: "ok" }), reloads);
        assert.equal(new Set(await answers(edge.url, "/web/", 20)).size, 2, "still serving the old config");

        fix();
        await waitUpstream("web", 3);
        assert.notEqual(await edge.generation(), gen);
        assert.equal(new Set(await answers(edge.url, "/web/", 30)).size, 3);
        assert.equal((await edge.status()).lastError, null);
      },
    );
  });

  it("a helper-bypassing value nginx rejects is not applied; removing it recovers", async () => {
    // the template prints a meta value where nginx wants a time: Consul decides what nginx reads
    await withServicesTemplate(
      (good) =>
        good.replaceAll(
          "        proxy_pass http://{{upstream this}}/;",
          '        proxy_pass http://{{upstream this}}/;\n        proxy_connect_timeout {{meta this "timeout" "500ms"}};',
        ),
      async () => {
        await waitFor(async () => liveFile("services.conf").includes("proxy_connect_timeout 500ms;"), {
          what: "template with meta applied",
        });
        const gen = await settled();
        const failed = await edge.metric("templater_validations_failed_total");
        await register("slow-1", "slow", ips[0]!, { meta: { timeout: "banana" } });
        await waitFor(async () => (await edge.metric("templater_validations_failed_total")) > failed, {
          what: "nginx -t to reject banana",
        });
        assert.match((await edge.status()).lastError!.message, /proxy_connect_timeout/);
        assert.equal(await edge.generation(), gen);
        assert.equal((await get(edge.url, "/slow/")).status, 404, "the service never went live");
        await register("slow-1", "slow", ips[0]!, { meta: { timeout: "2s" } });
        await waitUpstream("slow", 1);
        assert.match(liveFile("services.conf"), /proxy_connect_timeout 2s;/);
        assert.equal((await get(edge.url, "/slow/")).body, workloads[0]!.name);
      },
    );
    await waitFor(async () => !liveFile("services.conf").includes("proxy_connect_timeout"), {
      what: "template restored",
    });
  });

  it("a template that does not compile is reported with file and line; its last good version stays in use", async () => {
    await withServicesTemplate(
      (good) => `${good}\n{{#each services}\n`,
      async () => {
        await waitFor(async () => (await edge.metric("templater_template_errors")) === 1, {
          what: "the compile error",
        });
        const err = (await edge.logLines()).findLast(
          (l) => l.msg === "template does not compile; its last good version stays in use",
        )!;
        assert.equal(err.file, "/etc/dockside/templates/services.conf.hbs");
        assert.equal(typeof err.line, "number");
        assert.match(
          String((await edge.status()).templates.find((t) => t.dest === "services.conf")!.error),
          /services\.conf\.hbs:\d+: Parse error/,
        );
        await client.agent.service.deregister("slow-1");
        await waitFor(
          async () => !(await edge.status()).services.some((s) => s.name === "slow" && s.upstream.length),
          { what: "Consul changes still applied" },
        );
      },
    );
    await waitFor(async () => (await edge.metric("templater_template_errors")) === 0, {
      what: "the template fixed",
    });
  });

  it("a config nginx accepts but that does not serve is rolled back, in nginx and on disk", async () => {
    const gen = await settled();
    // valid for nginx -t, but no server block: nothing listens, the generation is never confirmed
    await withServicesTemplate(
      () => "# nothing\n",
      async () => {
        await waitFor(async () => (await edge.status()).lastError?.stage === "reload", {
          what: "the failed reload",
          timeoutMs: 15_000,
        });
        assert.equal(await edge.metric("templater_apply_failures_total", { stage: "reload" }), 1);
        await waitFor(async () => (await edge.generation()) === gen, {
          what: "nginx back on the previous generation",
        });
        assert.equal(path.basename(readlinkSync(path.join(output, "current"))), gen);
        assert.equal((await get(edge.url, "/web/")).status, 200);
      },
    );
    await register("web-3", "web", ips[2]!, { meta: { after: "rollback" } });
    await waitFor(async () => (await edge.status()).lastError === null, {
      what: "the next apply",
      timeoutMs: 15_000,
    });
  });

  it("shows its status page, health and metrics on the ops listener only, never on nginx's public port", async () => {
    for (const p of ["/_dockside/", "/_dockside/status", "/_dockside/metrics", "/_dockside/health"]) {
      assert.equal((await get(edge.url, p)).status, 404, `${p} on the public port`);
    }
    const html = await get(edge.opsUrl, "/");
    assert.equal(html.status, 200);
    assert.match(html.body, /<h2>web<\/h2>/);
    const status = JSON.parse((await get(edge.opsUrl, "/status")).body);
    assert.equal(status.nginx.generation, await edge.generation());
    assert.equal((await get(edge.opsUrl, "/health")).status, 200);
    const metrics = (await get(edge.opsUrl, "/metrics")).body;
    for (const m of [
      "templater_renders_total",
      "templater_reloads_total",
      "templater_validations_failed_total",
      "templater_render_duration_seconds",
      "templater_apply_duration_seconds",
      "templater_last_success_timestamp_seconds",
      "templater_consul_up",
    ]) {
      assert.match(metrics, new RegExp(`^${m}`, "m"));
    }
    // bind-mount friendly: the live config is a symlink inside the mounted directory
    assert.match(readlinkSync(path.join(output, "current")), /^generations\/[0-9a-f]{16}$/);
  });

  it("holds the same bound of connections to Consul with 10 services as with 500 (--consul-service-watches + 6)", async () => {
    const held = async () => {
      const r = await edge.exec(["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"]);
      return establishedIn(r.output, 8500);
    };
    /** The most connections seen over a few looks (one look can fall between two requests). */
    const mostHeld = async () => {
      let most = 0;
      for (let i = 0; i < 5; i++, await delay(200)) most = Math.max(most, await held());
      return most;
    };
    const addBulk = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        await consulCatalogRegister(consul.url, {
          Node: `host-${i % 4}`,
          Address: "10.3.0.1",
          Service: {
            ID: `bulk-${i}`,
            Service: `bulk-${i}`,
            Tags: ["http"],
            Address: `10.3.${i % 4}.${(i % 250) + 1}`,
            Port: 8080,
          },
        });
      }
      await waitFor(
        async () =>
          (await edge.status()).services.filter((s) => s.name.startsWith("bulk-") && s.upstream.length === 1)
            .length === to,
        { what: `${to} bulk services live`, timeoutMs: 60_000 },
      );
    };
    await addBulk(0, 10);
    const few = await mostHeld();
    await addBulk(10, 500);
    const many = await mostHeld();
    // The same bound at both sizes: 2 long polls, a pool for per-node reads that holds 0–4
    // sockets depending on timing, and at most --consul-service-watches service long polls;
    // never one per service beyond that.
    for (const [n, held] of [
      [10, few],
      [500, many],
    ] as const)
      assert.ok(
        held >= 2 && held <= maxConsulSockets + serviceWatches,
        `${held} connections to Consul with ${n} services`,
      );
    assert.ok(
      many >= serviceWatches,
      `${many} connections with 500 services: the service watches are not held`,
    );
  });

  it("keeps serving while Consul is down, and follows changes again once it is back, without a restart", async () => {
    const consulBox = docker.getContainer(consul.container.getId());
    const startedAt = (await edge.container.inspect()).State.StartedAt;
    await consulBox.stop({ t: 1 });
    await waitFor(async () => (await edge.metric("templater_consul_up")) === 0, {
      what: "Consul seen as down",
      timeoutMs: 15_000,
    });
    for (let i = 0; i < 20; i++) {
      assert.equal((await get(edge.url, "/web/")).status, 200);
      await delay(100);
    }
    await consulBox.start();
    const port = Number((await consulBox.inspect()).NetworkSettings.Ports["8500/tcp"]![0]!.HostPort);
    client = new Consul({ host: "127.0.0.1", port });
    await waitFor(async () => /\d+:\d+/.test(await client.status.leader()), {
      what: "Consul leader again",
      timeoutMs: 20_000,
    });
    await waitFor(async () => (await edge.metric("templater_consul_up")) === 1, {
      what: "Consul seen as up",
      timeoutMs: 20_000,
    });
    // a dev agent forgets everything on restart: the index went backwards and the view followed
    await register("back-1", "back", ips[2]!);
    await waitUpstream("back", 1, 15_000);
    assert.equal((await get(edge.url, "/back/")).body, workloads[2]!.name);
    const lines = await edge.logLines();
    assert.equal(
      lines.filter((l) => l.msg === "consul unreachable; retrying until it answers").length,
      1,
      "the outage is logged once",
    );
    assert.ok(lines.some((l) => l.msg === "consul reachable" && typeof l.downMs === "number"));
    const state = (await edge.container.inspect()).State;
    assert.equal(state.StartedAt, startedAt);
    assert.equal(state.Running, true);
  });
});
