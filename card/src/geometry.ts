// Geometry of zones and boxes in the detector's normalised frame coordinates:
// x and y from 0 to 1, origin at the top left of the frame.

export type Point = [number, number];
/** A detection box: x1, y1, x2, y2 (and the confidence, ignored here). */
export type Box = readonly number[];

/** Keep a value inside 0..1 (a drag that leaves the picture stops at its edge). */
export function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}

/** Round to 4 decimals: 0.1 px on a 1000 px frame, and short service payloads. */
export function round4(value: number): number {
  return Math.round(value * 10000) / 10000;
}

/** Area of a simple polygon (shoelace formula); 0 for fewer than three points. */
export function polygonArea(points: readonly Point[]): number {
  if (points.length < 3) return 0;
  let twice = 0;
  for (let i = 0; i < points.length; i++) {
    const [x1, y1] = points[i];
    const [x2, y2] = points[(i + 1) % points.length];
    twice += x1 * y2 - x2 * y1;
  }
  return Math.abs(twice) / 2;
}

/** True when the point lies inside the polygon (ray casting; edges count as either). */
export function pointInPolygon([x, y]: Point, polygon: readonly Point[]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * The normalised point under a pointer, from its client position and the on-screen rectangle
 * of the picture (which may be scaled to any width, a phone's included).
 */
export function toNormalised(
  clientX: number,
  clientY: number,
  rect: { left: number; top: number; width: number; height: number },
): Point {
  if (rect.width <= 0 || rect.height <= 0) return [0, 0];
  return [
    round4(clamp01((clientX - rect.left) / rect.width)),
    round4(clamp01((clientY - rect.top) / rect.height)),
  ];
}

/** The four corners of a box, clockwise from the top left, clipped to the frame. */
export function boxToPolygon(box: Box): Point[] {
  const [x1, y1, x2, y2] = box.slice(0, 4).map((v) => round4(clamp01(v)));
  return [
    [x1, y1],
    [x2, y1],
    [x2, y2],
    [x1, y2],
  ];
}

/** True when a box has an area (x1 < x2 and y1 < y2). */
export function boxHasArea(box: Box): boolean {
  return box.length >= 4 && box[0] < box[2] && box[1] < box[3];
}

/**
 * The index of the point nearest to `target` within `radius` (normalised units, measured with
 * the picture's aspect so a circle on screen is a circle here), or -1.
 */
export function nearestPoint(
  points: readonly Point[],
  target: Point,
  radius: number,
  aspect = 1,
): number {
  let best = -1;
  let bestDistance = radius;
  points.forEach(([x, y], index) => {
    const distance = Math.hypot((x - target[0]) * aspect, y - target[1]);
    if (distance <= bestDistance) {
      best = index;
      bestDistance = distance;
    }
  });
  return best;
}

/** True when two boxes are the same within `tolerance` on every coordinate. */
export function sameBox(a: Box, b: Box, tolerance = 0.005): boolean {
  return [0, 1, 2, 3].every((i) => Math.abs(a[i] - b[i]) <= tolerance);
}
