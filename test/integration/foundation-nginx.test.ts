// The harness itself: a real nginx with a generated config proxying to a workload container.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, it } from "node:test";
import { containerIp, createNetwork } from "../helpers/docker.ts";
import { startNginx, type NginxHandle } from "../helpers/nginx.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";
import { createWorkload, type Workload } from "../helpers/workload.ts";

function config(upstreams: string[]): string {
  return `
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path /tmp/client_body;
  proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi;
  scgi_temp_path /tmp/scgi;
  upstream backends {
${upstreams.map((u) => `    server ${u};`).join("\n")}
  }
  server {
    listen 8080;
    location /backend/ { proxy_pass http://backends/; }
  }
}
`;
}

describe("nginx with a generated config", { timeout: 120_000 }, () => {
  const scope = testScope();
  let nginx: NginxHandle;
  let workloads: Workload[];
  before(async () => {
    const network = await createNetwork(scope);
    workloads = await Promise.all([1, 2].map(() => createWorkload(scope, { network: network.name })));
    const ips = await Promise.all(workloads.map((w) => containerIp(w.id, network.name)));
    const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-nginx-"));
    scope.defer("nginx conf dir", () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, "nginx.conf"), config(ips.map((ip) => `${ip}:8080`)));
    nginx = await startNginx(scope, { confDir: dir, network });
  });

  it("proxies to every upstream", async () => {
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const res = await fetch(`${nginx.url}/backend/`);
        assert.equal(res.status, 200);
        seen.add((await res.text()).trim());
        return seen.size === 2;
      },
      { what: "answers from both workloads", timeoutMs: 10_000, intervalMs: 10 },
    );
    assert.deepEqual([...seen].sort(), workloads.map((w) => w.name).sort());
  });

  it("is nginx recent enough for keepalive_min_timeout", async () => {
    const r = await nginx.exec(["nginx", "-v"]);
    const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(r.output);
    assert.ok(m, r.output);
    const [maj, min, pat] = m.slice(1).map(Number) as [number, number, number];
    assert.ok(maj > 1 || min > 27 || (min === 27 && pat >= 4), `nginx ${m[0]} is older than 1.27.4`);
  });
});
