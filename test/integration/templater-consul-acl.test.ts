// Issue 10 items 4 and 6 (templater side): a real Consul 1.8.7 with ACLs, default_policy "deny".
// With the minimal policy the README documents the edge routes; with no token a fresh edge
// still starts nginx answering 503, reports permission denied and is unhealthy; when the
// running edge's token loses node:read it keeps its last good config, reports permission
// denied and serves (0 failed requests). Over HTTPS with the CA from the agent, the same works.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, it } from "node:test";
import { policies, startSecureConsul, type SecureConsul } from "../helpers/consul-secure.ts";
import { containerIp, createNetwork, type TestNetwork } from "../helpers/docker.ts";
import { startEdge, type EdgeHandle } from "../helpers/edge.ts";
import { startLoad } from "../helpers/load.ts";
import { testScope } from "../helpers/scope.ts";
import { delay, waitFor } from "../helpers/wait.ts";
import { createWorkload } from "../helpers/workload.ts";

interface Health {
  ok: boolean;
  consulState: { kind: string; message: string | null };
}
const health = async (edge: EdgeHandle) => {
  const res = await fetch(`${edge.opsUrl}/health`);
  return { status: res.status, body: (await res.json()) as Health };
};
const upstream = async (edge: EdgeHandle, name: string) =>
  (await edge.status()).services.find((s) => s.name === name)?.upstream ?? [];

