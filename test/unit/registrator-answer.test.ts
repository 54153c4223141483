// Which Consul answers the registrator can act on (consul/answer.ts): a write is
// confirmed only by a well-formed answer; 401/403 are "denied", never "unreachable".
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConsulAnswerError } from "../../lib/consul-answer.ts";
import { classifyAnswer, deniedIn } from "../../services/registrator/src/consul/answer.ts";

const html = Buffer.from("<html><body>maintenance</body></html>");
const json = "application/json";

describe("Consul answers", () => {
  it("an HTML 200 is not a confirmation, for writes and reads", () => {
    for (const expect of ["empty", "object", "object-or-null"] as const) {
      const c = classifyAnswer({ status: 200, contentType: "text/html", body: html }, expect);
      assert.equal(c.kind, "malformed", expect);
      assert.match(c.message ?? "", /not Consul's \(text\/html: "<html><body>maintenance/);
    }
  });

  it("a write's empty 200 is ok; a read's empty 200, array or undecodable JSON is malformed", () => {
    assert.equal(classifyAnswer({ status: 200, contentType: "", body: undefined }, "empty").kind, "ok");
    assert.equal(classifyAnswer({ status: 200, contentType: json, body: { a: 1 } }, "object").kind, "ok");
    assert.equal(classifyAnswer({ status: 200, contentType: json, body: null }, "object-or-null").kind, "ok");
    for (const body of [undefined, [], null, 3, "x"]) {
      assert.equal(
        classifyAnswer({ status: 200, contentType: json, body }, "object").kind,
        "malformed",
        String(body),
      );
    }
    const truncated = classifyAnswer(
      { status: 200, contentType: json, body: Buffer.from('{"a":') },
      "object",
    );
    assert.equal(truncated.kind, "malformed");
  });

  it("401 and 403 are denied, with Consul's words; 5xx and no answer are unreachable; 400/404 are answers", () => {
    const d = classifyAnswer(
      { status: 403, contentType: "text/plain", body: Buffer.from("Permission denied") },
      "empty",
    );
    assert.deepEqual(d, { kind: "denied", message: "permission denied: Permission denied" });
    assert.equal(
      classifyAnswer({ status: 401, contentType: "", body: undefined }, "empty").message,
      "permission denied: HTTP 401",
    );
    assert.equal(
      classifyAnswer({ status: 500, contentType: "", body: undefined }, "object").kind,
      "unreachable",
    );
    assert.equal(
      classifyAnswer({ status: 0, contentType: "", body: undefined }, "object").kind,
      "unreachable",
    );
    assert.equal(classifyAnswer({ status: 404, contentType: "", body: undefined }, "empty").kind, "ok");
    assert.equal(classifyAnswer({ status: 400, contentType: "", body: undefined }, "empty").kind, "ok");
  });

  it("Consul's words are cleaned of control characters before they reach a log line", () => {
    const d = classifyAnswer(
      { status: 403, contentType: "text/plain", body: Buffer.from("no\u0085\u2028way\n") },
      "empty",
    );
    assert.equal(d.message, "permission denied: no way");
  });

  it("a refusal is found through the causes that wrap it", () => {
    const denied = new ConsulAnswerError("denied", "permission denied: x", {
      status: 403,
      request: "agent.service.register",
    });
    assert.equal(deniedIn(new Error("outer", { cause: denied })), denied);
    assert.equal(deniedIn(new ConsulAnswerError("malformed", "m", { status: 200, request: "r" })), undefined);
    assert.equal(deniedIn(new Error("plain")), undefined);
  });
});
