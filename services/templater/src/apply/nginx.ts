// nginx, driven through execa: `nginx -t` on a staged config, and the two ways to make nginx
// load a new one — supervise it as a child and send SIGHUP (exec mode), or run a command.

import { readdir, readFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import { execa, type ResultPromise } from "execa";
import { sleep } from "../../../../lib/backoff.ts";
import type { Logger } from "../../../../lib/log.ts";

export interface ValidationResult {
  ok: boolean;
  /** nginx's own words (errors name file and line). */
  output: string;
}

export interface Validator {
  validate(mainPath: string): Promise<ValidationResult>;
}

export function nginxValidator(nginxBin: string): Validator {
  return {
    async validate(mainPath) {
      // -e stderr: errors before the config's own error_log is read go to stderr, not to a
      // compiled-in log file an unprivileged user may not be able to open.
      // stdout is /dev/null, not a pipe: Node's pipes are sockets, and nginx -t opens every log
      // path, `access_log /dev/stdout` included, which fails on a socket (ENXIO).
      const r = await execa(nginxBin, ["-t", "-q", "-e", "stderr", "-c", mainPath], {
        reject: false,
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
        timeout: 60_000,
      });
      const output = String(r.stderr ?? "").trim() || (r.exitCode === undefined ? (r.message ?? "") : "");
      return { ok: r.exitCode === 0, output };
    },
  };
}

/** Makes nginx load the live config; resolves once it serves `generation` (or throws). */
export interface Reloader {
  reload(generation: string): Promise<void>;
}

export interface Confirmer {
  /** Resolves true once nginx answers with this generation id, false after the timeout. */
  confirm(generation: string, isAlive?: () => boolean): Promise<boolean>;
}

/** Asks nginx which generation it serves, on a fresh connection each time (a kept-alive one may reach an old worker). */
export function generationConfirmer(url: string | null, timeoutMs: number): Confirmer {
  const ask = (u: URL) =>
    new Promise<string>((resolve, reject) => {
      const req = http.get(u, { agent: false, headers: { connection: "close" }, timeout: 500 }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve(body.trim()));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
    });
  return {
    async confirm(generation, isAlive = () => true) {
      if (!url) return true;
      const u = new URL(url);
      const deadline = Date.now() + timeoutMs;
      let delay = 2;
      while (Date.now() < deadline && isAlive()) {
        try {
          if ((await ask(u)) === generation) return true;
        } catch {
          // not listening yet, or an old worker closing: ask again
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 10);
      }
      return false;
    },
  };
}

/** Whether a process has installed a handler for SIGHUP (before that, SIGHUP would kill it). */
async function handlesSighup(pid: number): Promise<boolean> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const m = /^SigCgt:\s*([0-9a-f]+)/m.exec(status);
    return m ? (BigInt(`0x${m[1]}`) & 1n) === 1n : true;
  } catch {
    return true; // no /proc: cannot tell, and the first confirmation has already passed
  }
}

/** The master's children and their titles ("nginx: worker process", "... is shutting down"). */
async function childTitles(master: number): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== master) continue;
      out.set(Number(entry), (await readFile(`/proc/${entry}/cmdline`, "utf8")).replaceAll("\0", " ").trim());
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const accepting = (title: string) =>
  title.startsWith("nginx: worker process") && !title.includes("shutting down");

export interface NginxExit {
  code: number | null;
  signal: string | null;
  /** Whether we asked it to stop. */
  requested: boolean;
}

/**
 * The status an exec-mode templater exits with when nginx has ended: nginx's own, or 128 + the
 * signal that ended it. A stop we asked for counts as done even when our signal ended nginx
 * before it had set up its handlers (a stop right after its start).
 */
export function exitStatus(exit: NginxExit): number {
  if (exit.code !== null) return exit.code;
  if (exit.requested && exit.signal !== null) return 0;
  const n = exit.signal ? os.constants.signals[exit.signal as NodeJS.Signals] : undefined;
  return n ? 128 + n : 1;
}

