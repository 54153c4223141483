// Dynamic upstreams (the default): the real edge image (templater + nginx 1.30 with Lua), a real
// Consul, busybox upstreams. Instance changes are pushed into nginx shared memory without a
// reload; the control listener refuses hostile bodies and is not reachable from the public port.
import assert from "node:assert/strict";
import http from "node:http";
import { before, describe, it } from "node:test";
import type Consul from "consul";
import { registerInstance, startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { containerIp, createNetwork, type TestNetwork } from "../helpers/docker.ts";
import { startEdge, type EdgeHandle } from "../helpers/edge.ts";
import { startLoad } from "../helpers/load.ts";
import { testScope } from "../helpers/scope.ts";
import { delay, waitFor } from "../helpers/wait.ts";
import { createWorkload, type Workload } from "../helpers/workload.ts";

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
/** One request over the shared keep-alive agent, or (`fresh`) over a new connection. */
function send(
  method: "GET" | "POST",
  base: string,
  p: string,
  o: { headers?: Record<string, string>; fresh?: boolean; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const options = {
      method,
      agent: o.fresh ? false : agent,
      headers: o.headers,
      timeout: o.timeoutMs ?? 5000,
    };
    const req = http.request(`${base}${p}`, options, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(method === "POST" ? "{}" : undefined);
  });
}
const get = (base: string, p: string, headers: Record<string, string> = {}) =>
  send("GET", base, p, { headers });

describe("edge, dynamic upstreams", { timeout: 300_000 }, () => {
  const scope = testScope();
  let network: TestNetwork;
  let consul: ConsulHandle;
  let client: Consul;
  let edge: EdgeHandle;
  let workloads: Workload[];
  let ips: string[];

  const register = (id: string, name: string, address: string, meta?: Record<string, string>) =>
    registerInstance(client, { id, name, address, meta });
  const upstream = async (name: string) =>
    (await edge.status()).services.find((s) => s.name === name)?.upstream ?? [];
  const reloads = () => edge.metric("templater_reloads_total", { result: "ok" });
  /** A request to the control listener from inside the edge container (it listens on 127.0.0.1 there). */
  const control = async (method: string, p: string, body?: string) => {
    const script =
      `fetch("http://127.0.0.1:9103${p}", { method: ${JSON.stringify(method)}, ` +
      `body: process.env.BODY === undefined ? undefined : process.env.BODY })` +
      `.then(async r => console.log(r.status + " " + (await r.text()).replace(/\\s+/g, " ").trim()), e => console.log("000 " + e.message))`;
    const r = await edge.exec(
      body === undefined ? ["node", "-e", script] : ["env", `BODY=${body}`, "node", "-e", script],
    );
    const line =
      r.output
        .trim()
        .split("\n")
        .findLast((l) => /^\d{3} /.test(l)) ?? "";
    return { status: Number(line.slice(0, 3)), text: line.slice(4) };
  };

  before(async () => {
    network = await createNetwork(scope);
    consul = await startConsul(scope, { network, alias: "consul" });
    client = consul.client;
    workloads = await Promise.all([1, 2, 3].map(() => createWorkload(scope, { network: network.name })));
    ips = await Promise.all(workloads.map((w) => containerIp(w.id, network.name)));
    edge = await startEdge(scope, { network, args: ["--confirm-timeout", "3s"] });
  });

  it("a new service gets a validated reload; its instances coming and going never reload", async () => {
    const r0 = await reloads();
    await register("web-1", "web", ips[0]!);
    await waitFor(async () => (await get(edge.url, "/web/")).status === 200, { what: "/web/ routed" });
    assert.equal((await get(edge.url, "/web/")).body, workloads[0]!.name);
    const r1 = await reloads();
    assert.ok(r1 > r0, "the new route reloaded nginx");
    const generation = await edge.generation();
    await register("web-2", "web", ips[1]!);
    await register("web-3", "web", ips[2]!);
    await waitFor(async () => (await upstream("web")).length === 3, { what: "3 peers pushed" });
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add((await get(edge.url, "/web/")).body);
    assert.deepEqual([...seen].sort(), workloads.map((w) => w.name).sort());
    await client.agent.service.deregister("web-3");
    await waitFor(async () => (await upstream("web")).length === 2, { what: "web-3 gone" });
    for (let i = 0; i < 20; i++) assert.notEqual((await get(edge.url, "/web/")).body, workloads[2]!.name);
    assert.equal(await reloads(), r1, "no reload for instance changes");
    assert.equal(await edge.generation(), generation);
    assert.ok((await edge.metric("templater_set_pushes_total", { result: "pushed" })) >= 2);
  });

  it("a service with no instance answers 503 with Retry-After, without a reload", async () => {
    await register("solo-1", "solo", ips[0]!);
    await waitFor(async () => (await get(edge.url, "/solo/")).status === 200, { what: "/solo/ routed" });
    const r = await reloads();
    await client.agent.service.deregister("solo-1");
    await waitFor(async () => (await get(edge.url, "/solo/")).status === 503, { what: "/solo/ 503" });
    const res = await fetch(`${edge.url}/solo/`);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.match(await res.text(), /no healthy instance/);
    assert.equal(await reloads(), r);
  });

  it("weights: over 10,000 requests each instance's share is within ±2 % of its weight share", async () => {
    await register("heavy-1", "heavy", ips[0]!, { weight: "1" });
    await register("heavy-2", "heavy", ips[1]!, { weight: "3" });
    await register("heavy-3", "heavy", ips[2]!, { weight: "6" });
    await waitFor(async () => (await upstream("heavy")).length === 3, { what: "3 weighted peers" });
    await waitFor(async () => (await get(edge.url, "/heavy/")).status === 200, { what: "/heavy/ routed" });
    const counts = new Map<string, number>();
    const n = 10_000;
    let sent = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (sent < n) {
          sent++;
          const r = await get(edge.url, "/heavy/");
          assert.equal(r.status, 200);
          counts.set(r.body, (counts.get(r.body) ?? 0) + 1);
        }
      }),
    );
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const shares = [1, 3, 6].map((w, i) => ({
      w: w / 10,
      got: (counts.get(workloads[i]!.name) ?? 0) / total,
    }));
    console.log(
      `weights 1:3:6 over ${total} requests: ${shares.map((s) => `${(s.got * 100).toFixed(2)} %`).join(", ")}`,
    );
    for (const s of shares)
      assert.ok(Math.abs(s.got - s.w) <= 0.02, `share ${s.got} for weight share ${s.w}`);
  });

  it("a hostile push is refused with a clear 4xx and the live set stays", async () => {
    await waitFor(async () => (await upstream("web")).length === 2, { what: "web has 2 peers" });
    const version = Number((await control("GET", "/version")).text);
    assert.ok(version > 0);
    const next = version + 1000;
    const bad: [string, string, RegExp][] = [
      ["bad IP", `version ${next}\nset svc_web 10.0.0.300:8080:1\n`, /IPv4/],
      ["port 0", `version ${next}\nset svc_web 10.0.0.3:0:1\n`, /port/],
      ["port 70000", `version ${next}\nset svc_web 10.0.0.3:70000:1\n`, /port/],
      ["a ;", `version ${next}\nset svc_web 10.0.0.3:8080:1;\n`, /weight|line 2/],
      ["a ; in the name", `version ${next}\nset svc_web;evil 10.0.0.3:8080:1\n`, /line 2/],
      ["weight 0", `version ${next}\nset svc_web 10.0.0.3:8080:0\n`, /weight/],
      ["an old version", `version 1\nset svc_web 10.0.0.3:8080:1\n`, /not above/],
      ["no version", `set svc_web 10.0.0.3:8080:1\n`, /version/],
      ["a hostname", `version ${next}\nset svc_web example.com:8080:1\n`, /IPv4/],
    ];
    for (const [what, body, why] of bad) {
      const r = await control("POST", "/sets", body);
      assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${r.text}`);
      assert.match(r.text, why, what);
    }
    const big = await control(
      "POST",
      "/sets",
      `version ${next}\nset svc_web ${"10.0.0.3:8080:1 ".repeat(6500)}\n`,
    );
    assert.equal(big.status, 413, `100 KB: ${big.status} ${big.text}`);
    assert.equal(Number((await control("GET", "/version")).text), version, "version unchanged");
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add((await get(edge.url, "/web/")).body);
    assert.deepEqual([...seen].sort(), [workloads[0]!.name, workloads[1]!.name].sort(), "the live set stays");
  });

  it("a request whose connections fail goes on to further instances, a POST too (up to 8 tries)", async () => {
    // Six instances whose port is closed (each connection is refused at once: a demo-node past
    // its drain that the edge has not dropped yet) and one that answers, all on one address: the
    // set is sorted by endpoint, so :1001–:1006 come before :8080, and with equal weights a fresh
    // service's first request meets all six closed ones first. 3 tries alone end in a 502.
    for (const [name, method] of [
      ["retry-get", "GET"],
      ["retry-post", "POST"],
    ] as const) {
      for (let i = 1; i <= 6; i++) {
        await registerInstance(client, { id: `${name}-closed-${i}`, name, address: ips[0]!, port: 1000 + i });
      }
      await registerInstance(client, { id: `${name}-live`, name, address: ips[0]!, port: 8080 });
      // Its route served (nginx's workers answer the generation whose config has it) and its 7
      // peers pushed, without a request through the upstream: the first request must be the one
      // that meets the closed instances.
      const routed = async () => {
        const config = (await edge.exec(["nginx", "-T"])).output;
        const served = /return 200 "([0-9a-f]+)\\n"/.exec(config)?.[1];
        return config.includes(`location /${name}/ {`) && served === (await edge.generation());
      };
      await waitFor(async () => (await upstream(name)).length === 7 && (await routed()), {
        what: `${name} routed with 7 peers`,
      });
      // A new connection: a kept-alive one may be an old worker's, serving the config before the route.
      const first = () => send(method, edge.url, `/${name}/`, { fresh: true, timeoutMs: 10_000 });
      // "no route" (nginx's own 404) never reaches the upstream, so asking again keeps this the
      // first request through it.
      let r = await first();
      for (let i = 0; i < 50 && r.status === 404 && r.body.includes("no route"); i++) {
        await delay(100);
        r = await first();
      }
      // busybox httpd answers a POST to a file itself (not 200): any answer but nginx's own
      // 502/503/504 came from the live instance, after the six refusals.
      if (method === "GET") assert.equal(`${r.status} ${r.body}`, `200 ${workloads[0]!.name}`);
      else assert.ok(![502, 503, 504].includes(r.status), `${method}: ${r.status} ${r.body}`);
    }
  });

  it("GET /version?after=<n> answers once a push moves the version above n; a malformed n is refused", async () => {
    await waitFor(async () => (await upstream("web")).length === 2, { what: "web has 2 peers" });
    const version = Number((await control("GET", "/version")).text);
    let answered = false;
    const waiting = control("GET", `/version?after=${version}`).finally(() => (answered = true));
    await delay(1500);
    assert.equal(answered, false, "the long poll answered before any push");
    await register("web-after", "web", ips[2]!);
    try {
      const r = await waiting;
      assert.equal(r.status, 200, r.text);
      assert.ok(Number(r.text) > version, `answered ${r.text}, live was ${version}`);
    } finally {
      await client.agent.service.deregister("web-after");
      await waitFor(async () => (await upstream("web")).length === 2, { what: "web back to 2 peers" });
    }
    for (const bad of ["abc", "-1", "1;2", "", "12345678901234567"]) {
      const r = await control("GET", `/version?after=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, `after=${bad}: ${r.status} ${r.text}`);
      assert.match(r.text, /after/);
    }
  });

  it("the control listener is not reachable through the public port", async () => {
    for (const p of [
      "/sets",
      "/version",
      "/stats",
      "/_dockside/sets",
      "/_dockside/status",
      "/_dockside/metrics",
    ]) {
      assert.equal((await get(edge.url, p)).status, 404, p);
    }
    const post = await fetch(`${edge.url}/sets`, { method: "POST", body: "version 99999999\nset svc_web\n" });
    assert.equal(post.status, 404);
    assert.equal((await get(edge.url, "/web/")).status, 200, "the set was not emptied");
  });

  it("counts requests per instance in nginx, on /metrics and the status page", async () => {
    for (let i = 0; i < 20; i++) await get(edge.url, "/web/");
    const status = await edge.status();
    const web = status.services.find((s) => s.name === "web")!;
    const counted = web.instances.filter((i) => (i as { figures?: { requests: number } }).figures?.requests);
    assert.ok(
      counted.length >= 2,
      `${JSON.stringify(web.instances)}; nginx: ${(await control("GET", "/stats")).text}`,
    );
    assert.ok(
      (await edge.metric("templater_instance_requests_total", {
        service: "web",
        instance: `${ips[0]}:8080`,
      })) > 0,
    );
  });

  it("the templater killed with kill -9 from the host under load: nginx keeps serving, the next templater adopts it", async () => {
    const templaterPid = async () => {
      const top = (await edge.container.top({ ps_args: "-o pid,args" })) as { Processes: string[][] };
      const row = top.Processes.find(
        (p) => p.join(" ").includes("/app/main.mjs") && !p.join(" ").includes("edge-init"),
      );
      return row ? Number(row[0]) : undefined;
    };
    await client.agent.service.deregister("web-3");
    await register("web-1", "web", ips[0]!);
    await register("web-2", "web", ips[1]!);
    await waitFor(async () => (await upstream("web")).length === 2, { what: "web has 2 peers" });
    const generation = await edge.generation();
    const pid = await templaterPid();
    assert.ok(pid, "the templater's host pid");
    const load = startLoad({
      url: `${edge.url}/web/`,
      rate: 300,
      connections: 16,
      durationMs: 60_000,
    });
    await delay(1000);
    process.kill(pid, "SIGKILL");
    await waitFor(async () => (await templaterPid()) !== undefined && (await templaterPid()) !== pid, {
      what: "a new templater",
      timeoutMs: 10_000,
    });
    await waitFor(async () => (await fetch(`${edge.opsUrl}/health`).catch(() => undefined))?.ok === true, {
      what: "the new templater healthy",
      timeoutMs: 20_000,
    });
    await delay(1000);
    const r = await load.stop();
    console.log(
      `templater kill -9 under 300 req/s: sent ${r.sent}, failed ${r.failed}: ${JSON.stringify(r.failures.slice(0, 5))}`,
    );
    assert.equal(r.failed, 0, JSON.stringify(r.failures.slice(0, 10)));
    assert.equal(await edge.generation(), generation, "the same generation is served");
    const adopted = (await edge.logLines()).find((l) => l.msg === "adopted the running nginx");
    assert.ok(adopted, "the new templater adopted nginx");
    await register("web-3", "web", ips[2]!);
    await waitFor(async () => (await upstream("web")).length === 3, { what: "the next change applied" });
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add((await get(edge.url, "/web/")).body);
    assert.ok(seen.has(workloads[2]!.name), "the new instance answers");
  });

  it("docker exec nginx -T and nginx -s reload work on the live generation", async () => {
    const generation = await edge.generation();
    const t = await edge.exec(["nginx", "-T"]);
    assert.equal(t.exitCode, 0, t.output);
    assert.match(t.output, new RegExp(`return 200 "${generation}\\\\n"`), "the live generation's config");
    assert.match(t.output, /upstream svc_web \{/);
    const r = await edge.exec(["nginx", "-s", "reload"]);
    assert.equal(r.exitCode, 0, r.output);
    await waitFor(async () => (await get(edge.url, "/web/")).status === 200, {
      what: "serving after the reload",
    });
    assert.equal(await edge.generation(), generation);
  });

  it("old workers: after a route reload, an instance removed 100 ms later gets no request from any worker", async () => {
    // the victim logs every request it answers (busybox httpd -vv, on stderr; Docker timestamps each line)
    const victim = await createWorkload(scope, {
      network: network.name,
      cmd: [
        "sh",
        "-c",
        "mkdir -p /www && hostname > /www/index.html; trap 'exit 0' TERM; httpd -f -vv -p 8080 -h /www & wait",
      ],
    });
    const victimIp = await containerIp(victim.id, network.name);
    await client.agent.service.deregister("web-3");
    await register("web-1", "web", ips[0]!);
    await register("web-2", "web", ips[1]!);
    await register("web-victim", "web", victimIp);
    await waitFor(async () => (await upstream("web")).length === 3, { what: "web = web-1, web-2, victim" });
    // busybox httpd closes every connection and forks per request: 100 req/s, so what is
    // measured is nginx, not a starved upstream on a loaded machine
    const load = startLoad({ url: `${edge.url}/web/`, rate: 100, connections: 16, durationMs: 60_000 });
    try {
      await delay(1000); // every worker holds keep-alive connections
      const generation = await edge.generation();
      const r0 = await reloads();
      await register("route-1", `route${Date.now() % 100000}`, ips[1]!); // a new route: a reload
      await waitFor(async () => (await reloads()) > r0, { what: "the route reload", intervalMs: 10 });
      await delay(100);
      await client.agent.service.deregister("web-victim");
      await waitFor(async () => !(await upstream("web")).includes(`${victimIp}:8080`), {
        what: "the victim out of the pushed set",
        intervalMs: 5,
      });
      const removedAt = Date.now();
      assert.notEqual(await edge.generation(), generation, "nginx reloaded meanwhile");
      await delay(3000); // longer than keepalive_min_timeout: old workers done
      const logs = await victim.container.logs({ stdout: true, stderr: true, timestamps: true });
      const served = String(logs)
        .split("\n")
        .map((l) => /(\d{4}-\d\d-\d\dT[\d:.]+Z) .*response:/.exec(l)?.[1])
        .filter((t): t is string => t !== undefined)
        .map((t) => Date.parse(t));
      // The victim stamps a request when its forked httpd answers it: on a busy machine that comes
      // tens of ms after nginx sent it (CI run 10, both cores busy: 35 and 65 ms). An old worker
      // with a stale set would keep sending for keepalive_min_timeout (3 s), far past 250 ms.
      const late = served.filter((t) => t > removedAt + 250);
      console.log(`victim: ${served.length} requests before its removal, ${late.length} after`);
      assert.ok(served.length > 20, `the victim took traffic first (${served.length})`);
      assert.equal(
        late.length,
        0,
        `requests after removal at ${new Date(removedAt).toISOString()}: ${late
          .slice(0, 5)
          .map((t) => new Date(t).toISOString())
          .join(", ")}`,
      );
      const r = await load.stop();
      assert.equal(r.failed, 0, JSON.stringify(r.failures.slice(0, 10)));
    } finally {
      await load.stop();
    }
  });
});
