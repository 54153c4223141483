// HTTP client of nginx's control listener (deploy/nginx/lua/dockside/control.lua): push
// instance sets, read the live version back, read the per-instance figures.

import http from "node:http";

export interface InstanceFigures {
  upstream: string;
  endpoint: string;
  requests: number;
  non2xx: number;
  upstreamSeconds: number;
}

export interface ControlClient {
  /** POST /sets: resolves to the live version nginx read back after storing the push. */
  push(body: string): Promise<number>;
  version(): Promise<number>;
  figures(): Promise<InstanceFigures[]>;
  close(): void;
}

export class ControlError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "ControlError";
    this.status = status;
  }
}

export function controlClient(baseUrl: string, timeoutMs = 2000): ControlClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const base = new URL(baseUrl);
  const request = (method: string, path: string, body?: string) =>
    new Promise<string>((resolve, reject) => {
      const req = http.request(
        new URL(path, base),
        {
          method,
          agent,
          timeout: timeoutMs,
          headers:
            body === undefined
              ? {}
              : { "content-type": "text/plain", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("error", reject);
          res.on("end", () => {
            if (res.statusCode && res.statusCode >= 200 && res.statusCode < 300) resolve(text.trim());
            else
              reject(
                new ControlError(
                  `nginx control ${method} ${path}: ${res.statusCode} ${text.trim().slice(0, 300)}`,
                  res.statusCode,
                ),
              );
          });
        },
      );
      req.on("timeout", () =>
        req.destroy(new ControlError(`nginx control ${method} ${path}: no answer in ${timeoutMs} ms`)),
      );
      req.on("error", (err) =>
        reject(
          err instanceof ControlError
            ? err
            : new ControlError(`nginx control ${method} ${path}: ${err.message}`, undefined, { cause: err }),
        ),
      );
      req.end(body);
    });
  const number = (text: string, what: string) => {
    if (!/^\d+$/.test(text))
      throw new ControlError(`nginx control ${what}: not a version: ${JSON.stringify(text.slice(0, 80))}`);
    return Number(text);
  };
  return {
    push: async (body) => number(await request("POST", "/sets", body), "POST /sets"),
    version: async () => number(await request("GET", "/version"), "GET /version"),
    async figures() {
      const text = await request("GET", "/stats");
      const out: InstanceFigures[] = [];
      for (const line of text.split("\n")) {
        const [upstream, endpoint, r, e, t] = line.split(" ");
        if (!upstream || !endpoint || t === undefined) continue;
        out.push({ upstream, endpoint, requests: Number(r), non2xx: Number(e), upstreamSeconds: Number(t) });
      }
      return out;
    },
    close: () => agent.destroy(),
  };
}

/** nginx's per-instance figures, read at most every 250 ms (a scrape and a status poll share one read). */
export function cachedFigures(control: ControlClient): () => Promise<InstanceFigures[]> {
  let last: { at: number; value: Promise<InstanceFigures[]> } | undefined;
  return () => {
    if (!last || Date.now() - last.at > 250) last = { at: Date.now(), value: control.figures() };
    return last.value;
  };
}
