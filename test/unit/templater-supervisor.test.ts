// NginxSupervisor, the exec-mode reloader, against a stand-in nginx master
// (test/helpers/fake-nginx.sh: a process with "nginx: worker process" children that
// handles SIGHUP like nginx does). The confirmer is a stand-in too: the real one is
// tested in templater-confirmer.test.ts, and real nginx in test/integration/templater-*.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, it } from "node:test";
import { createLogger, type Fields } from "../../lib/log.ts";
import {
  exitStatus,
  NginxSupervisor,
  type Confirmer,
  type NginxExit,
} from "../../services/templater/src/apply/nginx.ts";
import { waitFor } from "../helpers/wait.ts";

/** Whether process `pid` has handlers installed for all these signal numbers. */
function handles(pid: number, signals: number[]): boolean {
  const m = /^SigCgt:\s*([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  const caught = BigInt(`0x${m![1]}`);
  return signals.every((n) => (caught >> BigInt(n - 1)) & 1n);
}

const fakeNginx = path.join(import.meta.dirname, "..", "helpers", "fake-nginx.sh");

/**
 * Whether the stand-in runs its script with its handlers installed. Between fork and exec the
 * child is still a copy of this process, whose handlers /proc shows too: check the exec first.
 */
function serving(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("fake-nginx.sh") && handles(pid, [1, 15]);
  } catch {
    return false; // gone meanwhile
  }
}
const running: NginxSupervisor[] = [];
afterEach(() => {
  for (const s of running.splice(0)) s.stop("SIGTERM");
});

function rig(
  opts: {
    confirm?: (generation: string) => boolean;
    confirmTimeoutMs?: number;
    env?: Record<string, string>;
  } = {},
) {
  const logs: Fields[] = [];
  const exits: NginxExit[] = [];
  const asked: string[] = [];
  // Like nginx answering on its confirmation URL only once it runs: the stand-in counts as
  // serving once it has installed its signal handlers (the script's first lines).
  const confirmer: Confirmer = {
    async confirm(generation, isAlive = () => true) {
      asked.push(generation);
      await waitFor(() => !isAlive() || (s.pid !== undefined && serving(s.pid)), {
        what: "the stand-in's handlers",
      });
      if (!isAlive()) return false;
      return opts.confirm ? opts.confirm(generation) : true;
    },
  };
  for (const [k, v] of Object.entries(opts.env ?? {})) process.env[k] = v;
  const s = new NginxSupervisor({
    nginxBin: fakeNginx,
    confPath: "/nonexistent/nginx.conf",
    confirmer,
    confirmTimeoutMs: opts.confirmTimeoutMs ?? 5000,
    log: createLogger({ service: "test", level: "debug", write: (l) => logs.push(JSON.parse(l) as Fields) }),
    onExit: (e) => exits.push(e),
  });
  running.push(s);
  return { s, logs, exits, asked };
}

afterEach(() => {
  delete process.env.FAKE_NGINX_STUCK;
  delete process.env.FAKE_NGINX_EXIT_AFTER;
  delete process.env.FAKE_NGINX_SLOW_START;
});

const stale = "old nginx workers still accept connections after the reload";

describe("NginxSupervisor", () => {
  it("the first reload starts nginx and waits for its confirmation", async () => {
    const r = rig();
    await r.s.reload("g1");
    assert.equal(r.s.running, true);
    assert.equal(typeof r.s.pid, "number");
    assert.deepEqual(r.asked, ["g1"]);
    assert.ok(r.logs.some((l) => l.msg === "nginx started" && l.pid === r.s.pid));
  });

  it("a later reload sends SIGHUP, and returns once the old worker stopped accepting", async () => {
    const r = rig();
    await r.s.reload("g1");
    await r.s.reload("g2");
    assert.deepEqual(r.asked, ["g1", "g2"]);
    assert.equal(r.logs.filter((l) => l.msg === stale).length, 0);
    assert.equal(r.s.running, true, "SIGHUP did not kill it: the handler was there first");
  });

  it("an old worker still accepting at the deadline: the reload ends at the deadline with a warning naming it", async () => {
    const r = rig({ confirmTimeoutMs: 800, env: { FAKE_NGINX_STUCK: "1" } });
    await r.s.reload("g1");
    const t0 = performance.now();
    await r.s.reload("g2");
    const took = performance.now() - t0;
    const warning = r.logs.find((l) => l.msg === stale);
    assert.ok(warning, "warned");
    assert.equal((warning.pids as number[]).length, 1);
    assert.ok(took >= 800, `returned after ${took.toFixed(0)} ms, before the 800 ms deadline`);
  });

  it("a generation nginx never confirms fails the reload, naming it", async () => {
    const r = rig({ confirm: (g) => g !== "bad" });
    await r.s.reload("g1");
    await assert.rejects(r.s.reload("bad"), /did not start serving generation bad after SIGHUP/);
    assert.equal(r.s.running, true, "nginx itself keeps running");
  });

  it("stop() forwards the signal and reports a requested exit; an exit on its own is reported as not requested", async () => {
    const a = rig();
    await a.s.reload("g1");
    // TERM: a shell started in the background may have QUIT ignored, and then cannot trap it.
    assert.equal(a.s.stop("SIGTERM"), true);
    await waitFor(() => a.exits.length === 1, { what: "the exit" });
    assert.deepEqual(a.exits[0], { code: 0, signal: null, requested: true });
    assert.equal(a.s.running, false);
    assert.equal(a.s.stop("SIGTERM"), false, "nothing left to stop");
    await assert.rejects(a.s.reload("g2"), /nginx is not running/);

    const b = rig({ env: { FAKE_NGINX_EXIT_AFTER: "0.3" } });
    await b.s.reload("g1");
    await waitFor(() => b.exits.length === 1, { what: "the exit on its own" });
    assert.deepEqual(b.exits[0], { code: 3, signal: null, requested: false });
    assert.ok(b.logs.some((l) => l.msg === "nginx exited" && l.level === "error"));
  });

  it("counts as serving (what /health reports) only once nginx confirmed, not from its start", async () => {
    const r = rig();
    const started = r.s.reload("g1");
    assert.equal(r.s.running, true, "spawned");
    assert.equal(r.s.serving, false, "not confirmed yet");
    await started;
    assert.equal(r.s.serving, true);
    r.s.stop("SIGTERM");
    await waitFor(() => r.exits.length === 1, { what: "the exit" });
    assert.equal(r.s.serving, false);
  });

  it("a stop right after the start, whose signal ends nginx before its handlers exist, is a requested stop: status 0", async () => {
    const r = rig({ env: { FAKE_NGINX_SLOW_START: "2" } });
    const started = r.s.reload("g1");
    assert.equal(r.s.stop("SIGTERM"), true);
    await assert.rejects(started, /nginx exited right after starting/);
    await waitFor(() => r.exits.length === 1, { what: "the exit" });
    assert.deepEqual(r.exits[0], { code: null, signal: "SIGTERM", requested: true });
    assert.equal(exitStatus(r.exits[0]!), 0);
    assert.ok(r.logs.some((l) => l.msg === "nginx exited" && l.level === "info"));
  });
});

describe("exitStatus", () => {
  it("is nginx's own status, or 128 + the signal that ended it unasked", () => {
    assert.equal(exitStatus({ code: 0, signal: null, requested: true }), 0);
    assert.equal(exitStatus({ code: 3, signal: null, requested: false }), 3);
    assert.equal(exitStatus({ code: null, signal: "SIGKILL", requested: false }), 137);
    assert.equal(exitStatus({ code: null, signal: "SIGQUIT", requested: false }), 131);
    assert.equal(exitStatus({ code: null, signal: null, requested: false }), 1);
  });

  it("is 0 for a stop we asked for, even when our signal ended nginx", () => {
    assert.equal(exitStatus({ code: null, signal: "SIGQUIT", requested: true }), 0);
  });
});
