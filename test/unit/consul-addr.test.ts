import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConsulAddr } from "../../lib/consul-client.ts";

describe("parseConsulAddr", () => {
  it("reads the forms the consul CLI accepts", () => {
    assert.deepEqual(parseConsulAddr("127.0.0.1:8500"), {
      secure: false,
      host: "127.0.0.1",
      port: 8500,
      url: "http://127.0.0.1:8500",
    });
    assert.deepEqual(parseConsulAddr("consul"), {
      secure: false,
      host: "consul",
      port: 8500,
      url: "http://consul",
    });
    assert.equal(parseConsulAddr("https://consul.service:8501").secure, true);
    assert.equal(parseConsulAddr("consul:8501", true).url, "https://consul:8501");
    assert.equal(parseConsulAddr("[::1]:8500").host, "::1");
  });
  it("rejects what it cannot read, naming the value", () => {
    assert.throws(() => parseConsulAddr("ftp://x:1"), /"ftp:\/\/x:1": scheme must be http or https/);
    assert.throws(() => parseConsulAddr("http://"), /not a Consul address/);
  });
});