export interface SupervisorOptions {
  nginxBin: string;
  /** The config path nginx runs with (it resolves to the live generation). */
  confPath: string;
  confirmer: Confirmer;
  /** Longest a reload may take. */
  confirmTimeoutMs: number;
  log: Logger;
  onExit: (exit: NginxExit) => void;
}

/** Exec mode: nginx as a child process, started after the first good render, reloaded with SIGHUP. */
export class NginxSupervisor implements Reloader {
  readonly #o: SupervisorOptions;
  #child: ResultPromise | undefined;
  /** An nginx master started by an earlier templater (it outlived it), watched by polling. */
  #adopted: number | undefined;
  #alive = false;
  /** nginx confirmed serving a generation (it had set up its signal handlers by then). */
  #confirmed = false;
  #stopRequested = false;

  constructor(options: SupervisorOptions) {
    this.#o = options;
  }

  get running(): boolean {
    return this.#alive;
  }

  /**
   * Whether nginx runs and has confirmed serving a generation. Between its start and that
   * confirmation it runs but does not answer yet, and a stop signal would kill it unhandled.
   */
  get serving(): boolean {
    return this.#alive && this.#confirmed;
  }

  get pid(): number | undefined {
    return this.#alive ? (this.#adopted ?? this.#child?.pid) : undefined;
  }

  /**
   * Takes over an nginx master that runs already (this templater restarted after a crash, the
   * edge's init kept nginx running): its pid from the pid file, checked to be an nginx master.
   * Returns the pid, or undefined when there is none to adopt.
   */
  async adopt(pidFile: string): Promise<number | undefined> {
    let pid: number;
    try {
      pid = Number((await readFile(pidFile, "utf8")).trim());
      const title = (await readFile(`/proc/${pid}/cmdline`, "utf8")).replaceAll("\0", " ");
      if (!Number.isInteger(pid) || pid <= 1 || !title.startsWith("nginx: master process")) return undefined;
      process.kill(pid, 0);
    } catch {
      return undefined;
    }
    this.#adopted = pid;
    this.#alive = true;
    this.#confirmed = true;
    this.#o.log.info("adopted the running nginx", { pid });
    const watch = setInterval(() => {
      try {
        process.kill(pid, 0);
      } catch {
        clearInterval(watch);
        this.#alive = false;
        const exit: NginxExit = {
          code: this.#stopRequested ? 0 : null,
          signal: null,
          requested: this.#stopRequested,
        };
        this.#o.log[exit.requested ? "info" : "error"]("nginx exited", { ...exit, pid });
        this.#o.onExit(exit);
      }
    }, 100);
    return pid;
  }

