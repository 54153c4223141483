// The status page, as data and as HTML: services → instances (every status, from Consul) →
// the upstream servers of the generation nginx serves now. Pure.

import { upstreamName, type InstanceSets } from "./instance-sets.ts";
import { hostPort } from "./nginx-values.ts";
import type { Held } from "./hold.ts";
import type { Reject, View } from "./view.ts";

/** What the manager knows (see Manager.state). */
export interface ManagerState {
  /** Services and instances of every status, as Consul has them now. */
  catalog: View | undefined;
  /** The view the live generation was rendered from. */
  liveView: View | undefined;
  liveId: string | null;
  liveSince: string | null;
  rejects: readonly Reject[];
  /** Instances routed although the catalog alone would not route them (core/hold.ts). */
  held?: readonly Held[];
  templates: readonly { source: string; dest: string; error: string | null }[];
  lastError: { at: string; stage: string; message: string } | null;
  /** Dynamic mode: the instance sets nginx confirmed last (what it routes to now) and their version. */
  liveSets?: { sets: InstanceSets; version: number | null };
}

/** Per-instance figures counted in nginx (dynamic mode), by `upstream endpoint`. */
export interface LiveFigures {
  requests: number;
  non2xx: number;
  upstreamSeconds: number;
}

/** Consul as the templater sees it: `kind` ok, or why its answers are not used (lib/consul-answer.ts). */
export interface ConsulStatus {
  address: string;
  up: boolean;
  kind?: string;
  message?: string | null;
  since?: string;
}

export interface StatusInput extends ManagerState {
  mode: string;
  consul: ConsulStatus;
  nginx: { running: boolean | null };
  hostDomain: string;
  figures?: ReadonlyMap<string, LiveFigures>;
}

export interface ServiceStatus {
  name: string;
  routes: { path: string; host: string };
  /** Servers in the live upstream (what nginx uses now); empty: nginx answers 503. */
  upstream: string[];
  instances: {
    id: string;
    node: string;
    endpoint: string;
    status: string;
    /** Whether nginx sends traffic to it now. */
    live: boolean;
    weight?: number;
    /** Dynamic mode: counted by nginx since it started. */
    figures?: LiveFigures;
  }[];
}

export interface Status {
  mode: string;
  consul: ConsulStatus;
  nginx: {
    running: boolean | null;
    generation: string | null;
    since: string | null;
    setVersion?: number | null;
  };
  services: ServiceStatus[];
  dropped: readonly Reject[];
  held: readonly Held[];
  templates: StatusInput["templates"];
  lastError: StatusInput["lastError"];
}

export function buildStatus(input: StatusInput): Status {
  const live = new Map((input.liveView?.services ?? []).map((s) => [s.name, s]));
  const now = new Map((input.catalog?.services ?? []).map((s) => [s.name, s]));
  const names = [...new Set([...live.keys(), ...now.keys()])].sort();
  const services = names.map((name): ServiceStatus => {
    const setName = upstreamName(name);
    const peers = input.liveSets?.sets.get(setName);
    const upstream = peers
      ? peers.map((p) => p.endpoint)
      : (live.get(name)?.instances ?? []).map((i) => hostPort(i.address, i.port));
    const liveIds = new Set((live.get(name)?.instances ?? []).map((i) => `${i.node}/${i.id}`));
    const isLive = (i: { node: string; id: string; address: string; port: number }) =>
      peers ? upstream.includes(hostPort(i.address, i.port)) : liveIds.has(`${i.node}/${i.id}`);
    return {
      name,
      routes: { path: `/${name}/`, host: input.hostDomain ? `${name}.${input.hostDomain}` : name },
      upstream,
      instances: (now.get(name)?.instances ?? []).map((i) => {
        const endpoint = hostPort(i.address, i.port);
        const weight = peers?.find((p) => p.endpoint === endpoint)?.weight;
        const figures = input.figures?.get(`${setName} ${endpoint}`);
        return {
          id: i.id,
          node: i.node,
          endpoint,
          status: i.status,
          live: isLive(i),
          ...(weight === undefined ? {} : { weight }),
          ...(figures === undefined ? {} : { figures }),
        };
      }),
    };
  });
  return {
    mode: input.mode,
    consul: input.consul,
    nginx: {
      running: input.nginx.running,
      generation: input.liveId,
      since: input.liveSince,
      ...(input.liveSets ? { setVersion: input.liveSets.version } : {}),
    },
    services,
    dropped: input.rejects,
    held: input.held ?? [],
    templates: input.templates,
    lastError: input.lastError,
  };
}

export interface HealthInput {
  state: ManagerState;
  /** Why the edge is degraded now (Manager.degraded). */
  degraded: string[];
  /** Whether the live config is the stand-in (Manager.standInLive). */
  standInLive: boolean;
  /**
   * Exec mode: whether the supervised nginx runs and has confirmed serving a generation (not
   * merely started); undefined in the other modes.
   */
  nginxServing: boolean | undefined;
  consul: { up: boolean; everOk: boolean; state: unknown };
  /** Started with a config applied before (a restart): it serves while Consul is asked. */
  restored: boolean;
}

