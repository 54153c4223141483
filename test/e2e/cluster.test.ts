// Several hosts, for real: 3 Consul servers (TLS, gossip encryption, ACLs deny by default),
// 3 Docker hosts (each its own dockerd, Docker-in-Docker) with a client agent and a
// registrator in published mode, one edge (templater + nginx) with its own client agent.
// The faults are the real ones: a host SIGKILLed, the raft leader SIGKILLed, an agent
// restarted empty, a registrator with a token that cannot write, a templater whose token
// can no longer read. Load is a keep-alive GET client against the edge.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { execa } from "execa";
import { ClusterLab, docker } from "../../scripts/lab/cluster/cluster.ts";
import { routedByNginx } from "../../scripts/lab/state.ts";
import { waitForInstances } from "../../scripts/lab/wait.ts";
import { requireDocker } from "../helpers/docker.ts";
import { startLoad, type Load, type LoadResult } from "../helpers/load.ts";

const lab = new ClusterLab({ prefix: "dockside-cluster-test", subnet: "10.213.2" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hostOf(address: string): string | undefined {
  const ip = address.split(":")[0];
  return lab.plan.hosts.find((h) => h.ip === ip)?.node;
}

async function routedWeb(): Promise<string[]> {
  return [...((await routedByNginx(lab.opsUrl())).get("web") ?? [])];
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(
    `${what}: not within ${timeoutMs} ms (last error: ${(last as Error | undefined)?.message ?? "none"})`,
  );
}

/** Every web registration Consul holds: "node/id", sorted. */
async function webRegistrations(): Promise<string[]> {
  const api = await lab.api();
  const token = await lab.managementToken();
  const entries = await api.request<{ Node: string; ServiceID: string }[]>("GET", "/v1/catalog/service/web", {
    token,
  });
  return entries.map((e) => `${e.Node}/${e.ServiceID}`).sort();
}

function webLoad(): Load {
  // ~60 req/s over keep-alive connections, bounded: it stops by itself after 3 minutes.
  return startLoad({ url: `${lab.edgeUrl()}/web/`, rate: 60, durationMs: 180_000, connections: 8 });
}

function assertNoFailures(r: LoadResult, what: string): void {
  console.log(`# ${what}: ${r.sent} GETs, ${r.failed} failed`);
  assert.ok(r.ok > 100, `${what}: the load ran (${r.ok} ok)`);
  assert.equal(
    r.failed,
    0,
    `${what}: ${r.failed} of ${r.sent} GETs failed: ${JSON.stringify(r.failures.slice(0, 10))}`,
  );
}

async function allWebRouted(timeoutMs = 120_000): Promise<void> {
  await waitForInstances(
    `${lab.edgeUrl()}/web/`,
    async () => (await lab.instances("web")).filter((c) => c.state === "running").map((c) => c.id),
    { timeoutMs },
  );
}

describe("cluster: 3 Consul servers, 3 Docker hosts, one edge", { timeout: 600_000 }, () => {
  before(
    async () => {
      await requireDocker();
      await lab.down(); // a run killed half-way leaves its cluster behind
      await lab.up({ web: 9, api: 2 });
      await lab.waitRouted(["web", "api"]);
    },
    { timeout: 300_000 },
  );
  after(() => lab.down(), { timeout: 180_000 });

  test("9 web instances over 3 hosts all answer through the edge, by path and by Host:", async () => {
    const api = await lab.api();
    const token = await lab.managementToken();
    const entries = await api.request<{ Node: string }[]>("GET", "/v1/catalog/service/web", { token });
    const perNode = new Map<string, number>();
    for (const e of entries) perNode.set(e.Node, (perNode.get(e.Node) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(perNode), { "host-1": 3, "host-2": 3, "host-3": 3 });
    const expected = async () => (await lab.instances("web")).map((c) => c.id);
    const byPath = await waitForInstances(`${lab.edgeUrl()}/web/`, expected, { timeoutMs: 30_000 });
    assert.equal(byPath.seen.size, 9);
    const byHost = await waitForInstances(`${lab.edgeUrl()}/`, expected, {
      timeoutMs: 30_000,
      headers: { Host: "web.localhost" },
    });
    assert.equal(byHost.seen.size, 9);
    const routed = await routedWeb();
    assert.deepEqual(new Set(routed.map(hostOf)), new Set(["host-1", "host-2", "host-3"]));
  });

  test("a host SIGKILLed under load: its instances leave nginx within 5 s, 0 failed GETs, back by themselves", async () => {
    const load = webLoad();
    try {
      await sleep(1500);
      const killedAt = Date.now();
      await lab.killHost("host-3");
      const goneMs = await waitFor("host-3's instances gone from nginx", 30_000, async () =>
        (await routedWeb()).some((a) => hostOf(a) === "host-3") ? undefined : Date.now() - killedAt,
      );
      console.log(`# host-3 killed: its instances left nginx after ${goneMs} ms`);
      assert.ok(goneMs <= 5000, `host-3's instances left nginx after ${goneMs} ms (goal ≤ 5 s)`);
      assert.equal((await routedWeb()).length, 6, "the other hosts' 6 instances stay routed");
      await sleep(1000);
      const startedAt = Date.now();
      await lab.startHost("host-3");
      // No manual step: the host's engine restarts its containers, the agent rejoins, the
      // registrator registers again, the templater routes them.
      const backMs = await waitFor("host-3's instances routed again", 90_000, async () =>
        (await routedWeb()).filter((a) => hostOf(a) === "host-3").length === 3
          ? Date.now() - startedAt
          : undefined,
      );
      console.log(`# host-3 started again: its 3 instances routed after ${backMs} ms`);
      await sleep(1000);
    } finally {
      assertNoFailures(await load.stop(), "host loss");
    }
    await allWebRouted();
  });

  test("the raft leader SIGKILLed under load: 0 failed GETs; registration works after the election", async () => {
    const load = webLoad();
    const old = await lab.leader();
    try {
      await sleep(1000);
      await docker(["kill", old.container]);
      const next = await waitFor("a new leader", 60_000, async () => {
        const l = await lab.leader();
        return l.node !== old.node ? l : undefined;
      });
      console.log(`# leader ${old.node} killed; ${next.node} leads`);
      // Registration after the election: one more instance, on whichever host the spread picks.
      await lab.scale("web", 10);
      await allWebRouted(60_000);
      assert.equal((await routedWeb()).length, 10);
    } finally {
      assertNoFailures(await load.stop(), "leader loss");
      await docker(["start", old.container]);
    }
    await lab.scale("web", 9);
    await allWebRouted();
  });

  test("a client agent restarted empty: that host's instances are back within 2 s of it answering", async () => {
    // Watched from the host itself, by the registrator's container (host network, its token):
    // when the new agent first answers, and when it holds host-1's 3 web instances again.
    const watch = `
      const https = require("node:https"), fs = require("node:fs");
      const ca = fs.readFileSync(process.env.CONSUL_CACERT);
      const get = () => new Promise((done) => {
        const q = https.get({ host: "127.0.0.1", port: 8501, path: "/v1/agent/services", ca, timeout: 1000,
          headers: { "X-Consul-Token": process.env.CONSUL_HTTP_TOKEN } }, (res) => {
          let b = ""; res.on("data", (c) => (b += c)); res.on("end", () => done({ status: res.statusCode, body: b }));
        });
        q.on("error", () => done(null)); q.on("timeout", () => q.destroy());
      });
      (async () => {
        let answered = 0; const t0 = Date.now();
        while (Date.now() - t0 < 60000) {
          const r = await get();
          if (r) {
            answered ||= Date.now();
            if (r.status === 200 && Object.values(JSON.parse(r.body)).filter((s) => s.Service === "web").length >= 3)
              return console.log(JSON.stringify({ answered, back: Date.now() }));
          }
          await new Promise((ok) => setTimeout(ok, 20));
        }
        console.log(JSON.stringify({ answered, back: 0 }));
      })();`;
    await lab.hostDocker("host-1", ["rm", "-f", "consul-agent"]);
    const watching = lab.hostDocker("host-1", ["exec", "registrator", "node", "-e", watch], {
      timeoutMs: 90_000,
    });
    await sleep(500);
    await lab.startAgent("host-1", { fresh: true });
    const { answered, back } = JSON.parse((await watching).stdout.trim()) as {
      answered: number;
      back: number;
    };
    assert.ok(answered > 0, "the new agent answered");
    assert.ok(back > 0, "host-1's instances came back to its agent");
    const ms = back - answered;
    console.log(`# host-1's agent restarted empty: its 3 web instances back ${ms} ms after it answered`);
    assert.ok(ms <= 2000, `back ${ms} ms after the agent answered (goal ≤ 2 s)`);
    await allWebRouted();
  });

  test("a registrator whose token lacks service:write: clear log line, retries, nothing else touched", async () => {
    const api = await lab.api();
    const token = await lab.managementToken();
    await api.request("PUT", "/v1/acl/policy", {
      token,
      body: {
        Name: "read-only-test",
        Rules: 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }\n',
      },
    });
    const weak = await api.request<{ SecretID: string }>("PUT", "/v1/acl/token", {
      token,
      body: {
        Description: "registrator without service:write (test)",
        Policies: [{ Name: "read-only-test" }],
      },
    });
    const heldBefore = await webRegistrations();
    await lab.startRegistrator("host-2", { token: weak.SecretID });
    try {
      // A new instance on host-2 that this registrator cannot register.
      await lab.startInstance({ host: "host-2", name: "web-900" }, "web");
      const lines = await waitFor("two permission-denied log lines (a retry)", 60_000, async () => {
        const logs = (await lab.hostDocker("host-2", ["logs", "registrator"])).all;
        const denied = logs.split("\n").filter((l) => /permission denied|ACL|403/i.test(l));
        return denied.length >= 2 ? denied : undefined;
      });
      console.log(`# registrator with a read-only token logged: ${lines[0]}`);
      assert.match(lines[0]!, /token|ACL|service:write|permission/i);
      // Nothing else touched: every registration Consul held before it still holds, no other
      // appeared (the new instance could not be registered).
      assert.deepEqual(await webRegistrations(), heldBefore);
    } finally {
      await lab.hostDocker("host-2", ["rm", "-f", "web-900"], { reject: false });
      await lab.startRegistrator("host-2");
    }
    await allWebRouted();
  });

  test("a registrator that does not trust the agent's certificate (wrong CA): clear log line, retries, nothing touched", async () => {
    const heldBefore = await webRegistrations();
    // A CA of its own that signed nothing here.
    const ca = await execa("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "/dev/null",
      "-subj",
      "/CN=not the cluster CA",
      "-days",
      "1",
    ]);
    await docker(
      [
        "exec",
        "-i",
        lab.plan.hosts[1]!.container,
        "sh",
        "-c",
        "mkdir -p /tmp/wrong-ca && cat > /tmp/wrong-ca/ca.pem",
      ],
      {
        input: ca.stdout,
      },
    );
    await lab.startRegistrator("host-2", {
      mounts: ["/tmp/wrong-ca:/wrong-ca:ro"],
      env: { CONSUL_CACERT: "/wrong-ca/ca.pem" },
    });
    try {
      const lines = await waitFor("a TLS log line", 60_000, async () => {
        const logs = (await lab.hostDocker("host-2", ["logs", "registrator"])).all;
        const bad = logs.split("\n").filter((l) => /certificate|issuer|self.signed/i.test(l));
        return bad.length >= 1 ? bad : undefined;
      });
      console.log(`# registrator with a wrong CA logged: ${lines[0]}`);
      // It logs a problem once per change; that it keeps retrying shows in its error counter.
      const errors = async () => {
        const res = await fetch(`http://${lab.plan.hosts[1]!.ip}:9101/metrics`, {
          signal: AbortSignal.timeout(3000),
        });
        const text = await res.text();
        return [...text.matchAll(/^registrator_errors_total\{[^}]*\} (\d+)/gm)].reduce(
          (a, m) => a + Number(m[1]),
          0,
        );
      };
      const first = await errors();
      const later = await waitFor("more failed attempts", 30_000, async () => {
        const n = await errors();
        return n > first ? n : undefined;
      });
      console.log(`# registrator with a wrong CA: errors_total ${first} → ${later} (retrying)`);
      assert.deepEqual(await webRegistrations(), heldBefore);
    } finally {
      await lab.startRegistrator("host-2");
    }
    await allWebRouted();
  });

  test("the templater left with no usable token: last good config kept, the error on the status page", async () => {
    const api = await lab.api();
    const token = await lab.managementToken();
    const templaterSecret = (await lab.files()).secrets.tokens.templater!;
    const self = await api.request<{ AccessorID: string; Description: string }>("GET", "/v1/acl/token/self", {
      token: templaterSecret,
    });
    const routedBefore = (await routedWeb()).sort();
    // The token stays but grants nothing: Consul answers as to an anonymous caller.
    await api.request("PUT", `/v1/acl/token/${self.AccessorID}`, {
      token,
      body: { Description: self.Description, Policies: [] },
    });
    try {
      // A change the templater must not see while denied: one more instance.
      await lab.scale("web", 10);
      const status = await waitFor("the status page reporting the denial", 30_000, async () => {
        const res = await fetch(`${lab.opsUrl()}/status`, { signal: AbortSignal.timeout(3000) });
        const s = (await res.json()) as { consul: { kind?: string; message?: string | null } };
        return s.consul.kind && s.consul.kind !== "ok" ? s.consul : undefined;
      });
      console.log(`# templater without a usable token: status page says ${JSON.stringify(status)}`);
      assert.equal(status.kind, "denied");
      assert.deepEqual((await routedWeb()).sort(), routedBefore, "the last good instance set keeps serving");
      const r = await fetch(`${lab.edgeUrl()}/web/`, { signal: AbortSignal.timeout(3000) });
      assert.equal(r.status, 200);
    } finally {
      await api.request("PUT", `/v1/acl/token/${self.AccessorID}`, {
        token,
        body: { Description: self.Description, Policies: [{ Name: "templater" }] },
      });
    }
    // Recovers by itself once the token reads again, and routes the change it missed.
    await allWebRouted(60_000);
    assert.equal((await routedWeb()).length, 10);
    await lab.scale("web", 9);
  });
});