  async reload(generation: string): Promise<void> {
    if (!this.#child && this.#adopted === undefined) return this.#start(generation);
    if (!this.#alive) throw new Error("nginx is not running");
    const pid = this.pid!;
    for (let i = 0; i < 500 && !(await handlesSighup(pid)); i++) await sleep(10);
    const old = [...(await childTitles(pid))].filter(([, t]) => accepting(t)).map(([p]) => p);
    const deadline = Date.now() + this.#o.confirmTimeoutMs;
    process.kill(pid, "SIGHUP");
    if (!(await this.#o.confirmer.confirm(generation, () => this.#alive))) {
      throw new Error(
        `nginx did not start serving generation ${generation} after SIGHUP (see its error log above)`,
      );
    }
    // New workers serve the new config at once, but the master lets the old ones accept
    // connections for another ~100 ms. The reload is finished when none of them accepts.
    while (Date.now() < deadline) {
      const now = await childTitles(pid);
      if (!old.some((p) => accepting(now.get(p) ?? ""))) return;
      await sleep(5);
    }
    this.#o.log.warn("old nginx workers still accept connections after the reload", { pids: old });
  }

  async #start(generation: string): Promise<void> {
    const { nginxBin, confPath, log } = this.#o;
    const child = execa(nginxBin, ["-c", confPath, "-e", "stderr", "-g", "daemon off;"], {
      stdio: "inherit",
      reject: false,
      forceKillAfterDelay: false,
    });
    this.#child = child;
    this.#alive = true;
    log.info("nginx started", { pid: child.pid, conf: confPath });
    void child.then((r) => {
      this.#alive = false;
      const exit: NginxExit = {
        code: r.exitCode ?? null,
        signal: r.signal ?? null,
        requested: this.#stopRequested,
      };
      log[exit.requested ? "info" : "error"]("nginx exited", { ...exit });
      this.#o.onExit(exit);
    });
    const confirmed = await this.#o.confirmer.confirm(generation, () => this.#alive);
    this.#confirmed = confirmed && this.#alive;
    if (!confirmed) {
      throw new Error(
        this.#alive
          ? `nginx started but does not answer with generation ${generation}`
          : "nginx exited right after starting",
      );
    }
  }

  /** Forwards a stop signal (TERM: fast, QUIT: graceful). Returns false when nginx is not running. */
  stop(signal: NodeJS.Signals): boolean {
    const pid = this.pid;
    if (!pid) return false;
    this.#stopRequested = true;
    process.kill(pid, signal);
    return true;
  }
}

/** Command mode: nginx runs elsewhere; a configured command (run by a shell) reloads it. */
export function commandReloader(command: string, confirmer: Confirmer, log: Logger): Reloader {
  return {
    async reload(generation) {
      const r = await execa(command, {
        shell: true,
        reject: false,
        all: true,
        stdin: "ignore",
        timeout: 60_000,
      });
      if (r.exitCode !== 0) {
        throw new Error(
          `reload command exited ${r.exitCode ?? r.signal}: ${(r.all ?? r.message).trim().slice(0, 2000)}`,
        );
      }
      log.debug("reload command done", { command });
      if (!(await confirmer.confirm(generation))) {
        throw new Error(`nginx does not answer with generation ${generation} after the reload command`);
      }
    },
  };
}

/** `--once` in exec mode: there is no nginx to reload. */
export const noReload: Reloader = { reload: async () => {} };

/** Where nginx writes its pid (the default templates' `pid` directive). */
export const nginxPidFile = "/tmp/dockside-nginx.pid";

export interface ResumeOptions {
  supervisor: NginxSupervisor;
  pidFile: string;
  /** The live generation (null: none yet) and the config path nginx runs with. */
  liveId: string | null;
  liveMainPath: string;
  /** Where nginx says which generation it serves. */
  confirmUrl: string | null;
  validator: Validator;
  /** Starts nginx: the supervisor (in dynamic mode wrapped to push the instance sets). */
  starter: Reloader;
  log: Logger;
}

/**
 * Exec mode at start-up, before any render. After a templater crash nginx kept running (the
 * edge's init restarted only us): adopt it; its instance sets are pushed again once Consul
 * answers. After a restart: serve the last good config while Consul is asked.
 */
export async function resumeNginx(o: ResumeOptions): Promise<void> {
  const { log } = o;
  const adopted = await o.supervisor.adopt(o.pidFile);
  if (adopted) {
    const served = await generationConfirmer(o.confirmUrl, 1000)
      .confirm(o.liveId ?? "", () => true)
      .catch(() => false);
    log.info("nginx was running; serving on", { pid: adopted, generation: o.liveId, confirmed: served });
    return;
  }
  if (!o.liveId) return;
  const check = await o.validator.validate(o.liveMainPath);
  if (check.ok) {
    log.info("starting nginx with the last applied config", { generation: o.liveId });
    await o.starter.reload(o.liveId).catch((err: Error) => log.warn("nginx start failed", { err }));
  } else {
    log.warn("the last applied config no longer passes nginx -t; waiting for a new render", {
      output: check.output,
    });
  }
}
