// The several-hosts lab, measured on its own cluster (dockside-cluster-bench, 10.213.3.0/24;
// removed at the end, also on Ctrl-C):
//  footprint  memory (outer containers + each host's inner cgroup) and disk (host volumes,
//             image copy) of the cluster lab with web=9 api=2;
//  host-loss  a host SIGKILLed, --kills times (round robin over the hosts), under a keep-alive
//             GET load: kill → its last instance gone from nginx (p50/max), failed GETs, and
//             start → its instances routed again;
//  bulk       --bulk containers (busybox httpd, one published port each) started across the 3
//             hosts at once → all routed: time from the first start and from the last start.
//
//   node bench/cluster.ts [--part all|footprint|host-loss|bulk] [--kills 5] [--bulk 300]

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { execa } from "execa";
import { sleep } from "../lib/backoff.ts";
import { ClusterLab } from "../scripts/lab/cluster/cluster.ts";
import { docker } from "../scripts/lib/docker-cli.ts";
import { publishedPort } from "../scripts/lab/cluster/plan.ts";
import { routedByNginx } from "../scripts/lab/state.ts";
import { startLoad } from "../test/helpers/load.ts";
import { waitFor } from "../test/helpers/wait.ts";
import { formatSummary, mib, summarise } from "./lib/stats.ts";

const { values } = parseArgs({
  options: {
    part: { type: "string", default: "all" },
    kills: { type: "string", default: "5" },
    bulk: { type: "string", default: "300" },
  },
});
const part = values.part!;
const lab = new ClusterLab({ prefix: "dockside-cluster-bench", subnet: "10.213.3", verbose: true });

let tornDown = false;
async function teardown() {
  if (tornDown) return;
  tornDown = true;
  console.log("bench: removing the bench cluster");
  await lab.down();
}
process.on("SIGINT", () => void teardown().then(() => process.exit(130)));

const hostOf = (address: string) => lab.plan.hosts.find((h) => h.ip === address.split(":")[0])?.node;
async function routed(service: string): Promise<string[]> {
  return [...((await routedByNginx(lab.opsUrl())).get(service) ?? [])];
}