describe("edge against Consul with ACLs (default deny)", { timeout: 300_000 }, () => {
  const scope = testScope();
  let network: TestNetwork;
  let consul: SecureConsul;
  let ips: string[];

  before(async () => {
    network = await createNetwork(scope);
    consul = await startSecureConsul(scope, { network, tls: true });
    const workloads = await Promise.all([0, 1].map(() => createWorkload(scope, { network: network.name })));
    ips = await Promise.all(workloads.map((w) => containerIp(w.id, network.name)));
    for (const [i, ip] of ips.entries()) {
      const r = await consul.api("PUT", "/v1/agent/service/register", {
        ID: `web-${i}`,
        Name: "web",
        Address: ip,
        Port: 8080,
        Tags: ["http"],
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
  });

  it("a fresh edge with no token starts nginx answering 503, reports permission denied, is unhealthy", async () => {
    const edge = await startEdge(scope, { network, consulAddr: consul.internalAddr, waitHealthy: false });
    await waitFor(async () => (await health(edge)).body.consulState?.kind === "denied", {
      what: "permission denied on /health",
      timeoutMs: 20_000,
    });
    const h = await health(edge);
    assert.equal(h.status, 503);
    assert.equal(h.body.ok, false);
    assert.match(h.body.consulState.message ?? "", /ACL|denied|token/i);
    await waitFor(async () => (await fetch(`${edge.url}/web/`).catch(() => undefined))?.status === 503, {
      what: "nginx answering 503 (not a closed port)",
      timeoutMs: 20_000,
    });
    const res = await fetch(`${edge.url}/anything`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.equal(await edge.metric("templater_consul_problem", { kind: "denied" }), 1);
    const lines = (await edge.logLines()).filter((l) => l.problem === "denied");
    const reasons = lines.map((l) => String(l.reason));
    assert.ok(lines.length >= 1, "permission denied is logged");
    assert.equal(
      new Set(reasons).size,
      reasons.length,
      `each reason once, not per retry: ${reasons.join(" | ")}`,
    );
    assert.ok(
      !(await edge.logLines()).some((l) => String(l.msg).includes("unreachable")),
      "never 'unreachable'",
    );
    // Said at start-up, in the words that name the setting (token/self, or the first empty answer).
    const said = (await edge.logLines()).filter((l) => l.problem === "denied").map((l) => String(l.reason));
    assert.ok(
      said.some((r) => /CONSUL_HTTP_TOKEN|node_prefix/.test(r)),
      `the reason names what to set: ${said.join(" | ")}`,
    );
  });

  it("a token Consul does not know is reported as permission denied at start-up, with Consul's words", async () => {
    const bogus = "11111111-2222-4333-8444-555555555555";
    const edge = await startEdge(scope, {
      network,
      consulAddr: consul.internalAddr,
      env: { CONSUL_HTTP_TOKEN: bogus },
      waitHealthy: false,
    });
    await waitFor(async () => (await health(edge)).body.consulState?.kind === "denied", {
      what: "permission denied on /health",
      timeoutMs: 20_000,
    });
    assert.match((await health(edge)).body.consulState.message ?? "", /ACL not found/);
    assert.ok(!JSON.stringify(await edge.logLines()).includes(bogus), "the token never appears in logs");
    assert.ok(!JSON.stringify(await edge.status()).includes(bogus), "nor on the status page");
  });

  it("with the minimal policy it routes; when the token loses node:read it keeps the last good config and serves", async () => {
    const { secret, policyId } = await consul.tokenWith("templater", policies.templater);
    const edge = await startEdge(scope, {
      network,
      consulAddr: consul.internalAddr,
      env: { CONSUL_HTTP_TOKEN: secret },
    });
    await waitFor(async () => (await upstream(edge, "web")).length === 2, { what: "2 web servers routed" });
    const generation = await edge.generation();
    const load = startLoad({ url: `${edge.url}/web/`, rate: 30, connections: 4, durationMs: 120_000 });
    scope.defer("load", () => load.stop());

    await consul.setRules(policyId, "templater", 'service_prefix "" { policy = "read" }\n');
    // A change makes the edge read the catalog again, now without node:read.
    await consul.api("PUT", "/v1/agent/service/register", {
      ID: "web-2",
      Name: "web",
      Address: ips[0],
      Port: 8081,
      Tags: ["http"],
    });
    await waitFor(async () => (await health(edge)).body.consulState.kind === "denied", {
      what: "permission denied on /health",
      timeoutMs: 20_000,
    });
    await delay(3_000); // denied for a while: retries, a load on the edge
    assert.equal((await health(edge)).body.consulState.kind, "denied");
    console.log(`# denied: ${(await health(edge)).body.consulState.message}`);
    assert.equal((await upstream(edge, "web")).length, 2, "the last good config stays");
    assert.equal(await edge.generation(), generation);
    const status = await edge.status();
    assert.equal(status.consul.kind, "denied");
    const page = await (await fetch(`${edge.opsUrl}/`)).text();
    assert.match(page, /permission denied/);

    // node:read back: the change is routed, without restarting anything.
    await consul.setRules(policyId, "templater", policies.templater);
    await waitFor(async () => (await upstream(edge, "web")).length === 3, {
      what: "3 web servers once node:read is back",
      timeoutMs: 20_000,
    });
    const r = await load.stop();
    assert.ok(r.ok > 50, `only ${r.ok} answered`);
    console.log(`# load: ${r.ok} ok, ${r.failed} failed`);
    assert.equal(r.failed, 0, JSON.stringify(r.failures.slice(0, 5)));
  });

  it("a lost permission shows as denied within --consul-wait even when nothing changes", async () => {
    const { secret, policyId } = await consul.tokenWith("templater-idle", policies.templater);
    const edge = await startEdge(scope, {
      network,
      consulAddr: consul.internalAddr,
      env: { CONSUL_HTTP_TOKEN: secret, TEMPLATER_CONSUL_WAIT: "2s", TEMPLATER_CONSUL_SERVICE_WAIT: "2s" },
    });
    await waitFor(async () => (await upstream(edge, "web")).length >= 2, { what: "web routed" });
    const before = (await upstream(edge, "web")).length;
    await consul.setRules(policyId, "templater-idle", 'service_prefix "" { policy = "read" }\n');
    await waitFor(async () => (await health(edge)).body.consulState.kind === "denied", {
      what: "denied with no catalog change",
      timeoutMs: 15_000,
    });
    assert.equal((await upstream(edge, "web")).length, before, "the last good config stays");
  });

  it("a deleted token (403 on every read, the per-service watches too) keeps the live sets and serves; made again, the change made meanwhile is routed", async () => {
    // A token Consul no longer knows answers 403 "ACL not found" everywhere, unlike a narrowed
    // policy (filtered, empty answers). The fast path's own watches must fail closed too.
    const { secret, accessor, policyId } = await consul.tokenWith("templater-deleted", policies.templater);
    // The same token again (Consul takes given IDs), once it has been deleted.
    const makeTokenAgain = async () => {
      const r = await consul.api("PUT", "/v1/acl/token", {
        AccessorID: accessor,
        SecretID: secret,
        Description: "templater-deleted",
        Policies: [{ ID: policyId }],
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    };
    const edge = await startEdge(scope, {
      network,
      consulAddr: consul.internalAddr,
      env: { CONSUL_HTTP_TOKEN: secret, TEMPLATER_CONSUL_WAIT: "2s", TEMPLATER_CONSUL_SERVICE_WAIT: "2s" },
    });
    await waitFor(async () => (await upstream(edge, "web")).length >= 2, { what: "web routed" });
    const watchRead = (result: string) =>
      edge.metric("templater_consul_requests_total", { endpoint: "health/service", result });
    await waitFor(async () => (await watchRead("ok")) >= 1, { what: "web's own watch answering" });
    const before = [...(await upstream(edge, "web"))].sort();
    const generation = await edge.generation();
    const load = startLoad({ url: `${edge.url}/web/`, rate: 30, connections: 4, durationMs: 120_000 });
    scope.defer("load", () => load.stop());

    assert.equal((await consul.api("DELETE", `/v1/acl/token/${accessor}`)).status, 200);
    await waitFor(async () => (await health(edge)).body.consulState.kind === "denied", {
      what: "permission denied on /health",
      timeoutMs: 20_000,
    });
    await waitFor(async () => (await watchRead("denied")) >= 1, {
      what: "web's own watch answered 403",
      timeoutMs: 20_000,
    });
    assert.match((await health(edge)).body.consulState.message ?? "", /ACL not found/);
    // Every long poll has been asked again with the deleted token (--consul-wait and
    // --consul-service-wait 2s): a change now is one the templater cannot see, and what is live
    // must not move.
    await delay(2_500);
    const added = await createWorkload(scope, { network: network.name });
    const addedIp = await containerIp(added.id, network.name);
    const reg = await consul.api("PUT", "/v1/agent/service/register", {
      ID: "web-deleted-token",
      Name: "web",
      Address: addedIp,
      Port: 8080,
      Tags: ["http"],
    });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    try {
      await delay(2_000);
      assert.equal((await health(edge)).body.consulState.kind, "denied");
      assert.deepEqual([...(await upstream(edge, "web"))].sort(), before, "the live set stays as it was");
      assert.equal(await edge.generation(), generation, "no reload while denied");

      // The same token again: the change made while it was gone reaches nginx, nothing restarted.
      await makeTokenAgain();
      await waitFor(async () => (await upstream(edge, "web")).some((u) => u.startsWith(`${addedIp}:`)), {
        what: "the instance registered while the token was gone",
        timeoutMs: 20_000,
      });
      // Routed by the first read that works; "ok" once no read fails any more (each retries alone).
      await waitFor(async () => (await health(edge)).body.consulState.kind === "ok", {
        what: "Consul ok on /health again",
        timeoutMs: 20_000,
      });
      const r = await load.stop();
      console.log(`# load: ${r.ok} ok, ${r.failed} failed`);
      assert.ok(r.ok > 50, `only ${r.ok} answered`);
      assert.equal(r.failed, 0, JSON.stringify(r.failures.slice(0, 5)));
    } finally {
      // The next test counts web's instances.
      await consul.api("PUT", "/v1/agent/service/deregister/web-deleted-token");
    }
  });

  it("a token allowed one service by name sees it (Consul 1.8 hides it from per-node reads)", async () => {
    const { secret } = await consul.tokenWith(
      "web-only",
      'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }\n',
    );
    // What the per-node read returns to that token: nothing, on Consul 1.8.7.
    const nodes = (await consul.api("GET", "/v1/catalog/nodes", undefined, secret)).body as {
      Node: string;
    }[];
    const perNode = await consul.api("GET", `/v1/catalog/node/${nodes[0]!.Node}`, undefined, secret);
    assert.deepEqual((perNode.body as { Services: object }).Services, {});
    const edge = await startEdge(scope, {
      network,
      consulAddr: consul.internalAddr,
      env: { CONSUL_HTTP_TOKEN: secret },
    });
    await waitFor(async () => (await upstream(edge, "web")).length === 3, { what: "3 web servers routed" });
    assert.equal((await health(edge)).body.consulState.kind, "ok");
    assert.ok(
      (await edge.metric("templater_consul_requests_total", { endpoint: "catalog/service", result: "ok" })) >=
        1,
    );
  });

  it("over HTTPS with the agent's CA and the minimal policy it routes", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-ca-"));
    scope.defer(`ca dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    writeFileSync(path.join(dir, "ca.pem"), consul.caPem!);
    chmodSync(path.join(dir, "ca.pem"), 0o644);
    const { secret } = await consul.tokenWith("templater-tls", policies.templater);
    const edge = await startEdge(scope, {
      network,
      consulAddr: consul.internalHttpsAddr!,
      env: {
        CONSUL_HTTP_TOKEN: secret,
        CONSUL_CACERT: "/etc/dockside/consul-ca.pem",
        CONSUL_TLS_SERVER_NAME: consul.serverName!,
      },
      binds: [`${path.join(dir, "ca.pem")}:/etc/dockside/consul-ca.pem:ro`],
    });
    await waitFor(async () => (await upstream(edge, "web")).length >= 2, { what: "web routed over HTTPS" });
    assert.equal((await health(edge)).body.consulState.kind, "ok");
  });
});
