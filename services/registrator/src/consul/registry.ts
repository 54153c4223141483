// The Consul side, behind a small interface modelled on gliderlabs/registrator's
// RegistryAdapter. The adapter registers with the local agent (/v1/agent/...), the
// way registrator does, so instances belong to this host's node.

import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type Consul from "consul";
import type { NodeServices } from "../core/loss.ts";
import { ConsulAnswerError } from "../../../../lib/consul-answer.ts";
import { checkAnswers } from "./answer.ts";
import {
  metaKeys,
  type CheckSpec,
  type CheckStatus,
  type Registration,
  type ServiceInstance,
} from "../core/types.ts";

export interface RegistryState {
  /** Registrations carrying this registrator's identity. */
  owned: Registration[];
  /** IDs of every other registration on the agent: never touched, never overwritten. */
  foreignIds: Set<string>;
}

export interface Registry {
  list(identity: string): Promise<RegistryState>;
  /** Registers or updates; a new TTL check starts with instance.ttl.status. */
  register(instance: ServiceInstance): Promise<void>;
  deregister(serviceId: string): Promise<void>;
  setStatus(checkId: string, status: CheckStatus, note: string): Promise<void>;
  removeCheck(checkId: string): Promise<void>;
  /**
   * This agent's node services, as a blocking read: answers when they change after
   * `index` (0: at once), or after about `waitMs`. Optional: without it, a registry
   * loss is found at the next full sync.
   */
  nodeServices?(index: number, waitMs: number, signal: AbortSignal): Promise<NodeServices>;
}

/** Consul refused a registration because of what it contains (HTTP 400): an input problem, not an outage. */
export class RegistryRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RegistryRejected";
  }
}

/** The check to update does not exist any more (Consul lost its state): re-register. */
export class CheckMissing extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckMissing";
  }
}

