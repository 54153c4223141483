// Instance sets for dynamic upstreams: which peers each upstream has, as data, and the push
// body that carries them to nginx. Pure. nginx checks every rule here again on its side
// (deploy/nginx/lua/dockside/sets.lua); the two must agree.

import * as nv from "./nginx-values.ts";
import type { ServiceView, View } from "./view.ts";

export interface Peer {
  /** `10.0.0.5:8080` or `[fd00::5]:8080` */
  endpoint: string;
  weight: number;
}

/** Upstream name (`svc_<service>`) → its peers, sorted by endpoint. */
export type InstanceSets = ReadonlyMap<string, readonly Peer[]>;

export const weightLimits = { min: 1, max: 100, default: 1 } as const;
/** nginx refuses a push body larger than this (client_max_body_size); bodies are cut below it. */
export const maxBodyBytes = 48 * 1024;
/** nginx refuses a set with more peers than this. */
export const maxPeers = 1000;

/** Consul meta `weight` (from the registrator's SERVICE_WEIGHT): 1–100, default 1. */
export function weightOf(meta: Readonly<Record<string, string>>): nv.Verdict<number> {
  const raw = meta.weight;
  if (raw === undefined) return { ok: true, value: weightLimits.default };
  if (!/^\d{1,3}$/.test(raw) || Number(raw) < weightLimits.min || Number(raw) > weightLimits.max) {
    return { ok: false, reason: `weight ${nv.describeValue(raw)} is not a whole number in 1–100` };
  }
  return { ok: true, value: Number(raw) };
}

export function upstreamName(service: string): string {
  return `svc_${service}`;
}

/** An instance whose weight was not usable (it gets the default weight). */
export interface BadWeight {
  service: string;
  instance: string;
  reason: string;
}

export interface SetsResult {
  sets: InstanceSets;
  badWeights: BadWeight[];
}

/** One service's peers and bad weights; kept per ServiceView object (views are never changed). */
const peersCache = new WeakMap<ServiceView, { peers: Peer[]; badWeights: BadWeight[] }>();

function servicePeers(s: ServiceView): { peers: Peer[]; badWeights: BadWeight[] } {
  const cached = peersCache.get(s);
  if (cached) return cached;
  const badWeights: BadWeight[] = [];
  const peers = new Map<string, Peer>();
  for (const i of s.instances) {
    const w = weightOf(i.meta);
    if (!w.ok) badWeights.push({ service: s.name, instance: i.id, reason: w.reason });
    const endpoint = nv.hostPort(i.address, i.port);
    // The same address twice (two registrations of one container): one peer, the larger weight.
    const weight = w.ok ? w.value : weightLimits.default;
    peers.set(endpoint, { endpoint, weight: Math.max(weight, peers.get(endpoint)?.weight ?? 0) });
  }
  const list = [...peers.values()].sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1)).slice(0, maxPeers);
  const out = { peers: list, badWeights };
  peersCache.set(s, out);
  return out;
}

/** Pure: a service view that is the same object as last time costs a lookup, not a rebuild. */
export function instanceSets(view: View): SetsResult {
  const sets = new Map<string, Peer[]>();
  const badWeights: SetsResult["badWeights"] = [];
  for (const s of view.services) {
    const r = servicePeers(s);
    badWeights.push(...r.badWeights);
    sets.set(upstreamName(s.name), r.peers);
  }
  return { sets, badWeights };
}

/** The view with instance lists left out: what templates see in dynamic mode. */
export function routesOnly(services: readonly ServiceView[]): Omit<ServiceView, "instances">[] {
  return services.map(routeOf);
}

function routeOf({ instances: _instances, ...route }: ServiceView): Omit<ServiceView, "instances"> {
  return route;
}

const routeKeyCache = new WeakMap<ServiceView, string>();

/**
 * What templates see of each service in dynamic mode, one string per service (routesOnly as
 * JSON): two views route alike when these are equal. Kept per ServiceView object, so a view
 * with one service changed costs one JSON.stringify.
 */
