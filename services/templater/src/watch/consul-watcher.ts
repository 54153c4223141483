// Follows the whole catalog with two long polls, whatever the number of services:
//   /v1/catalog/services  — its index moves on any service registration, change or removal;
//   /v1/health/state/any  — every check; its index moves on any status change.
// When the catalog moves, the instances are read node by node (/v1/catalog/node/<node>: O(hosts)
// requests, not O(services)), then the checks are read again so they are never older than the
// instances they are joined with. consul-template instead holds one long poll per service.
//
// The fast path (service-watches.ts): up to `serviceWatches` routed services also get a long poll
// of their own. An answer newer than the last whole read goes to `onService` at once (one
// service rebuilt and pushed) and into every later snapshot until a whole read catches up with
// it. While every routed service is watched and the listing is unchanged, a move of the catalog's
// index is theirs to tell: the whole read waits for the next revalidation (--consul-wait).

import { Backoff, sleep } from "../../../../lib/backoff.ts";
import { mapLimit } from "../../../../lib/concurrency.ts";
import type { Logger } from "../../../../lib/log.ts";
import { ConsulAnswerError, problemOf } from "../../../../lib/consul-answer.ts";
import { floorDelay, stepIndex } from "../core/blocking-index.ts";
import {
  withServiceAnswers,
  type CatalogNode,
  type CatalogSnapshot,
  type ConsulCheck,
  type ConsulService,
  type ServiceAnswer,
} from "../core/catalog.ts";
import { serviceName } from "../core/nginx-values.ts";
import { serfHealthCheck } from "../core/view.ts";
import type { Answer, BlockingRead, CatalogApi } from "./consul-api.ts";
import { ServiceWatches } from "./service-watches.ts";

export interface WatcherOptions {
  api: CatalogApi;
  /** Longest a blocking query waits for a change. */
  waitMs: number;
  /** Least time between the starts of two queries on one endpoint. */
  floorMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** Node reads in flight at once. */
  concurrency: number;
  /** Told about every success and failure (lib/consul-answer.ts's ConsulTrust, or a Reachability). */
  reach: { ok(): void; failed(err: unknown, retryInMs?: number): void };
  /** Services (by their catalog tags) whose instances the snapshot needs; default: all. */
  wanted?: (tags: readonly string[]) => boolean;
  log: Logger;
  onSnapshot: (snapshot: CatalogSnapshot) => void;
  /**
   * Routed services that also get a long poll of their own (the fast path); 0: none. Each is one
   * connection to Consul, which allows 200 per client address by default.
   */
  serviceWatches?: number;
  /** Longest a per-service long poll waits (default: waitMs). */
  serviceWaitMs?: number;
  /** A watched service changed: apply it alone; false asks for a whole snapshot instead. */
  onService?: (answer: ServiceAnswer, observedAt: number) => boolean;
  /** Called after every request, for metrics: result is "ok" or the problem (denied, malformed, unreachable). */
  onRequest?: (endpoint: string, result: string) => void;
  now?: () => number;
}

export class ConsulCatalogWatcher {
  readonly #o: WatcherOptions;
  readonly #now: () => number;
  /** Whether a service's tags make it routed (options.wanted, default: every service). */
  readonly #wanted: (tags: readonly string[]) => boolean;
  #signal: AbortSignal = new AbortController().signal;
  #catalogSeen = false;
  #catalogDirty = true;
  #nodes: CatalogNode[] = [];
  /** The last `/v1/catalog/services` answer: name → tags. */
  #listed: Record<string, string[]> = {};
  #listedKey = "{}";
  #checks: ConsulCheck[] = [];
  #checksIndex = 0;
  #pendingSince: number | undefined;
  /** When an index last went backwards (a restarted or replaced Consul); undefined: never. */
  #indexResetAt: number | undefined;
  #refreshing = false;
  #again = false;
  readonly #refreshBackoff: Backoff;
  /** Counts failures; a success only says "Consul is back" if no request failed since it started. */
  #failureSeq = 0;
  #catalogFailing = false;
  /** The index the last whole read is as of (the lowest of its node reads); 0: none yet. */
  #readIndex = 0;
  /** Per-service answers newer than the last whole read, by service name. */
  readonly #fresh = new Map<string, ServiceAnswer>();
  readonly #watches: ServiceWatches | undefined;

