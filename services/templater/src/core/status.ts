// The status page, as data and as HTML: services → instances (every status, from Consul) →
// the upstream servers of the generation nginx serves now. Pure.

import { hostPort } from "./nginx-values.ts";
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
  templates: readonly { source: string; dest: string; error: string | null }[];
  lastError: { at: string; stage: string; message: string } | null;
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
  }[];
}

export interface Status {
  mode: string;
  consul: ConsulStatus;
  nginx: { running: boolean | null; generation: string | null; since: string | null };
  services: ServiceStatus[];
  dropped: readonly Reject[];
  templates: StatusInput["templates"];
  lastError: StatusInput["lastError"];
}

export function buildStatus(input: StatusInput): Status {
  const live = new Map((input.liveView?.services ?? []).map((s) => [s.name, s]));
  const now = new Map((input.catalog?.services ?? []).map((s) => [s.name, s]));
  const names = [...new Set([...live.keys(), ...now.keys()])].sort();
  const services = names.map((name): ServiceStatus => {
    const upstream = (live.get(name)?.instances ?? []).map((i) => hostPort(i.address, i.port));
    const liveIds = new Set((live.get(name)?.instances ?? []).map((i) => `${i.node}/${i.id}`));
    return {
      name,
      routes: { path: `/${name}/`, host: input.hostDomain ? `${name}.${input.hostDomain}` : name },
      upstream,
      instances: (now.get(name)?.instances ?? []).map((i) => ({
        id: i.id,
        node: i.node,
        endpoint: hostPort(i.address, i.port),
        status: i.status,
        live: liveIds.has(`${i.node}/${i.id}`),
      })),
    };
  });
  return {
    mode: input.mode,
    consul: input.consul,
    nginx: { running: input.nginx.running, generation: input.liveId, since: input.liveSince },
    services,
    dropped: input.rejects,
    templates: input.templates,
    lastError: input.lastError,
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
                `<td class="${esc(i.status)}">${esc(i.status)}</td><td>${i.live ? "yes" : "no"}</td></tr>`,
            )
            .join("")
        : `<tr><td colspan="5">no instances in Consul</td></tr>`;
      const upstream = svc.upstream.length ? svc.upstream.map(esc).join(", ") : "none: nginx answers 503";
      return (
        `<h2>${esc(svc.name)}</h2><p>routes: <code>${esc(svc.routes.path)}</code>, host <code>${esc(svc.routes.host)}</code>` +
        ` — upstream now: ${upstream}</p>` +
        `<table><tr><th>instance</th><th>node</th><th>address</th><th>health</th><th>in nginx now</th></tr>${instances}</table>`
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
<h1>dockside edge</h1>
<p>mode ${esc(s.mode)} · Consul ${esc(s.consul.address)} ${consulHtml(s.consul)} ·
nginx ${s.nginx.running === null ? "" : s.nginx.running ? "running" : "<b>not running</b>"} generation <code>${esc(s.nginx.generation ?? "none")}</code> since ${esc(s.nginx.since ?? "-")} ·
<a href="status">JSON</a> · <a href="metrics">metrics</a></p>
${lastError}
${rows || "<p>no routed services</p>"}
${dropped}
<h2>Templates</h2><ul>${templates}</ul>
</body></html>
`;
}