export function routeKeys(services: readonly ServiceView[]): string[] {
  return services.map((s) => {
    let k = routeKeyCache.get(s);
    if (k === undefined) routeKeyCache.set(s, (k = JSON.stringify(routeOf(s))));
    return k;
  });
}

/** Names whose peers differ between two sets (new and removed names included). */
export function changedNames(before: InstanceSets, after: InstanceSets): string[] {
  // Called on every change with 1,000 sets: forEach, not for…of, makes no [name, peers] pair each.
  const out: string[] = [];
  after.forEach((peers, name) => {
    const old = before.get(name);
    if (old !== peers && !samePeers(old, peers)) out.push(name);
  });
  return out;
}

function samePeers(a: readonly Peer[] | undefined, b: readonly Peer[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.endpoint !== b[i]!.endpoint || a[i]!.weight !== b[i]!.weight) return false;
  }
  return true;
}

export function setLine(name: string, peers: readonly Peer[]): string {
  return ["set", name, ...peers.map((p) => `${p.endpoint}:${p.weight}`)].join(" ");
}

/**
 * Push bodies for `names`, each under maxBodyBytes and each with its own version (nginx
 * takes only versions above the live one): `firstVersion`, +1, ... The last one is the
 * version to read back.
 */
export function pushBodies(sets: InstanceSets, names: readonly string[], firstVersion: number): string[] {
  const bodies: string[] = [];
  let version = firstVersion;
  let lines: string[] = [];
  let size = 0;
  const flush = () => {
    bodies.push([`version ${version++}`, ...lines].join("\n") + "\n");
    lines = [];
    size = 0;
  };
  for (const name of names) {
    const line = setLine(name, sets.get(name) ?? []);
    if (size + line.length + 32 > maxBodyBytes && lines.length > 0) flush();
    lines.push(line);
    size += line.length + 1;
  }
  if (lines.length > 0 || bodies.length === 0) flush();
  return bodies;
}

const persistedEntryCache = new WeakMap<readonly Peer[], { name: string; text: string }>();

/**
 * The sets as the data plane's persisted file holds them (`[[name, peers], ...]`, read back by
 * parsePersistedSets). Each set's JSON is kept per peers array (sets are never changed in
 * place), so a save after one changed set stringifies that set, not all 10,000 peers again.
 */
export function persistedText(sets: InstanceSets): string {
  const parts: string[] = [];
  for (const [name, peers] of sets) {
    let entry = persistedEntryCache.get(peers);
    if (entry?.name !== name)
      persistedEntryCache.set(peers, (entry = { name, text: JSON.stringify([name, peers]) }));
    parts.push(entry.text);
  }
  return `[${parts.join(",")}]`;
}

const endpointPattern = /^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5}$/;

/** Sets from the data plane's persisted file (apply/data-plane.ts); anything malformed gives undefined (nginx checks again on push). */
export function parsePersistedSets(text: string): InstanceSets | undefined {
  const raw = JSON.parse(text) as unknown;
  if (!Array.isArray(raw)) return undefined;
  const out = new Map<string, Peer[]>();
  for (const entry of raw) {
    if (
      !Array.isArray(entry) ||
      typeof entry[0] !== "string" ||
      !/^svc_[A-Za-z0-9][A-Za-z0-9_-]*$/.test(entry[0])
    )
      return undefined;
    if (!Array.isArray(entry[1])) return undefined;
    const peers: Peer[] = [];
    for (const p of entry[1] as unknown[]) {
      const { endpoint, weight } = (p ?? {}) as Partial<Peer>;
      if (typeof endpoint !== "string" || !endpointPattern.test(endpoint)) return undefined;
      if (!Number.isInteger(weight) || weight! < weightLimits.min || weight! > weightLimits.max)
        return undefined;
      peers.push({ endpoint, weight: weight! });
    }
    out.set(entry[0], peers);
  }
  return out;
}
