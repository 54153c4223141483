// The cluster's Consul HTTPS API as the lab command and the tests reach it from the machine:
// any live server, the lab's CA, the servers' TLS name. Thin: one request function, and the
// idempotent policy + token creation the lab's ACL bootstrap and the tests' extra tokens share.

import https from "node:https";
import type { ClusterPlan, PolicySpec } from "./plan.ts";

export interface ConsulApi {
  request<T>(method: string, path: string, opts?: { token?: string; body?: unknown }): Promise<T>;
}

export class ConsulHttpError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

function once<T>(
  ip: string,
  ca: Buffer,
  method: string,
  path: string,
  token: string | undefined,
  body: unknown,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      {
        host: ip,
        port: 8501,
        method,
        path,
        ca,
        servername: "server.dc1.consul",
        timeout: 5000,
        headers: {
          ...(token ? { "X-Consul-Token": token } : {}),
          ...(payload ? { "Content-Type": "application/json" } : {}),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status >= 300)
            reject(new ConsulHttpError(`${method} ${path}: ${status} ${text.trim()}`, status));
          else resolve((text ? JSON.parse(text) : undefined) as T);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} https://${ip}:8501${path}: timeout`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** Tries the servers in turn: a killed server (or leader) must not stop the lab command. */
export function consulApi(plan: ClusterPlan, ca: Buffer): ConsulApi {
  return {
    async request<T>(method: string, path: string, opts: { token?: string; body?: unknown } = {}) {
      let last: unknown;
      for (const s of plan.servers) {
        try {
          return await once<T>(s.ip, ca, method, path, opts.token, opts.body);
        } catch (err) {
          if (err instanceof ConsulHttpError && err.status < 500) throw err;
          last = err;
        }
      }
      // Every server answered with an error: that answer is the outcome (e.g. "already exists").
      if (last instanceof ConsulHttpError) throw last;
      throw new Error(`no Consul server answered ${method} ${path}`, { cause: last });
    },
  };
}

/** A policy and a token holding it (secret ID `secret`), each created unless it exists already. */
export async function grant(
  api: ConsulApi,
  /** The management token. */
  token: string,
  policy: PolicySpec,
  secret: string,
): Promise<void> {
  try {
    await api.request("PUT", "/v1/acl/policy", {
      token,
      body: { Name: policy.name, Description: policy.description, Rules: policy.rules },
    });
  } catch (err) {
    if (!(err instanceof ConsulHttpError && /already exists/.test(err.message))) throw err;
  }
  try {
    await api.request("PUT", "/v1/acl/token", {
      token,
      body: { SecretID: secret, Description: policy.description, Policies: [{ Name: policy.name }] },
    });
  } catch (err) {
    if (!(err instanceof ConsulHttpError && /already|exists|in use/i.test(err.message))) throw err;
  }
}