  constructor(options: WatcherOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#wanted = options.wanted ?? (() => true);
    this.#refreshBackoff = new Backoff({ initialMs: options.retryInitialMs, maxMs: options.retryMaxMs });
    this.#watches =
      (options.serviceWatches ?? 0) > 0
        ? new ServiceWatches({
            read: (name, r, signal) => options.api.serviceHealth(name, r, signal),
            waitMs: options.serviceWaitMs ?? options.waitMs,
            floorMs: options.floorMs,
            retryInitialMs: options.retryInitialMs,
            retryMaxMs: options.retryMaxMs,
            onAnswer: (a, at) => this.#serviceAnswer(a, at),
            onRequest: options.onRequest,
            log: options.log,
            now: this.#now,
          })
        : undefined;
  }

  /** The routed services to watch one by one: valid names carrying the route tag, at most serviceWatches. */
  #toWatch(): string[] {
    return this.#wantedNames(this.#listed)
      .filter((name) => serviceName(name).ok)
      .sort()
      .slice(0, this.#o.serviceWatches ?? 0);
  }

  #wantedOf: { listed: Record<string, string[]>; names: readonly string[] } | undefined;

  /**
   * The names of a listing whose tags are wanted, kept for the listing object (consul-api.ts
   * gives the same object for the same text): asked on every move of the catalog's index.
   */
  #wantedNames(listed: Record<string, string[]>): readonly string[] {
    if (this.#wantedOf?.listed !== listed) {
      const names = Object.keys(listed).filter((name) => this.#wanted(listed[name] ?? []));
      this.#wantedOf = { listed, names };
    }
    return this.#wantedOf.names;
  }

  /** Whether the per-service watches can tell every instance change of this listing. */
  #watchesCover(listed: Record<string, string[]>): boolean {
    const w = this.#watches;
    if (!w || !w.healthy || this.#catalogFailing || this.#readIndex === 0) return false;
    return this.#wantedNames(listed).every((name) => w.has(name));
  }