/** 90000 → "90s", 3600000 → "1h": the shortest exact Go duration. */
export function goDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${Math.round(ms)}ms`;
}

/** A check in the shape the `consul` client's register() takes. */
export function checkDefinition(c: CheckSpec, instance: ServiceInstance): Record<string, unknown> {
  const out: Record<string, unknown> = { checkid: c.id, name: c.name };
  if (c.kind === "ttl") {
    out.ttl = goDuration(c.ttlMs ?? 3_600_000);
    out.status = instance.ttl?.status ?? "critical";
    if (instance.ttl) out.notes = instance.ttl.note;
  } else {
    out[c.kind] = c.target;
    out.interval = goDuration(c.intervalMs ?? 10_000);
    if (c.timeoutMs !== undefined) out.timeout = goDuration(c.timeoutMs);
  }
  if (c.deregisterAfterMs !== undefined) out.deregistercriticalserviceafter = goDuration(c.deregisterAfterMs);
  return out;
}

interface AgentService {
  ID: string;
  Service: string;
  Address: string;
  Port: number;
  Tags: string[] | null;
  Meta: Record<string, string> | null;
}
interface AgentCheck {
  CheckID: string;
  ServiceID: string;
  Status: string;
}

function wellFormedService(s: unknown): s is AgentService {
  const v = s as AgentService;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.ID === "string" &&
    typeof v.Service === "string" &&
    typeof v.Address === "string" &&
    typeof v.Port === "number" &&
    (v.Tags === null || v.Tags === undefined || Array.isArray(v.Tags)) &&
    (v.Meta === null || v.Meta === undefined || typeof v.Meta === "object")
  );
}

function wellFormedCheck(c: unknown): c is AgentCheck {
  const v = c as AgentCheck;
  return typeof v === "object" && v !== null && typeof v.CheckID === "string" && typeof v.Status === "string";
}

function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

export class ConsulRegistry implements Registry {
  readonly #consul: Consul;
  readonly #timeoutMs: number;
  /** This agent's node name; asked again after any failure (the agent may be a new one). */
  #node: string | undefined;

  constructor(consul: Consul, opts: { requestTimeoutMs?: number } = {}) {
    this.#consul = consul;
    this.#timeoutMs = opts.requestTimeoutMs ?? 5000;
    checkAnswers(consul);
  }

  async list(identity: string): Promise<RegistryState> {
    const [services, checks] = (await Promise.all([
      this.#consul.agent.service.list({ timeout: this.#timeoutMs } as never),
      this.#consul.agent.check.list({ timeout: this.#timeoutMs } as never),
    ])) as [Record<string, AgentService>, Record<string, AgentCheck>];
    const owned = new Map<string, Registration>();
    const foreignIds = new Set<string>();
    const bad = Object.values(services).find((s) => !wellFormedService(s));
    const badCheck = Object.values(checks).find((c) => !wellFormedCheck(c));
    if (bad !== undefined || badCheck !== undefined) {
      const what = bad !== undefined ? `service ${JSON.stringify(bad).slice(0, 80)}` : "check";
      throw new ConsulAnswerError(
        "malformed",
        `agent.service.list: ${what} without the fields Consul gives`,
        { status: 200, request: "agent.service.list" },
      );
    }
    for (const s of Object.values(services)) {
      if (s.Meta?.[metaKeys.owner] !== identity) {
        foreignIds.add(s.ID);
        continue;
      }
      owned.set(s.ID, {
        id: s.ID,
        name: s.Service,
        address: s.Address,
        port: s.Port,
        tags: s.Tags ?? [],
        meta: s.Meta ?? {},
        checks: {},
      });
    }
    for (const c of Object.values(checks)) {
      const r = owned.get(c.ServiceID);
      if (r) r.checks[c.CheckID] = c.Status;
    }
    return { owned: [...owned.values()], foreignIds };
  }

  async register(i: ServiceInstance): Promise<void> {
    try {
      await this.#consul.agent.service.register({
        id: i.id,
        name: i.name,
        address: i.address,
        port: i.port,
        tags: i.tags,
        meta: i.meta,
        checks: i.checks.map((c) => checkDefinition(c, i)),
        timeout: this.#timeoutMs,
      } as never);
    } catch (err) {
      if (statusCode(err) === 400) throw new RegistryRejected((err as Error).message);
      throw err;
    }
  }

  async deregister(serviceId: string): Promise<void> {
    try {
      await this.#consul.agent.service.deregister({ id: serviceId, timeout: this.#timeoutMs } as never);
    } catch (err) {
      if (statusCode(err) === 404) return; // already gone: that is what we wanted
      throw err;
    }
  }

  async setStatus(checkId: string, status: CheckStatus, note: string): Promise<void> {
    const opts = { id: checkId, note, timeout: this.#timeoutMs } as never;
    try {
      if (status === "passing") await this.#consul.agent.check.pass(opts);
      else await this.#consul.agent.check.fail(opts);
    } catch (err) {
      const code = statusCode(err);
      if (code === 404 || (code === 500 && /TTL|unknown check/i.test((err as Error).message))) {
        throw new CheckMissing(`check ${checkId}: ${(err as Error).message}`);
      }
      throw err;
    }
  }

  async removeCheck(checkId: string): Promise<void> {
    try {
      await this.#consul.agent.check.deregister({ id: checkId, timeout: this.#timeoutMs } as never);
    } catch (err) {
      if (statusCode(err) === 404) return;
      throw err;
    }
  }

  async nodeServices(index: number, waitMs: number, signal: AbortSignal): Promise<NodeServices> {
    signal.throwIfAborted();
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
    const cancel = () => ctx.emit("cancel");
    signal.addEventListener("abort", cancel, { once: true });
    try {
      if (this.#node === undefined) {
        const self = (await this.#consul.agent.self({ ctx, timeout: this.#timeoutMs } as never)) as [
          IncomingMessage,
          { Config?: { NodeName?: string } },
        ];
        const name = self[1]?.Config?.NodeName;
        if (typeof name !== "string" || name === "")
          throw new Error("the Consul agent reported no node name");
        this.#node = name;
      }
      const blocking = index > 0 ? { index: String(index), wait: `${waitMs}ms` } : {};
      const [res, body] = (await this.#consul.catalog.node.services({
        node: this.#node,
        ...blocking,
        ctx,
        timeout: waitMs + waitMs / 16 + this.#timeoutMs,
      } as never)) as [IncomingMessage, { Services?: Record<string, { ID: string }> | null } | null];
      const ids = body ? new Set(Object.values(body.Services ?? {}).map((s) => s.ID)) : null;
      return { index: Number(res.headers["x-consul-index"]), ids };
    } catch (err) {
      this.#node = undefined;
      throw err;
    } finally {
      signal.removeEventListener("abort", cancel);
    }
  }
}
