// Reachability's log lines: an outage, an answer that cannot be trusted, and the setting to change.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tlsHint } from "../../lib/consul-answer.ts";
import { createLogger } from "../../lib/log.ts";
import { Reachability } from "../../lib/state-change.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: "t", level: "debug", write: (l) => lines.push(JSON.parse(l)) });
  return { lines, log };
}

describe("Reachability", () => {
  it("logs an outage once, and its end once", () => {
    const { lines, log } = capture();
    const r = new Reachability("consul", log);
    r.failed(new Error("connect ECONNREFUSED"));
    r.failed(new Error("connect ECONNREFUSED"));
    r.ok();
    r.ok();
    assert.deepEqual(
      lines.map((l) => l.msg),
      ["consul unreachable; retrying until it answers", "consul reachable"],
    );
  });

  it("an answer that cannot be trusted is not called an outage", () => {
    const { lines, log } = capture();
    const err = Object.assign(new Error("a 200 answer that is not Consul's (text/html)"), {
      kind: "malformed",
    });
    new Reachability("consul", log).failed(err);
    assert.equal(lines[0]!.msg, "consul answer cannot be trusted; retrying until it answers properly");
  });

  it("a TLS failure names the setting to change", () => {
    const { lines, log } = capture();
    const err = Object.assign(new Error("unable to verify the first certificate"), {
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });
    new Reachability("consul", log, undefined, tlsHint).failed(err);
    assert.match(String(lines[0]!.fix), /CONSUL_CACERT/);
    assert.equal(tlsHint(new Error("connect ECONNREFUSED")), undefined);
  });
});
