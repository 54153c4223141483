import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { Reachability } from "../../lib/state-change.ts";

function capture(level?: "debug" | "info" | "warn" | "error") {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    service: "t",
    level,
    write: (l) => lines.push(JSON.parse(l)),
    now: () => new Date(0),
  });
  return { log, lines };
}

describe("logger", () => {
  it("writes one JSON object per line with bound fields and errors described", () => {
    const { log, lines } = capture();
    log.child({ container: "abc" }).warn("skipped", { err: new Error("bad port") });
    assert.deepEqual(lines, [
      {
        ts: "1970-01-01T00:00:00.000Z",
        level: "warn",
        service: "t",
        msg: "skipped",
        container: "abc",
        err: { message: "bad port" },
      },
    ]);
  });
  it("drops lines below the level", () => {
    const { log, lines } = capture("warn");
    log.info("x");
    log.debug("y");
    log.error("z");
    assert.equal(lines.length, 1);
  });
});

describe("Reachability", () => {
  it("logs transitions only", () => {
    const { log, lines } = capture();
    const changes: boolean[] = [];
    const r = new Reachability("consul", log, (up) => changes.push(up));
    r.failed(new Error("ECONNREFUSED"));
    r.failed(new Error("ECONNREFUSED"));
    r.failed(new Error("ECONNREFUSED"));
    r.ok();
    r.ok();
    assert.deepEqual(changes, [false, true]);
    assert.deepEqual(
      lines.map((l) => l.msg),
      ["consul unreachable; retrying until it answers", "consul reachable"],
    );
  });
});
