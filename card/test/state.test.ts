import { readFileSync } from "node:fs";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ZoneEditor,
  dateStamp,
  recentBoxes,
  uniqueName,
  validateZones,
  zonesFromAttributes,
  type Zone,
} from "../src/state.js";

const detectorZones = (): Zone[] =>
  zonesFromAttributes([
    { name: "chimney", polygon: [[0.6, 0.4], [0.7, 0.4], [0.7, 0.55]], rule: "inside", enabled: true },
    { name: "remote", polygon: [[0.1, 0.1], [0.2, 0.1]], rule: "iou" }, // too few points: skipped
    "garbage",
  ]);

describe("zonesFromAttributes", () => {
  it("reads the detector's masks and skips what is not a zone", () => {
    const zones = detectorZones();
    expect(zones).toHaveLength(1);
    expect(zones[0]).toEqual({
      name: "chimney",
      polygon: [[0.6, 0.4], [0.7, 0.4], [0.7, 0.55]],
      rule: "inside",
      enabled: true,
    });
    expect(zonesFromAttributes(undefined)).toEqual([]);
  });
});

describe("ZoneEditor", () => {
  let editor: ZoneEditor;
  beforeEach(() => {
    editor = new ZoneEditor();
    editor.load(detectorZones());
  });

  it("draws a polygon point by point and names it uniquely", () => {
    editor.startDrawing();
    editor.addPoint([0.1, 0.1]);
    editor.addPoint([0.3, 0.1]);
    expect(editor.canFinish).toBe(false);
    expect(editor.finishDrawing()).toBe(-1);
    editor.addPoint([0.3, 0.3]);
    expect(editor.finishDrawing("chimney")).toBe(1);
    expect(editor.zones[1].name).toBe("chimney 2");
    expect(editor.zones[1].rule).toBe("inside");
    expect(editor.drawing).toBeNull();
    expect(editor.dirty).toBe(true);
  });

  it("refuses a drawing whose points are on a line", () => {
    editor.startDrawing();
    for (const p of [[0, 0], [0.5, 0.5], [1, 1]] as [number, number][]) editor.addPoint(p);
    expect(editor.canFinish).toBe(false);
    editor.undoPoint();
    expect(editor.drawing).toEqual([[0, 0], [0.5, 0.5]]);
  });

  it("moves, inserts and deletes points but keeps at least three", () => {
    editor.movePoint(0, 0, [0.65, 0.35]);
    expect(editor.zones[0].polygon[0]).toEqual([0.65, 0.35]);
    expect(editor.deletePoint(0, 1)).toBe(false); // 3 points: refused
    editor.insertPoint(0, 0);
    expect(editor.zones[0].polygon[1]).toEqual([0.675, 0.375]);
    expect(editor.deletePoint(0, 1)).toBe(true);
    expect(editor.zones[0].polygon).toHaveLength(3);
  });

  it("renames, sets rule and enabled, and produces the set_zones data", () => {
    editor.rename(0, "  chimney stack ");
    editor.setRule(0, "iou");
    editor.setEnabled(0, false);
    expect(editor.serviceData()).toEqual({
      zones: [
        {
          name: "chimney stack",
          polygon: [[0.6, 0.4], [0.7, 0.4], [0.7, 0.55]],
          rule: "iou",
          enabled: false,
        },
      ],
    });
  });

  it("will not save an unnamed or duplicate zone", () => {
    editor.maskBox([0.1, 0.1, 0.2, 0.2, 0.7], new Date(2026, 6, 1, 12, 15));
    editor.rename(1, "chimney");
    expect(editor.errors).toEqual(["chimney: another zone has this name"]);
    expect(() => editor.serviceData()).toThrow(/another zone has this name/);
    editor.rename(1, " ");
    expect(editor.errors).toEqual(["zone 2: give it a name"]);
  });

  it("masks a detection box as an IoU rectangle named with the date", () => {
    const now = new Date(2026, 6, 1, 12, 15);
    expect(editor.maskBox([0.4, 0.3, 0.5, 0.45, 0.81], now)).toBe(1);
    expect(editor.maskBox([0.4, 0.3, 0.5, 0.45, 0.81], now)).toBe(2);
    expect(editor.zones[1]).toEqual({
      name: "masked 2026-07-01 12:15",
      polygon: [[0.4, 0.3], [0.5, 0.3], [0.5, 0.45], [0.4, 0.45]],
      rule: "iou",
      enabled: true,
    });
    expect(editor.zones[2].name).toBe("masked 2026-07-01 12:15 2");
    expect(editor.maskBox([0.4, 0.3, 0.4, 0.45])).toBe(-1);
  });

  it("keeps unsaved edits when the detector's state arrives, until saved or reverted", () => {
    editor.deleteZone(0);
    editor.load(detectorZones());
    expect(editor.zones).toHaveLength(0);
    editor.saved();
    editor.load(detectorZones());
    expect(editor.zones).toHaveLength(1);
    editor.deleteZone(0);
    editor.load(detectorZones(), true);
    expect(editor.zones).toHaveLength(1);
    expect(editor.dirty).toBe(false);
  });

  it("does not share point arrays with what it loaded", () => {
    const zones = detectorZones();
    editor.load(zones, true);
    editor.movePoint(0, 0, [0, 0]);
    expect(zones[0].polygon[0]).toEqual([0.6, 0.4]);
  });
});

