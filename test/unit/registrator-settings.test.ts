// Settings (every one documented in services/registrator/README.md) and the per-container work queue.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { ConfigError, readSettings } from "../../lib/config.ts";
import { KeyedQueue } from "../../services/registrator/src/keyed-queue.ts";
import { checkSettings, registratorSettings } from "../../services/registrator/src/settings.ts";
import { delay } from "../helpers/wait.ts";

const read = (argv: string[], env: Record<string, string> = {}) => {
  const s = readSettings(registratorSettings, argv, env);
  checkSettings(s);
  return s;
};
const flagError = (argv: string[], env: Record<string, string> = {}) => {
  try {
    read(argv, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail(`expected ${argv.join(" ")} to be refused`);
};

describe("registrator settings", () => {
  it("defaults", () => {
    const s = read([]);
    assert.equal(s.resync, 30_000);
    assert.equal(s.addressMode, "internal");
    assert.equal(s.opsPort, 9101);
    assert.equal(s.identity, "");
    assert.equal(s.consulAddr, "127.0.0.1:8500");
    assert.equal(s.dockerHost, "unix:///var/run/docker.sock");
    assert.equal(s.readyInterval, 25);
    assert.deepEqual(s.labelFilter, []);
  });
  it("reads the environment, flags winning", () => {
    const s = read(["--resync", "5s", "--tags", "a,b"], {
      REGISTRATOR_RESYNC: "1m",
      CONSUL_HTTP_ADDR: "consul:8500",
      REGISTRATOR_LABEL_FILTER: "team=core,deploy",
      REGISTRATOR_EXPLICIT: "true",
    });
    assert.equal(s.resync, 5000);
    assert.deepEqual(s.tags, ["a", "b"]);
    assert.equal(s.consulAddr, "consul:8500");
    assert.deepEqual(s.labelFilter, [{ key: "team", value: "core" }, { key: "deploy" }]);
    assert.equal(s.explicit, true);
  });
  it("bad values name the flag", () => {
    assert.equal(flagError(["--resync", "30"]).setting, "resync");
    assert.equal(flagError(["--address-mode", "both"]).setting, "address-mode");
    assert.equal(flagError(["--host-ip", "not-an-ip"]).setting, "host-ip");
    assert.equal(flagError(["--docker-host", "ssh://x"]).setting, "docker-host");
    assert.equal(flagError(["--identity", "has space"]).setting, "identity");
    assert.equal(flagError(["--tags", "a b"]).setting, "tags");
    assert.equal(flagError(["--label-filter", "=x"]).setting, "label-filter");
    assert.equal(flagError(["--ops-port", "70000"]).setting, "ops-port");
    assert.match(flagError(["--nope"]).message, /nope/);
  });
  it("rules across settings name the flag to fix", () => {
    const published = flagError(["--address-mode", "published"]);
    assert.equal(published.setting, "host-ip");
    assert.match(
      published.message,
      /--host-ip \(REGISTRATOR_HOST_IP\) is required with --address-mode published/,
    );
    assert.equal(flagError(["--resync", "1h", "--check-ttl", "1h"]).setting, "check-ttl");
    assert.equal(flagError(["--consul-addr", "ftp://x"]).setting, "consul-addr");
    assert.equal(read(["--address-mode", "published", "--host-ip", "192.0.2.1"]).hostIp, "192.0.2.1");
  });
  it("the README documents every flag and variable", () => {
    const readme = readFileSync(
      path.join(import.meta.dirname, "..", "..", "services", "registrator", "README.md"),
      "utf8",
    );
    for (const s of Object.values(registratorSettings)) {
      assert.ok(readme.includes(`--${s.flag}`), `--${s.flag} missing from README`);
      if (s.env) assert.ok(readme.includes(s.env), `${s.env} missing from README`);
    }
  });
});

describe("KeyedQueue", () => {
  it("runs one task at a time per key, in order, and keys side by side", async () => {
    const q = new KeyedQueue(4);
    const log: string[] = [];
    const task = (name: string, ms: number) => async () => {
      log.push(`+${name}`);
      await delay(ms);
      log.push(`-${name}`);
    };
    await Promise.all([q.run("a", task("a1", 20)), q.run("a", task("a2", 1)), q.run("b", task("b1", 5))]);
    assert.deepEqual(log, ["+a1", "+b1", "-b1", "-a1", "+a2", "-a2"]);
    assert.equal(q.size, 0);
  });
  it("coalesces a waiting task with the same tag, never one of another kind", async () => {
    const q = new KeyedQueue(1);
    let runs = 0;
    const count = async () => {
      runs++;
      await delay(5);
    };
    const first = q.run("k", count, "event");
    assert.equal(q.run("k", count, "event"), first, "the first has not started yet: same task");
    await delay(1); // now the first runs
    const second = q.run("k", count, "event"); // waits behind the running first: a new task
    const third = q.run("k", count, "event"); // same as the waiting second
    const other = q.run("k", count); // untagged: always its own
    const fourth = q.run("k", count, "event"); // behind the untagged one
    assert.equal(second, third);
    await Promise.all([first, second, third, other, fourth]);
    assert.equal(runs, 4);
  });
  it("limits work overall and survives failing tasks", async () => {
    const q = new KeyedQueue(2);
    let now = 0;
    let peak = 0;
    const work = async () => {
      peak = Math.max(peak, ++now);
      await delay(5);
      now--;
    };
    await Promise.all(["a", "b", "c", "d", "e"].map((k) => q.run(k, work)));
    assert.equal(peak, 2);
    await assert.rejects(
      q.run("a", async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    let ran = false;
    await q.run("a", async () => {
      ran = true;
    });
    assert.ok(ran);
  });
});
