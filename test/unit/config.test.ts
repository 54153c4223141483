import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parsers, readSettings, settingsHelp, type Setting } from "../../lib/config.ts";

const settings = {
  interval: {
    flag: "interval",
    env: "APP_INTERVAL",
    default: 30_000,
    help: "resync",
    parse: parsers.duration({ minMs: 100 }),
  } satisfies Setting<number>,
  tags: {
    flag: "tags",
    env: "APP_TAGS",
    default: [] as string[],
    help: "extra tags",
    parse: parsers.list(),
  } satisfies Setting<string[]>,
  once: {
    flag: "once",
    env: "APP_ONCE",
    default: false,
    help: "run once",
    parse: parsers.bool(),
    switch: true,
  } satisfies Setting<boolean>,
  mode: {
    flag: "mode",
    env: null,
    default: "internal" as "internal" | "published",
    help: "address mode",
    parse: parsers.oneOf(["internal", "published"] as const),
  } satisfies Setting<"internal" | "published">,
};

describe("readSettings", () => {
  it("uses defaults when nothing is set", () => {
    assert.deepEqual(readSettings(settings, [], {}), {
      interval: 30_000,
      tags: [],
      once: false,
      mode: "internal",
    });
  });
  it("takes the environment, and flags over the environment", () => {
    const v = readSettings(settings, ["--interval", "2s", "--once"], {
      APP_INTERVAL: "1m",
      APP_TAGS: "a, b,,c",
    });
    assert.equal(v.interval, 2000);
    assert.deepEqual(v.tags, ["a", "b", "c"]);
    assert.equal(v.once, true);
  });
  it("parses switches from the environment as real booleans", () => {
    assert.equal(readSettings(settings, [], { APP_ONCE: "false" }).once, false);
    assert.equal(readSettings(settings, [], { APP_ONCE: "true" }).once, true);
    assert.throws(() => readSettings(settings, [], { APP_ONCE: "maybe" }), /APP_ONCE.*not a boolean/);
  });
  it("names the flag or variable that is wrong", () => {
    assert.throws(
      () => readSettings(settings, ["--interval", "30"], {}),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.setting, "interval");
        assert.match(e.message, /invalid --interval: "30" is not a duration; write it with a unit/);
        return true;
      },
    );
    assert.throws(
      () => readSettings(settings, [], { APP_INTERVAL: "10ms" }),
      /invalid APP_INTERVAL: 10ms is shorter than 100ms/,
    );
    assert.throws(
      () => readSettings(settings, ["--mode", "both"], {}),
      /invalid --mode: "both" is not one of internal, published/,
    );
  });
  it("rejects unknown flags", () => {
    assert.throws(() => readSettings(settings, ["--intervall", "1s"], {}), ConfigError);
  });
  it("prints every setting in the help", () => {
    const help = settingsHelp(settings);
    for (const s of Object.values(settings)) assert.ok(help.includes(`--${s.flag}`));
    assert.match(help, /--interval \(APP_INTERVAL\)\s+resync \(default: 30000\)/);
  });
});

describe("parsers", () => {
  it("durations add up their parts", () => {
    assert.equal(parsers.duration()("1m30s"), 90_000);
    assert.equal(parsers.duration()("250ms"), 250);
    assert.equal(parsers.duration()("1.5s"), 1500);
    assert.throws(() => parsers.duration()("1 s"));
    assert.throws(() => parsers.duration()("-1s"));
  });
  it("ints check range and form", () => {
    assert.equal(parsers.int({ min: 1 })("5"), 5);
    assert.throws(() => parsers.int({ min: 1 })("0"), /below the minimum/);
    assert.throws(() => parsers.int()("5x"), /not a whole number/);
    assert.throws(() => parsers.port()("70000"), /above the maximum/);
  });
});
