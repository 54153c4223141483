// What a Consul value may become in nginx config: bare word, quoted string, or refused.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import * as nv from "../../services/templater/src/core/nginx-values.ts";
import { parseNginx } from "../helpers/nginx-syntax.ts";

const value = <T>(v: nv.Verdict<T>): T => {
  assert.ok(v.ok, v.ok ? "" : v.reason);
  return v.value;
};
const reason = (v: nv.Verdict<unknown>): string => {
  assert.ok(!v.ok, `expected a refusal, got ${JSON.stringify(v)}`);
  return v.reason;
};

describe("service names", () => {
  it("accepts DNS-like names", () => {
    for (const n of ["web", "api-v2", "a", "my_svc", "a.b.c", "A1", "x".repeat(63)])
      assert.equal(value(nv.serviceName(n)), n);
  });
  it("refuses anything else, saying why", () => {
    for (const n of [
      "",
      "-web",
      "web-",
      "a..b",
      ".a",
      "a b",
      "a;b",
      "a{",
      "a}",
      'a"',
      "a$b",
      "a#b",
      "a/b",
      "x".repeat(64),
      "é",
    ]) {
      assert.ok(reason(nv.serviceName(n)).length > 0, n);
    }
    assert.match(reason(nv.serviceName(42)), /not a string/);
  });
});

describe("IP addresses", () => {
  it("accepts IPv4 and canonicalises IPv6", () => {
    assert.deepEqual(value(nv.ipAddress("10.0.0.7")), { address: "10.0.0.7", family: 4 });
    assert.deepEqual(value(nv.ipAddress("2001:DB8:0:0:0:0:0:1")), { address: "2001:db8::1", family: 6 });
    assert.deepEqual(value(nv.ipAddress("::ffff:1.2.3.4")), { address: "::ffff:102:304", family: 6 });
  });
  it("refuses hostnames, zone ids, odd spellings and unroutable addresses", () => {
    for (const a of [
      "web.local",
      "01.2.3.4",
      "1.2.3",
      "0x7f.0.0.1",
      "fe80::1%eth0",
      "[::1]",
      " 1.2.3.4",
      "1.2.3.4\n",
      "0.0.0.0",
      "::",
      "",
      "1.2.3.4;",
    ]) {
      reason(nv.ipAddress(a));
    }
    assert.match(reason(nv.ipAddress("consul")), /not an IP address/);
  });
  it("formats host:port with brackets for IPv6", () => {
    assert.equal(nv.hostPort("10.0.0.1", 80), "10.0.0.1:80");
    assert.equal(nv.hostPort("fd00::1", 80), "[fd00::1]:80");
  });
});

describe("ports", () => {
  it("accepts 1–65535 whole numbers only", () => {
    assert.equal(value(nv.port(1)), 1);
    assert.equal(value(nv.port(65535)), 65535);
    for (const p of [0, -1, 65536, 80.5, NaN, "80", null]) reason(nv.port(p));
  });
});

describe("tag and meta values", () => {
  it("keeps bare words as they are", () => {
    for (const t of ["http", "version=2", "a:b/c", "x.y-z_1", "weight=10", "[::1]"])
      assert.equal(value(nv.literal(t, 255)), t);
  });
  it('quotes what needs quotes, escaping " and \\', () => {
    assert.equal(value(nv.literal("a b", 255)), '"a b"');
    assert.equal(value(nv.literal("x;y{z}", 255)), '"x;y{z}"');
    assert.equal(value(nv.literal('say "hi"\\', 255)), '"say \\"hi\\"\\\\"');
    assert.equal(value(nv.literal("# not a comment", 255)), '"# not a comment"');
    assert.equal(value(nv.literal("", 255)), '""');
  });
  it("refuses control characters, $ and huge values", () => {
    for (const t of ["a\nb", "a\rb", "tab\there", "nul\u0000", "$host", "x${y}", "a\u0085b"])
      reason(nv.literal(t, 255));
    assert.match(reason(nv.literal("x".repeat(256), 255)), /longer than 255/);
    reason(nv.literal(7, 255));
  });
  it("meta keys follow Consul's own rule", () => {
    assert.equal(value(nv.metaKey("owner_team-1")), "owner_team-1");
    for (const k of ["a b", "a.b", "__proto__", "x".repeat(129), ""]) reason(nv.metaKey(k));
  });
  it("accepts every value without a control character or '$' as exactly one nginx word with the original text, refuses the others (property)", () => {
    // Mostly what tags and meta hold (printable ASCII, nginx's special characters included,
    // some non-ASCII), with now and then a character that must be refused.
    const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
    const wide = fc.constantFrom("é", "ß", "中", "😀", "\u00a0");
    const bad = fc.constantFrom("\n", "\r", "\t", "\u0000", "\u001b", "\u007f", "\u0085", "$", "\ud800");
    const char = fc.oneof(
      { arbitrary: printable, weight: 30 },
      { arbitrary: wide, weight: 3 },
      { arbitrary: bad, weight: 1 },
    );
    // C0, DEL, C1 and '$' (lone surrogates below), stated as code points, not as the source's regex.
    const forbidden = {
      test: (s: string) =>
        [...s].some(
          (c) =>
            c === "$" || c.codePointAt(0)! < 0x20 || (c.codePointAt(0)! >= 0x7f && c.codePointAt(0)! <= 0x9f),
        ),
    };
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc.array(char, { maxLength: 60 }).map((cs) => cs.join("")),
        (raw) => {
          const v = nv.literal(raw, 255);
          if (v.ok) accepted++;
          else refused++;
          if (forbidden.test(raw) || !raw.isWellFormed()) {
            assert.ok(!v.ok, `${JSON.stringify(raw)} was accepted as ${v.ok ? v.value : ""}`);
            assert.match(v.reason, /control character .* or '\$'/);
            return;
          }
          assert.ok(v.ok, `${JSON.stringify(raw)} was refused: ${v.ok ? "" : v.reason}`);
          const parsed = parseNginx(`probe ${v.value};`);
          assert.equal(parsed.length, 1);
          assert.deepEqual(parsed[0]!.args, [raw]);
        },
      ),
      { numRuns: 2000 },
    );
    // The code under test both accepted and refused often enough for the property to mean something.
    assert.ok(accepted >= 600 && refused >= 200, `accepted ${accepted}, refused ${refused} of 2000`);
  });
  it("a bare word never holds a character that ends, opens or comments a directive; plain words pass (property)", () => {
    const plain = fc.constantFrom(..."abcXYZ019._-:/");
    const special = fc.constantFrom(..." \t\n;{}#\"'\\$()`");
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.array(fc.oneof({ arbitrary: plain, weight: 20 }, { arbitrary: special, weight: 1 }), {
          maxLength: 40,
        }),
        (chars) => {
          const raw = chars.join("");
          const v = nv.token(raw, 255);
          if (v.ok) {
            accepted++;
            assert.doesNotMatch(v.value, /[\s;{}#"'\\$()`]/);
          } else if (/^[a-zA-Z0-9._:/-]+$/.test(raw))
            assert.fail(`plain word ${JSON.stringify(raw)} refused: ${v.reason}`);
        },
      ),
      { numRuns: 2000 },
    );
    assert.ok(accepted >= 400, `only ${accepted} of 2000 words accepted`);
  });
});
