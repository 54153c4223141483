// When the registrator decides the Consul agent lost its registrations (core/loss.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nextIndex, registryLoss } from "../../services/registrator/src/core/loss.ts";
import type { Registration } from "../../services/registrator/src/core/types.ts";
import { Ledger } from "../../services/registrator/src/state/ledger.ts";

const answer = (index: number, ids: string[] | null) => ({ index, ids: ids && new Set(ids) });

describe("registry loss", () => {
  it("the index going backwards is a loss, whatever the node holds", () => {
    assert.match(
      registryLoss(answer(120, ["a"]), answer(7, ["a"]), ["a"]) ?? "",
      /went backwards \(120 → 7\)/,
    );
    assert.match(registryLoss(answer(120, []), answer(7, []), []) ?? "", /backwards/);
  });

  it("a held registration missing from the node is a loss, and is named", () => {
    const why = registryLoss(answer(5, ["a"]), answer(9, ["a"]), ["a", "b", "c", "d", "e"]);
    assert.match(why ?? "", /^4 of 5 registrations missing from this node \(b, c, d and 1 more\)$/);
  });

  it("an unknown node is a loss when something is held there, and only when it was known before", () => {
    assert.match(registryLoss(undefined, answer(3, null), ["a"]) ?? "", /not in the Consul catalog/);
    assert.match(registryLoss(answer(2, ["a"]), answer(3, null), ["a"]) ?? "", /not in the Consul catalog/);
    assert.equal(registryLoss(answer(2, null), answer(3, null), ["a"]), undefined, "still unknown: no news");
    assert.equal(registryLoss(undefined, answer(3, null), []), undefined);
  });

  it("more in the catalog than held (others' services, a deregistration not yet seen) is no loss", () => {
    assert.equal(registryLoss(answer(5, ["a"]), answer(6, ["a", "b", "foreign"]), ["a"]), undefined);
    assert.equal(registryLoss(undefined, answer(6, ["a"]), ["a"]), undefined);
  });

  it("the next blocking read never asks for index 0 after an answer", () => {
    assert.equal(nextIndex(answer(0, [])), 1);
    assert.equal(nextIndex(answer(Number.NaN, [])), 1);
    assert.equal(nextIndex(answer(42, [])), 42);
  });
});

describe("the held registrations the loss watch compares", () => {
  const registration = (id: string): Registration => ({
    id,
    name: "web",
    address: "10.0.0.2",
    port: 8080,
    tags: [],
    meta: {},
    checks: {},
  });

  it("leave out one whose deregistration is under way, and take it back when that fails", () => {
    const ledger = new Ledger();
    ledger.hold(registration("a"));
    ledger.hold(registration("b"));
    const later = Date.now() + 1;
    assert.deepEqual(ledger.heldSince(later), ["a", "b"]);
    ledger.leaving("a", true);
    assert.deepEqual(ledger.heldSince(later), ["b"], "our own deregistration is no loss");
    // Consul shows "a" gone while our call is under way: nothing is missing.
    assert.equal(registryLoss(answer(5, ["a", "b"]), answer(9, ["b"]), ledger.heldSince(later)), undefined);
    ledger.leaving("a", false);
    assert.deepEqual(ledger.heldSince(later), ["a", "b"], "a failed deregistration: held again");
  });
});
