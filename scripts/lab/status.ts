// `npm run lab status`: one table joining the three views of each service — what
// Docker runs, what Consul holds (and its health), what nginx routes to now — and
// flags every place they disagree. The join is pure; the fetching is in lab.ts.

export interface DockerInstance {
  service: string;
  name: string;
  ip: string | undefined;
  state: string;
  health: string | undefined;
}

export interface ConsulInstance {
  service: string;
  id: string;
  address: string;
  port: number;
  status: "passing" | "warning" | "critical";
}

export interface StatusRow {
  service: string;
  container: string;
  address: string;
  docker: string;
  consul: string;
  nginx: string;
  problem: string;
}

export interface ServiceStatus {
  service: string;
  dockerRunning: number;
  consulPassing: number;
  consulTotal: number;
  nginx: number;
  rows: StatusRow[];
  ok: boolean;
}

export function joinStatus(
  docker: DockerInstance[],
  consul: ConsulInstance[],
  nginx: Map<string, Set<string>>,
): ServiceStatus[] {
  const services = [...new Set([...docker.map((d) => d.service), ...consul.map((c) => c.service)])].sort();
  return services.map((service) => {
    const ds = docker.filter((d) => d.service === service);
    const cs = consul.filter((c) => c.service === service);
    const routed = nginx.get(service) ?? new Set<string>();
    const rows: StatusRow[] = [];
    const seenConsul = new Set<ConsulInstance>();
    for (const d of ds) {
      const c = cs.find((x) => d.ip !== undefined && x.address === d.ip);
      if (c) seenConsul.add(c);
      const address = c ? `${c.address}:${c.port}` : (d.ip ?? "-");
      const inNginx = c ? routed.has(address) : false;
      const running = d.state === "running";
      let problem = "";
      if (running && !c && d.health !== "starting") problem = "running but not in Consul";
      else if (!running && c) problem = "stopped but still in Consul";
      else if (c?.status === "passing" && !inNginx) problem = "passing but not routed by nginx";
      else if (c && c.status !== "passing" && inNginx) problem = "routed by nginx but not passing";
      rows.push({
        service,
        container: d.name,
        address,
        docker: d.health ? `${d.state} (${d.health})` : d.state,
        consul: c ? c.status : "-",
        nginx: inNginx ? "routed" : "-",
        problem,
      });
    }
    for (const c of cs) {
      if (seenConsul.has(c)) continue;
      const address = `${c.address}:${c.port}`;
      rows.push({
        service,
        container: "-",
        address,
        docker: "-",
        consul: c.status,
        nginx: routed.has(address) ? "routed" : "-",
        problem: "in Consul but no such container",
      });
    }
    const known = new Set(rows.map((r) => r.address));
    for (const address of routed) {
      if (known.has(address)) continue;
      rows.push({
        service,
        container: "-",
        address,
        docker: "-",
        consul: "-",
        nginx: "routed",
        problem: "routed by nginx but unknown",
      });
    }
    return {
      service,
      dockerRunning: ds.filter((d) => d.state === "running").length,
      consulPassing: cs.filter((c) => c.status === "passing").length,
      consulTotal: cs.length,
      nginx: routed.size,
      rows,
      ok: rows.every((r) => r.problem === ""),
    };
  });
}

export function formatStatus(services: ServiceStatus[]): string {
  const header = ["SERVICE", "CONTAINER", "ADDRESS", "DOCKER", "CONSUL", "NGINX", "PROBLEM"];
  const lines: string[][] = [header];
  for (const s of services) {
    for (const r of s.rows)
      lines.push([r.service, r.container, r.address, r.docker, r.consul, r.nginx, r.problem]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const table = lines.map((l) =>
    l
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd(),
  );
  const summary = services.map(
    (s) =>
      `${s.ok ? "ok  " : "DIFF"} ${s.service}: ${s.dockerRunning} running in Docker, ${s.consulPassing}/${s.consulTotal} passing in Consul, ${s.nginx} in nginx`,
  );
  return [...table, "", ...summary].join("\n");
}