describe("helpers", () => {
  it("uniqueName numbers duplicates", () => {
    expect(uniqueName("zone", [])).toBe("zone");
    expect(uniqueName("zone", ["zone", "zone 2"])).toBe("zone 3");
  });
  it("dateStamp is local date and minute", () => {
    expect(dateStamp(new Date(2026, 0, 5, 7, 3))).toBe("2026-01-05 07:03");
  });
  it("validateZones reports each problem", () => {
    expect(
      validateZones([
        { name: "a", polygon: [[0, 0], [1, 1]], rule: "inside", enabled: true },
        { name: "b", polygon: [[0, 0], [0.5, 0.5], [1, 1]], rule: "inside", enabled: true },
      ]),
    ).toEqual(["a: needs at least 3 points", "b: its points enclose no area"]);
  });
  it("recentBoxes merges alert boxes, unconfirmed boxes and history, without masked ones", () => {
    const attributes = {
      boxes: [[0.1, 0.1, 0.2, 0.2, 0.6]],
      dropped: [
        { reason: "vote", box: [0.5, 0.5, 0.6, 0.6, 0.3] },
        { reason: "mask", box: [0.7, 0.7, 0.8, 0.8, 0.3], mask: "chimney" },
        { reason: "score", detail: "0.01" },
      ],
    };
    const history = [[0.101, 0.1, 0.2, 0.2, 0.5], [0.3, 0.3, 0.4, 0.4, 0.4]];
    expect(recentBoxes(attributes, history)).toEqual([
      [0.1, 0.1, 0.2, 0.2, 0.6],
      [0.5, 0.5, 0.6, 0.6, 0.3],
      [0.3, 0.3, 0.4, 0.4, 0.4],
    ]);
    expect(recentBoxes(undefined, history, 1)).toHaveLength(1);
  });
});

describe("the detector's mask rules (tests/contract/masks_rules.json)", () => {
  // The card checks only what a person drawing needs at once; set_zones applies every rule
  // (limits, crossing edges) and the card shows its error. It must never block what the
  // detector accepts.
  const rules = JSON.parse(
    readFileSync(new URL("../../tests/contract/masks_rules.json", import.meta.url), "utf8"),
  ) as { cases: { case: string; valid: boolean; masks: unknown[] }[] };
  const valid = rules.cases.filter((c) => c.valid);

  it("has accepted cases to check", () => {
    expect(valid.length).toBeGreaterThan(0);
  });

  for (const { case: name, masks } of valid) {
    it(`accepts what the detector accepts: ${name}`, () => {
      const zones = zonesFromAttributes(masks);
      expect(zones).toHaveLength(masks.length);
      expect(validateZones(zones)).toEqual([]);
    });
  }
});