/** The moment `fn` holds, polled every 50 ms (the edge may be busy reloading: errors ask again). */
const waitUntil = (what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<number> =>
  waitFor(async () => (await fn()) && Date.now(), { what, timeoutMs, intervalMs: 50 });

async function du(path: string): Promise<number> {
  const r = await execa("du", ["-sb", path], { reject: false });
  return Number(r.stdout.split("\t")[0] ?? 0);
}

function cgroupMemory(parent: string): number {
  try {
    const stat = readFileSync(`/sys/fs/cgroup/memory${parent}/memory.stat`, "utf8");
    // Resident use without the page cache: what the processes hold.
    const v = (k: string) => Number(new RegExp(`^total_${k} (\\d+)$`, "m").exec(stat)?.[1] ?? 0);
    return v("rss") + v("shmem");
  } catch {
    return 0;
  }
}

async function footprint(label: string) {
  const names = (
    await docker(["ps", "--filter", `label=${lab.plan.label}=${lab.plan.prefix}`, "--format", "{{.Names}}"])
  ).stdout
    .split("\n")
    .filter(Boolean);
  const stats = (await docker(["stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", ...names]))
    .stdout;
  const parse = (s: string) => {
    const m = /^([\d.]+)([KMG]i?B)/.exec(s.trim());
    const unit: Record<string, number> = {
      KiB: 1024,
      MiB: 1024 ** 2,
      GiB: 1024 ** 3,
      kB: 1e3,
      MB: 1e6,
      GB: 1e9,
    };
    return m ? Number(m[1]) * (unit[m[2]!] ?? 1) : 0;
  };
  let outer = 0;
  for (const line of stats.split("\n").filter(Boolean)) outer += parse(line.split("\t")[1]!.split("/")[0]!);
  let inner = 0;
  for (const h of lab.plan.hosts) inner += cgroupMemory(`/${h.container}`);
  let volumes = 0;
  for (const h of lab.plan.hosts) {
    const mp = (await docker(["volume", "inspect", "-f", "{{.Mountpoint}}", h.volume])).stdout.trim();
    volumes += await du(mp);
  }
  const tars = await du(`${(await import("../scripts/lab/compose.ts")).repoRoot}/.cache/cluster/images`);
  console.log(
    `footprint (${label}): memory ${mib(outer + inner)} (outer containers ${mib(outer)}, inner containers ${mib(inner)}); ` +
      `disk ${mib(volumes + tars)} (3 host volumes ${mib(volumes)}, image tar ${mib(tars)})`,
  );
}

async function hostLoss(kills: number) {
  const gone: number[] = [];
  const back: number[] = [];
  const load = startLoad({ url: `${lab.edgeUrl()}/web/`, rate: 60, durationMs: 15 * 60_000, connections: 8 });
  try {
    for (let i = 0; i < kills; i++) {
      const host = lab.plan.hosts[i % lab.plan.hosts.length]!.node;
      await sleep(1500);
      const killedAt = Date.now();
      await lab.killHost(host);
      const goneAt = await waitUntil(
        `${host} gone`,
        60_000,
        async () => !(await routed("web")).some((a) => hostOf(a) === host),
      );
      gone.push(goneAt - killedAt);
      await sleep(1000);
      const startAt = Date.now();
      await lab.startHost(host);
      const backAt = await waitUntil(
        `${host} back`,
        120_000,
        async () => (await routed("web")).filter((a) => hostOf(a) === host).length === 3,
      );
      back.push(backAt - startAt);
      console.log(
        `host-loss ${i + 1}/${kills}: ${host} gone from nginx ${goneAt - killedAt} ms after SIGKILL, routed again ${backAt - startAt} ms after start`,
      );
    }
  } finally {
    const r = await load.stop();
    console.log(formatSummary("host killed → its instances gone from nginx", summarise(gone)));
    console.log(formatSummary("host started → its instances routed again", summarise(back)));
    console.log(
      `GETs during the kills: ${r.sent} sent, ${r.failed} failed ${JSON.stringify(r.failures.slice(0, 10))}`,
    );
  }
}

async function bulk(n: number) {
  const image = lab.images.busybox;
  await Promise.all(lab.plan.hosts.map((h) => lab.loadImages(h.node, [image])));
  const perHost = lab.plan.hosts.map((h, i) => ({
    host: h,
    names: Array.from({ length: n }, (_, k) => `bulk-${k + 1}`).filter(
      (_, k) => k % lab.plan.hosts.length === i,
    ),
  }));
  const started = Date.now();
  let lastStart = 0;
  await Promise.all(
    perHost.map(async ({ host, names }) => {
      // One shell per host runs its `docker run`s back to back (one docker exec each would
      // measure the CLI, not the cluster).
      const script = names
        .map(
          (name) =>
            `docker run -d --name ${name} --label dockside.workload=1 --label SERVICE_NAME=bulk --label SERVICE_TAGS=http ` +
            `-p ${publishedPort(name)}:3000 ${image} httpd -f -p 3000 -h / >/dev/null`,
        )
        .join(" && ");
      await docker(["exec", host.container, "sh", "-c", script], { timeoutMs: 20 * 60_000 });
      lastStart = Math.max(lastStart, Date.now());
    }),
  );
  const allAt = await waitUntil(
    "all bulk routed",
    10 * 60_000,
    async () => (await routed("bulk")).length === n,
  );
  console.log(
    `bulk: ${n} containers over ${lab.plan.hosts.length} hosts: all routed ${((allAt - started) / 1000).toFixed(1)} s after the first start, ` +
      `${((allAt - lastStart) / 1000).toFixed(1)} s after the last start (starting them took ${((lastStart - started) / 1000).toFixed(1)} s)`,
  );
  await footprint(`web=9 api=2 + ${n} bulk`);
}

try {
  await lab.down();
  const upStarted = Date.now();
  await lab.up({ web: 9, api: 2 });
  await lab.waitRouted(["web", "api"]);
  console.log(`bring-up (images already built): ${((Date.now() - upStarted) / 1000).toFixed(1)} s`);
  if (part === "all" || part === "footprint" || part === "bulk") await footprint("web=9 api=2");
  if (part === "all" || part === "host-loss") await hostLoss(Number(values.kills));
  if (part === "all" || part === "bulk") await bulk(Number(values.bulk));
} finally {
  await teardown();
}
