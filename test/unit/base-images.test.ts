import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  baseRoles,
  chooseBase,
  formatEnvFile,
  localImages,
  parseEnvFile,
  upstreamImages,
} from "../../scripts/lib/base-images.ts";

const up = { reachable: true, detail: "answered HTTP 401" };
const down = { reachable: false, detail: "ENOTFOUND" };

describe("chooseBase", () => {
  it("uses an upstream image that is already present, whatever the registry", () => {
    for (const r of baseRoles) assert.deepEqual(chooseBase(r, true, down).image, upstreamImages[r]);
  });
  it("pulls upstream when the registry answers", () => {
    const c = chooseBase("nginx", false, up);
    assert.equal(c.source, "upstream-pull");
    assert.equal(c.image, upstreamImages.nginx);
  });
  it("builds a local stand-in when the registry does not answer, and says why", () => {
    const c = chooseBase("consul", false, down);
    assert.equal(c.source, "local");
    assert.equal(c.image, localImages.consul);
    assert.match(c.reason, /registry unreachable \(ENOTFOUND\)/);
  });
});

describe("deploy/.env", () => {
  it("round-trips image names", () => {
    const set = {
      node: "n:1",
      nginx: "x:2",
      consul: "c:3",
      busybox: "b:4",
      haproxy: "h:5",
      registrator: "r",
      edge: "e",
      demo: "d",
    };
    const env = parseEnvFile(formatEnvFile(set, ["header"]));
    assert.equal(env.DOCKSIDE_NGINX_IMAGE, "x:2");
    assert.equal(env.DOCKSIDE_DEMO_IMAGE, "d");
    assert.equal(env.DOCKSIDE_HAPROXY_IMAGE, "h:5");
    assert.equal(Object.keys(env).length, 8);
  });
});
