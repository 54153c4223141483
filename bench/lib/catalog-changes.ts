// The Consul side of bench/dataplane-push.ts and bench/consul-changes.ts: a catalog of
// services × instances registered by hand (the addresses are never contacted), and single-
// instance changes to it, each timed from just before its write is sent: Consul's answer to the
// write, and Consul's answer to a long poll on the changed service's health (the bench's own
// watch, like one of the templater's). Traffic goes to the bench's own Consul only.

import http from "node:http";
import { sleep } from "../../lib/backoff.ts";

/** The command-line options both benches share (node:util parseArgs). */
export const catalogArgs = {
  services: { type: "string", default: "1000" },
  instances: { type: "string", default: "10" },
  changes: { type: "string", default: "200" },
  gap: { type: "string", default: "300" },
} as const;

export interface CatalogLoad {
  /** Registers services × instances, 16 writes at a time; resolves when Consul has taken all. */
  register(): Promise<void>;
  /**
   * `count` changes, `gapMs` apart: even ones deregister a random instance, odd ones register
   * it again (every write is a real change).
   */
  changes(count: number, gapMs: number): Promise<ChangeTimes>;
  close(): void;
}

export interface ChangeTimes {
  /** Date.now() just before each write was sent. */
  sent: number[];
  /** Write sent → Consul's answer to it (ms). */
  writeMs: number[];
  /** Date.now() when Consul answered the watch of that change's service (undefined: it did not). */
  wokeAt: (number | undefined)[];
}

export function catalogLoad(consulUrl: string, services: number, instances: number): CatalogLoad {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const put = (path: string, body: unknown) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(`${consulUrl}${path}`, { method: "PUT", agent }, (res) => {
        res.resume();
        res.on("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`${path}: ${res.statusCode}`)),
        );
      });
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });
  const entry = (s: number, i: number) => ({
    Node: `host-${i}`,
    Address: `10.200.${i}.1`,
    Service: {
      ID: `b${s}-${i}`,
      Service: `b${s}`,
      Tags: ["http"],
      Address: `10.${100 + (s % 100)}.${Math.floor(s / 100)}.${i + 1}`,
      Port: 8080,
    },
  });
  /** The X-Consul-Index of a service's health now (the index a watch of it would hold). */
  const healthIndex = async (service: string) => {
    const res = await fetch(`${consulUrl}/v1/health/service/${service}`);
    await res.arrayBuffer();
    return res.headers.get("x-consul-index") ?? "0";
  };
  /** When Consul answers a long poll on a service's health with an index newer than `index`. */
  const watchAnswer = (service: string, index: string) =>
    new Promise<number | undefined>((resolve) => {
      const path = `/v1/health/service/${service}?index=${index}&wait=10s`;
      http
        .get(`${consulUrl}${path}`, { agent }, (res) => {
          const at = Date.now();
          res.resume();
          res.on("end", () => resolve(res.headers["x-consul-index"] !== index ? at : undefined));
        })
        .on("error", () => resolve(undefined));
    });
  return {
    async register() {
      const queue: ReturnType<typeof entry>[] = [];
      for (let s = 0; s < services; s++) for (let i = 0; i < instances; i++) queue.push(entry(s, i));
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let e = queue.shift(); e; e = queue.shift()) await put("/v1/catalog/register", e);
        }),
      );
    },
    async changes(count, gapMs) {
      const out: ChangeTimes = { sent: [], writeMs: [], wokeAt: [] };
      const woken: Promise<void>[] = [];
      let s = 0;
      let i = 0;
      for (let c = 0; c < count; c++) {
        if (c % 2 === 0) {
          s = Math.floor(Math.random() * services);
          i = Math.floor(Math.random() * instances);
        }
        const woke = watchAnswer(`b${s}`, await healthIndex(`b${s}`));
        woken.push(woke.then((at) => void (out.wokeAt[c] = at)));
        const sent = Date.now();
        out.sent.push(sent);
        if (c % 2 === 0) await put("/v1/catalog/deregister", { Node: `host-${i}`, ServiceID: `b${s}-${i}` });
        else await put("/v1/catalog/register", entry(s, i));
        out.writeMs.push(Date.now() - sent);
        await sleep(gapMs);
      }
      await Promise.all(woken);
      return out;
    },
    close: () => agent.destroy(),
  };
}