  /** Consul's index went backwards: per-service answers and their indexes mean nothing now. */
  #forgetFresh(): void {
    this.#fresh.clear();
    this.#readIndex = 0;
    this.#watches?.follow([], 0, this.#signal); // followed again after the next whole read
  }

  #serviceAnswer(answer: ServiceAnswer, observedAt: number): void {
    if (answer.index <= this.#readIndex) return; // the whole read already holds it
    const known = this.#fresh.get(answer.name);
    if (known && answer.index <= known.index) return;
    // No instance at all may be ACLs hiding them (or the last one going): the whole read says.
    if (answer.nodes.length === 0) {
      this.#catalogDirty = true;
      this.#pendingSince ??= observedAt;
      this.#kick();
      return;
    }
    this.#fresh.set(answer.name, answer);
    // Older than the checks already delivered: its own checks would take health back in time,
    // so it goes in a snapshot, joined with the newer checks.
    if (answer.index >= this.#checksIndex && this.#o.onService?.(answer, observedAt)) return;
    this.#pendingSince ??= observedAt;
    this.#kick();
  }

  /** Runs until `signal` aborts. Never throws for Consul errors: it retries with capped backoff. */
  async run(signal: AbortSignal): Promise<void> {
    this.#signal = signal;
    await Promise.all([
      this.#loop(
        "catalog/services",
        (r, s) => this.#o.api.services(r, s),
        (body, _index, reset, news) => {
          // Consul always lists its own "consul" service: an empty list is ACLs hiding everything.
          if (Object.keys(body).length === 0) throw aclEmpty('no service at all, not even its own "consul"');
          // The api gives the same object for the same text (consul-api.ts): no need to compare.
          const key = body === this.#listed ? this.#listedKey : JSON.stringify(body);
          if (news && !reset && key === this.#listedKey && this.#watchesCover(body)) {
            this.#pendingSince = undefined;
            return; // an instance change: the service's own watch brings it
          }
          this.#listed = body;
          this.#listedKey = key;
          if (reset) {
            this.#checksIndex = 0;
            this.#forgetFresh();
          }
          this.#catalogSeen = true;
          this.#catalogDirty = true;
          this.#kick();
        },
        // A long poll that times out unchanged still reads the catalog again: an ACL change moves
        // no index, and a token that lost a permission must show as denied within --consul-wait.
        true,
      ),
      this.#loop(
        "health/state/any",
        (r, s) => this.#o.api.checks(r, s),
        (body, index, reset) => {
          if (reset) {
            this.#checksIndex = 0;
            this.#catalogDirty = true;
            this.#forgetFresh();
          }
          const before = this.#checks;
          if (!this.#acceptChecks(body, index)) return;
          // A service check gone means its instance is (being) deregistered: joining the new
          // checks with instances read before would show it check-less, i.e. passing. Read the
          // instances again rather than route it for that moment.
          if (lostServiceChecks(before, body)) this.#catalogDirty = true;
          this.#kick();
        },
      ),
    ]);
  }

  #succeeded(seqAtStart: number): void {
    // While the catalog read keeps failing, a long poll's success does not make Consul "ok".
    if (seqAtStart === this.#failureSeq && !this.#catalogFailing) this.#o.reach.ok();
  }

  #failed(err: unknown, retryInMs: number): void {
    this.#failureSeq++;
    this.#o.reach.failed(err, retryInMs);
  }

  #acceptChecks(checks: ConsulCheck[], index: number): boolean {
    // Every Consul agent's node carries serfHealth: checks without any are ACLs hiding node
    // checks (no node:read), and instances would look healthier than they are.
    if (!checks.some((c) => c.CheckID === serfHealthCheck && c.ServiceID === "")) {
      throw aclEmpty("no serfHealth check of any node");
    }
    // The same checks can arrive from the long poll and from a refresh; keep the newest.
    if (Number.isFinite(index) && index < this.#checksIndex) return false;
    this.#checks = checks;
    this.#checksIndex = Number.isFinite(index) ? index : 0;
    return true;
  }

  async #loop<T>(
    endpoint: string,
    read: (r: BlockingRead, s: AbortSignal) => Promise<Answer<T>>,
    /** `news`: the index moved (false: a revalidation after a long poll timed out unchanged). */
    onChange: (body: T, index: number, reset: boolean, news: boolean) => void,
    revalidate = false,
  ): Promise<void> {
    const { waitMs, floorMs, log } = this.#o;
    const backoff = new Backoff({ initialMs: this.#o.retryInitialMs, maxMs: this.#o.retryMaxMs });
    const signal = this.#signal;
    let index = 0;
    // After an error the next read does not block: a restarted Consul may have a lower index,
    // and a blocking read with our old one would wait the whole `wait` before saying so.
    let fresh = false;
    while (!signal.aborted) {
      const started = this.#now();
      const seq = this.#failureSeq;
      try {
        const answer = await read({ index: fresh ? 0 : index, waitMs }, signal);
        const step = stepIndex(index, answer.index);
        // After an error the answer goes on even if the index did not move: what failed may
        // have been what the last change needed (and a suspect answer must be judged again).
        if (step.changed || fresh) {
          this.#pendingSince ??= this.#now();
          if (step.reset) this.#indexResetAt = this.#now();
          onChange(answer.body, answer.index, step.reset, true); // throws on an answer it cannot trust
        } else if (revalidate) {
          onChange(answer.body, answer.index, false, false);
        }
        if (step.reset) log.info("Consul index went backwards; reading everything again", { endpoint });
        fresh = false;
        index = step.next;
        this.#o.onRequest?.(endpoint, "ok");
        this.#succeeded(seq);
        backoff.reset();
      } catch (err) {
        if (signal.aborted) return;
        this.#o.onRequest?.(endpoint, problemOf(err).kind);
        const delay = backoff.next();
        fresh = true;
        this.#failed(err, delay);
        log.debug("Consul query failed", { endpoint, err, retryInMs: delay });
        await sleep(delay, signal);
        continue;
      }
      await sleep(floorDelay(started, this.#now(), floorMs), signal);
    }
  }

  #kick(): void {
    if (!this.#catalogSeen || this.#signal.aborted) return;
    if (this.#refreshing) {
      this.#again = true;
      return;
    }
    void this.#refresh();
  }

  async #refresh(): Promise<void> {
    this.#refreshing = true;
    const signal = this.#signal;
    try {
      do {
        this.#again = false;
        const since = this.#pendingSince ?? this.#now();
        this.#pendingSince = undefined;
        if (this.#catalogDirty) {
          this.#catalogDirty = false;
          try {
            await this.#readCatalog(signal);
            this.#refreshBackoff.reset();
          } catch (err) {
            if (signal.aborted) return;
            this.#catalogDirty = true;
            this.#catalogFailing = true;
            this.#pendingSince ??= since;
            const delay = this.#refreshBackoff.next();
            this.#failed(err, delay);
            this.#o.log.debug("reading the catalog failed", { err, retryInMs: delay });
            await sleep(delay, signal);
            this.#again = true;
            continue;
          }
        }
        const merged = withServiceAnswers(
          this.#nodes,
          this.#checks,
          [...this.#fresh.values()],
          this.#checksIndex,
        );
        this.#o.onSnapshot({
          nodes: merged.nodes,
          checks: merged.checks,
          observedAt: since,
          indexResetAt: this.#indexResetAt,
        });
      } while (this.#again && !signal.aborted);
    } finally {
      this.#refreshing = false;
    }
  }

  async #readCatalog(signal: AbortSignal): Promise<void> {
    const { api, concurrency } = this.#o;
    const seq = this.#failureSeq;
    const track = async <T>(endpoint: string, p: Promise<T>): Promise<T> => {
      try {
        const v = await p;
        this.#o.onRequest?.(endpoint, "ok");
        return v;
      } catch (err) {
        this.#o.onRequest?.(endpoint, problemOf(err).kind);
        throw err;
      }
    };
    const nodes = await track("catalog/nodes", api.nodes(signal));
    // Every Consul agent is a node of its catalog: an empty node list is ACLs hiding them.
    if (nodes.length === 0) throw aclEmpty("no node at all");
    let asOf = Infinity;
    const read = await mapLimit(nodes, concurrency, async (n): Promise<CatalogNode> => {
      const r = await track("catalog/node", api.nodeServices(n.Node, signal));
      if (Number.isFinite(r.index)) asOf = Math.min(asOf, r.index);
      return { node: n.Node, address: n.Address, services: r.services ?? [] };
    });
    // Consul 1.8 filters per-node reads by instance ID under ACLs (a `service "web"` rule shows
    // nothing there): a listed service no node showed is read by name, which honours those rules.
    const seen = new Set(read.flatMap((n) => n.services.map((s) => s.Service)));
    const routed = this.#wantedNames(this.#listed);
    const missing = routed.filter((name) => !seen.has(name));
    if (missing.length > 0) {
      const byNode = new Map(read.map((n) => [n.node, n]));
      const found = await mapLimit(missing, concurrency, (name) =>
        track("catalog/service", api.serviceInstances(name, signal)),
      );
      for (const i of found.flat()) {
        const node = byNode.get(i.node) ?? {
          node: i.node,
          address: i.nodeAddress,
          services: [] as ConsulService[],
        };
        byNode.set(i.node, node);
        if (!node.services.some((s) => s.ID === i.service.ID)) node.services.push(i.service);
      }
      read.splice(0, read.length, ...byNode.values());
      const instances = read.reduce(
        (n, x) => n + x.services.filter((s) => this.#wanted(s.Tags ?? [])).length,
        0,
      );
      if (instances === 0 && missing.length === routed.length) {
        throw aclEmpty(`${missing.length} routed service(s) but no instance of any`);
      }
    }
    // Checks read after the instances: an instance is never joined with checks older than itself.
    const checks = await track("health/state/any", api.checks({ index: 0, waitMs: 0 }, signal));
    this.#acceptChecks(checks.body, checks.index); // throws on checks it cannot trust: nothing kept
    this.#nodes = read.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    this.#readIndex = Number.isFinite(asOf) ? asOf : 0;
    for (const [name, a] of this.#fresh) if (a.index <= this.#readIndex) this.#fresh.delete(name);
    this.#watches?.follow(this.#toWatch(), this.#readIndex, signal);
    this.#catalogFailing = false;
    this.#succeeded(seq);
  }
}

/** Whether a service check in `before` is missing from `after` (by node and service ID). */
function lostServiceChecks(before: readonly ConsulCheck[], after: readonly ConsulCheck[]): boolean {
  const now = new Set(after.filter((c) => c.ServiceID !== "").map((c) => `${c.Node}\u0000${c.ServiceID}`));
  return before.some((c) => c.ServiceID !== "" && !now.has(`${c.Node}\u0000${c.ServiceID}`));
}

/** A well-formed answer only ACL filtering produces: as untrusted as a 403. */
function aclEmpty(what: string): ConsulAnswerError {
  return new ConsulAnswerError(
    "denied",
    `Consul shows ${what}: ACLs hide them from this token (the templater needs service_prefix "" { policy = "read" } and node_prefix "" { policy = "read" })`,
  );
}