/** The /health report. */
export function buildHealth(h: HealthInput) {
  const m = h.state;
  // exec: nginx runs and answered; command: a config is live; dry: a render was printed
  const serving = h.nginxServing ?? m.liveId !== null;
  return {
    // Serving a stand-in (Consul never read) is not healthy: nothing is routed.
    // Healthy once Consul was read (or after a restart with the last applied config).
    ok: serving && !h.standInLive && (h.consul.everOk || h.restored),
    // ok: serving; degraded: serving, but the last apply failed or a template is broken (why: in `degraded`)
    state: !serving ? "down" : h.degraded.length ? "degraded" : "ok",
    degraded: h.degraded,
    generation: m.liveId,
    consul: h.consul.up,
    consulState: h.consul.state,
    nginx: h.nginxServing,
    templateErrors: m.templates.filter((t) => t.error).length,
    lastError: m.lastError,
  };
}

const esc = (s: unknown) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );

const consulWords: Record<string, string> = {
  denied: "permission denied",
  malformed: "answers that cannot be trusted",
  unreachable: "unreachable",
  unknown: "not answered yet",
};

function consulHtml(c: ConsulStatus): string {
  if (c.up) return "reachable";
  const kind = c.kind ?? "unreachable";
  const words = consulWords[kind] ?? kind;
  const since = c.since ? ` since ${esc(c.since)}` : "";
  const why = c.message ? `: <code>${esc(c.message)}</code>` : "";
  return `<b>${esc(words)}</b>${since}${why} (the last good config stays)`;
}

export function renderStatusHtml(s: Status): string {
  const rows = s.services
    .map((svc) => {
      const instances = svc.instances.length
        ? svc.instances
            .map(
              (i) =>
                `<tr><td>${esc(i.id)}</td><td>${esc(i.node)}</td><td>${esc(i.endpoint)}</td>` +
                `<td class="${esc(i.status)}">${esc(i.status)}</td><td>${i.live ? "yes" : "no"}</td>` +
                `<td>${esc(i.weight ?? "")}</td><td class="requests">${esc(i.figures?.requests ?? "")}</td>` +
                `<td>${esc(i.figures?.non2xx ?? "")}</td>` +
                `<td>${i.figures && i.figures.requests ? esc(((i.figures.upstreamSeconds / i.figures.requests) * 1000).toFixed(1)) : ""}</td></tr>`,
            )
            .join("")
        : `<tr><td colspan="9">no instances in Consul</td></tr>`;
      const upstream = svc.upstream.length ? svc.upstream.map(esc).join(", ") : "none: nginx answers 503";
      return (
        `<h2>${esc(svc.name)}</h2><p>routes: <code>${esc(svc.routes.path)}</code>, host <code>${esc(svc.routes.host)}</code>` +
        ` — upstream now: ${upstream}</p>` +
        `<table><tr><th>instance</th><th>node</th><th>address</th><th>health</th><th>in nginx now</th><th>weight</th><th>requests</th><th>non-2xx</th><th>mean upstream ms</th></tr>${instances}</table>`
      );
    })
    .join("\n");
  const dropped = s.dropped.length
    ? `<h2>Left out (unsafe for nginx)</h2><ul>${s.dropped
        .map(
          (d) =>
            `<li>${esc(d.service)} ${esc(d.instance ?? "")} ${esc(d.field)} ${esc(d.value)}: ${esc(d.reason)}</li>`,
        )
        .join("")}</ul>`
    : "";
  const held = s.held.length
    ? `<h2>Held</h2><ul>${s.held
        .map(
          (h) =>
            `<li>${esc(h.service)}: ${h.instances.length} instance(s) kept routed (${esc(
              h.reason === "panic"
                ? "panic mode: every instance failing at once"
                : "Consul restarted, not yet refilled",
            )})</li>`,
        )
        .join("")}</ul>`
    : "";
  const templates = s.templates
    .map(
      (t) =>
        `<li><code>${esc(t.source)}</code> → <code>${esc(t.dest)}</code>${t.error ? ` <b>error:</b> ${esc(t.error)}` : ""}</li>`,
    )
    .join("");
  const lastError = s.lastError
    ? `<p><b>last error</b> (${esc(s.lastError.at)}, ${esc(s.lastError.stage)}): <code>${esc(s.lastError.message)}</code></p>`
    : "";
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>dockside edge</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}.passing{color:#070}.warning{color:#a60}.critical{color:#b00}</style>
</head><body>
<div id="live">
<h1>dockside edge</h1>
<p>mode ${esc(s.mode)} · Consul ${esc(s.consul.address)} ${consulHtml(s.consul)} ·
nginx ${s.nginx.running === null ? "" : s.nginx.running ? "running" : "<b>not running</b>"} generation <code>${esc(s.nginx.generation ?? "none")}</code> since ${esc(s.nginx.since ?? "-")} ·
<a href="status">JSON</a> · <a href="metrics">metrics</a></p>
${lastError}
${rows || "<p>no routed services</p>"}
${held}
${dropped}
<h2>Templates</h2><ul>${templates}</ul>
</div>
<script>
// Refreshes itself every second without reloading the page: the same HTML, fetched, swapped in.
setInterval(async () => {
  try {
    const r = await fetch(location.pathname, { cache: "no-store" });
    if (!r.ok) return;
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    document.getElementById("live").replaceWith(doc.getElementById("live"));
  } catch {}
}, 1000);
</script>
</body></html>
`;
}
