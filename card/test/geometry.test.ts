import { describe, expect, it } from "vitest";
import {
  boxHasArea,
  boxToPolygon,
  clamp01,
  nearestPoint,
  pointInPolygon,
  polygonArea,
  sameBox,
  toNormalised,
  type Point,
} from "../src/geometry.js";

const square: Point[] = [
  [0.2, 0.2],
  [0.6, 0.2],
  [0.6, 0.6],
  [0.2, 0.6],
];

describe("polygonArea", () => {
  it("is the shoelace area whatever the winding", () => {
    expect(polygonArea(square)).toBeCloseTo(0.16, 10);
    expect(polygonArea([...square].reverse())).toBeCloseTo(0.16, 10);
  });
  it("is 0 for points on a line or fewer than three", () => {
    expect(polygonArea([[0, 0], [0.5, 0.5], [1, 1]])).toBe(0);
    expect(polygonArea([[0, 0], [1, 1]])).toBe(0);
  });
  it("handles a concave polygon", () => {
    // An L: the unit square minus its top-right quarter.
    const l: Point[] = [[0, 0], [0.5, 0], [0.5, 0.5], [1, 0.5], [1, 1], [0, 1]];
    expect(polygonArea(l)).toBeCloseTo(0.75, 10);
  });
});

describe("pointInPolygon", () => {
  it("tells inside from outside, concave notch included", () => {
    const l: Point[] = [[0, 0], [0.5, 0], [0.5, 0.5], [1, 0.5], [1, 1], [0, 1]];
    expect(pointInPolygon([0.25, 0.25], l)).toBe(true);
    expect(pointInPolygon([0.75, 0.25], l)).toBe(false); // the notch
    expect(pointInPolygon([0.75, 0.75], l)).toBe(true);
    expect(pointInPolygon([1.5, 0.5], square)).toBe(false);
  });
});

describe("toNormalised", () => {
  it("maps a click on a scaled picture to 0..1 and clamps outside it", () => {
    const rect = { left: 10, top: 20, width: 360, height: 202.5 }; // a phone-width picture
    expect(toNormalised(10 + 180, 20 + 101.25, rect)).toEqual([0.5, 0.5]);
    expect(toNormalised(0, 0, rect)).toEqual([0, 0]);
    expect(toNormalised(1000, 1000, rect)).toEqual([1, 1]);
    expect(toNormalised(10 + 36, 20 + 20.25, rect)).toEqual([0.1, 0.1]);
  });
  it("rounds to 4 decimals", () => {
    const [x] = toNormalised(1, 0, { left: 0, top: 0, width: 3, height: 3 });
    expect(x).toBe(0.3333);
  });
});

describe("boxes", () => {
  it("become a clockwise rectangle clipped to the frame", () => {
    expect(boxToPolygon([-0.1, 0.2, 0.5, 1.2, 0.9])).toEqual([
      [0, 0.2],
      [0.5, 0.2],
      [0.5, 1],
      [0, 1],
    ]);
  });
  it("have an area only when x1 < x2 and y1 < y2", () => {
    expect(boxHasArea([0.1, 0.1, 0.2, 0.2])).toBe(true);
    expect(boxHasArea([0.1, 0.1, 0.1, 0.2])).toBe(false);
    expect(boxHasArea([0.1, 0.1])).toBe(false);
  });
  it("compare within a tolerance", () => {
    expect(sameBox([0.1, 0.1, 0.2, 0.2], [0.104, 0.1, 0.2, 0.2])).toBe(true);
    expect(sameBox([0.1, 0.1, 0.2, 0.2], [0.11, 0.1, 0.2, 0.2])).toBe(false);
  });
});

describe("nearestPoint", () => {
  it("finds the closest point within the radius, with the picture's aspect", () => {
    expect(nearestPoint(square, [0.61, 0.21], 0.02)).toBe(1);
    expect(nearestPoint(square, [0.4, 0.4], 0.02)).toBe(-1);
    // On a 16:9 picture a 0.02 step in x is 1.78 times longer on screen than in y.
    expect(nearestPoint(square, [0.615, 0.2], 0.02, 16 / 9)).toBe(-1);
    expect(nearestPoint(square, [0.6, 0.215], 0.02, 16 / 9)).toBe(1);
  });
  it("clamp01 keeps a drag on the picture", () => {
    expect(clamp01(-0.2)).toBe(0);
    expect(clamp01(1.3)).toBe(1);
    expect(clamp01(0.4)).toBe(0.4);
  });
});
