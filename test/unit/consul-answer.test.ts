// lib/consul-answer.ts: every answer from Consul is classified before it may change anything.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as z from "../../lib/answer-schema.ts";
import {
  classifyAnswer,
  ConsulAnswerError,
  ConsulTrust,
  trustedValue,
  type RawAnswer,
} from "../../lib/consul-answer.ts";
import type { Logger } from "../../lib/log.ts";

const nodes = z.array(z.object({ Node: z.string(), Address: z.string() }));
const raw = (status: number, body: string, headers: RawAnswer["headers"] = {}): RawAnswer => ({
  status,
  headers,
  body,
});

describe("classifyAnswer", () => {
  it("ok: 2xx with the expected shape, and its index", () => {
    const a = classifyAnswer(
      raw(200, '[{"Node":"n1","Address":"10.0.0.1","Extra":1}]', { "x-consul-index": "42" }),
      nodes,
    );
    assert.equal(a.kind, "ok");
    assert.deepEqual(trustedValue(a), [{ Node: "n1", Address: "10.0.0.1" }]);
    assert.equal(a.kind === "ok" && a.index, 42);
  });

  it("malformed: an empty 200, an HTML page, truncated JSON, a wrong shape, an odd status", () => {
    const cases: [RawAnswer, RegExp][] = [
      [raw(200, ""), /empty body/],
      [
        raw(200, "<html><body>maintenance</body></html>", { "content-type": "text/html" }),
        /not JSON \(text\/html\)/,
      ],
      [raw(200, '[{"Node":"n1","Addr'), /not JSON/],
      [raw(200, "{}"), /unexpected shape/],
      [raw(200, '[{"Node":"n1","Address":7}]'), /0\.Address/],
      [raw(404, "not found"), /unexpected HTTP 404/],
    ];
    for (const [r, message] of cases) {
      const a = classifyAnswer(r, nodes);
      assert.equal(a.kind, "malformed", r.body);
      assert.match((a as { message: string }).message, message);
      assert.throws(
        () => trustedValue(a),
        (e: unknown) => e instanceof ConsulAnswerError && e.kind === "malformed",
      );
    }
  });

  it("denied: 401 and 403 with what Consul said, never 'unreachable'", () => {
    for (const status of [401, 403]) {
      const a = classifyAnswer(raw(status, "Permission denied\n"), nodes);
      assert.deepEqual(a.kind === "denied" && [a.status, a.message], [status, "Permission denied"]);
    }
  });

  it("unreachable: an error, a 5xx, a 429", () => {
    const err = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    assert.equal(classifyAnswer(err, nodes).kind, "unreachable");
    assert.match(
      (classifyAnswer(raw(500, "No cluster leader"), nodes) as { message: string }).message,
      /500: No cluster leader/,
    );
    assert.equal(classifyAnswer(raw(429, ""), nodes).kind, "unreachable");
    // A ConsulAnswerError keeps its own kind.
    assert.equal(classifyAnswer(new ConsulAnswerError("denied", "hidden by ACLs"), nodes).kind, "denied");
  });
});

describe("ConsulTrust", () => {
  const recorder = () => {
    const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
    const at = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
      lines.push({ level, msg, fields });
    const log = {
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
    } as unknown as Logger;
    return { lines, log };
  };

  it("logs once per change of kind (or of Consul's words), counts every problem", () => {
    const { lines, log } = recorder();
    const counted: string[] = [];
    const t = new ConsulTrust(log, { onProblem: (k) => counted.push(k) });
    assert.equal(t.state.kind, "unknown");
    t.ok();
    for (let i = 0; i < 3; i++) t.failed(new ConsulAnswerError("denied", "Permission denied"));
    assert.equal(t.state.kind, "denied");
    assert.equal(t.up, false);
    t.failed(new ConsulAnswerError("denied", "ACL not found"));
    // Two reads failing for two reasons: no new line when they alternate.
    t.failed(new ConsulAnswerError("denied", "Permission denied"));
    t.failed(new ConsulAnswerError("denied", "ACL not found"));
    t.failed(new Error("ECONNREFUSED"));
    t.failed(new Error("socket hang up"));
    t.failed(new ConsulAnswerError("malformed", "HTTP 200 with an empty body"));
    t.ok();
    t.ok();
    assert.deepEqual(
      lines.map((l) => [l.level, l.fields?.problem ?? null]),
      [
        ["info", null],
        ["error", "denied"],
        ["error", "denied"],
        ["warn", "unreachable"],
        ["error", "malformed"],
        ["info", null],
      ],
    );
    assert.deepEqual(counted, [
      ...Array<string>(6).fill("denied"),
      "unreachable",
      "unreachable",
      "malformed",
    ]);
    assert.equal(t.up, true);
    assert.equal(t.everOk, true);
  });
});
