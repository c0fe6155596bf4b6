// The zone editor's state, free of any DOM: the card renders it and forwards the user's
// gestures to it, so every rule (what can be saved, how names stay unique) is unit-tested here.

import { Box, Point, boxHasArea, boxToPolygon, polygonArea, round4, sameBox } from "./geometry.js";

export type Rule = "inside" | "iou";
export const RULES: readonly Rule[] = ["inside", "iou"];

export interface Zone {
  name: string;
  polygon: Point[];
  rule: Rule;
  enabled: boolean;
}

/** The data of a `smokewatch.set_zones` call (the target is added by the card). */
export interface SetZonesData {
  zones: { name: string; polygon: Point[]; rule: Rule; enabled: boolean }[];
}

/** Read zones from the detector's masks attributes (`local` or `remote`), skipping bad ones. */
export function zonesFromAttributes(items: unknown): Zone[] {
  if (!Array.isArray(items)) return [];
  const zones: Zone[] = [];
  for (const item of items) {
    if (typeof item !== "object" || item === null) continue;
    const { name, polygon, rule, enabled } = item as Record<string, unknown>;
    if (typeof name !== "string" || !Array.isArray(polygon)) continue;
    const points = polygon.filter(
      (p): p is Point =>
        Array.isArray(p) && p.length === 2 && p.every((v) => typeof v === "number"),
    );
    if (points.length < 3) continue;
    zones.push({
      name,
      polygon: points.map(([x, y]) => [x, y] as Point),
      rule: rule === "iou" ? "iou" : "inside",
      enabled: enabled !== false,
    });
  }
  return zones;
}

/** `base`, or `base 2`, `base 3`... : the first that no name in `taken` has. */
export function uniqueName(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  if (!used.has(base)) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base} ${n}`;
    if (!used.has(candidate)) return candidate;
  }
}

/** "2026-07-01 12:15" in local time: how zones made from a box are named. */
export function dateStamp(date: Date): string {
  const pad = (v: number) => String(v).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** What is wrong with a set of zones before it is sent, or [] when it can be saved. */
export function validateZones(zones: readonly Zone[]): string[] {
  const errors: string[] = [];
  const seen = new Set<string>();
  zones.forEach((zone, index) => {
    const label = zone.name.trim() || `zone ${index + 1}`;
    if (!zone.name.trim()) errors.push(`${label}: give it a name`);
    else if (seen.has(zone.name.trim())) errors.push(`${label}: another zone has this name`);
    seen.add(zone.name.trim());
    if (zone.polygon.length < 3) errors.push(`${label}: needs at least 3 points`);
    else if (polygonArea(zone.polygon) <= 0) errors.push(`${label}: its points enclose no area`);
  });
  return errors;
}

/** The editable local zones, the drawing in progress and the selection. */
export class ZoneEditor {
  zones: Zone[] = [];
  /** Points of the polygon being drawn, or null when not drawing. */
  drawing: Point[] | null = null;
  selected: { zone: number; point: number | null } | null = null;
  /** True when the zones differ from the detector's last saved state. */
  dirty = false;

  /** Take the detector's zones, unless the user has unsaved edits (they are kept). */
  load(zones: Zone[], force = false): void {
    if (this.dirty && !force) return;
    this.zones = zones.map((zone) => ({ ...zone, polygon: zone.polygon.map(([x, y]) => [x, y]) }));
    this.dirty = false;
    if (this.selected && this.selected.zone >= this.zones.length) this.selected = null;
  }

  startDrawing(): void {
    this.drawing = [];
    this.selected = null;
  }

  cancelDrawing(): void {
    this.drawing = null;
  }

  addPoint(point: Point): void {
    if (this.drawing === null) return;
    this.drawing.push([round4(point[0]), round4(point[1])]);
  }

  /** Remove the last point drawn (an undo while drawing). */
  undoPoint(): void {
    this.drawing?.pop();
  }

  /** True when the drawing can become a zone (3 points or more enclosing an area). */
  get canFinish(): boolean {
    return this.drawing !== null && polygonArea(this.drawing) > 0;
  }

  /** Close the drawing into a new zone; returns its index, or -1 when it cannot be closed. */
  finishDrawing(name = "zone"): number {
    if (this.drawing === null || !this.canFinish) return -1;
    const zone: Zone = {
      name: uniqueName(name, this.zones.map((z) => z.name)),
      polygon: this.drawing,
      rule: "inside",
      enabled: true,
    };
    this.zones.push(zone);
    this.drawing = null;
    this.dirty = true;
    this.selected = { zone: this.zones.length - 1, point: null };
    return this.zones.length - 1;
  }

  select(zone: number | null, point: number | null = null): void {
    this.selected = zone === null ? null : { zone, point };
  }

  movePoint(zone: number, point: number, to: Point): void {
    const target = this.zones[zone]?.polygon;
    if (!target || point < 0 || point >= target.length) return;
    target[point] = [round4(to[0]), round4(to[1])];
    this.dirty = true;
  }

  /** Delete a point; refused (false) when the zone would keep fewer than 3. */
  deletePoint(zone: number, point: number): boolean {
    const target = this.zones[zone]?.polygon;
    if (!target || target.length <= 3 || point < 0 || point >= target.length) return false;
    target.splice(point, 1);
    this.dirty = true;
    this.selected = { zone, point: null };
    return true;
  }

  /** Insert a point after `after` (the middle of that edge), to reshape a zone. */
  insertPoint(zone: number, after: number): void {
    const target = this.zones[zone]?.polygon;
    if (!target || after < 0 || after >= target.length) return;
    const [x1, y1] = target[after];
    const [x2, y2] = target[(after + 1) % target.length];
    target.splice(after + 1, 0, [round4((x1 + x2) / 2), round4((y1 + y2) / 2)]);
    this.dirty = true;
    this.selected = { zone, point: after + 1 };
  }

  rename(zone: number, name: string): void {
    if (!this.zones[zone]) return;
    this.zones[zone].name = name;
    this.dirty = true;
  }

  setRule(zone: number, rule: Rule): void {
    if (!this.zones[zone] || !RULES.includes(rule)) return;
    this.zones[zone].rule = rule;
    this.dirty = true;
  }

  setEnabled(zone: number, enabled: boolean): void {
    if (!this.zones[zone]) return;
    this.zones[zone].enabled = enabled;
    this.dirty = true;
  }

  deleteZone(zone: number): void {
    if (!this.zones[zone]) return;
    this.zones.splice(zone, 1);
    this.selected = null;
    this.dirty = true;
  }

  /**
   * "Mask this": a detection box becomes a zone with Pyronear's IoU rule (a look-alike box
   * there is dropped, a larger plume covering it still counts), named with the date.
   * Returns the new zone's index, or -1 for a box without an area.
   */
  maskBox(box: Box, now: Date = new Date()): number {
    if (!boxHasArea(box)) return -1;
    const name = uniqueName(`masked ${dateStamp(now)}`, this.zones.map((z) => z.name));
    this.zones.push({ name, polygon: boxToPolygon(box), rule: "iou", enabled: true });
    this.dirty = true;
    this.selected = { zone: this.zones.length - 1, point: null };
    return this.zones.length - 1;
  }

  /** What cannot be saved yet ([] when the zones can be sent). */
  get errors(): string[] {
    return validateZones(this.zones);
  }

  /** The `smokewatch.set_zones` data; throws with the reasons when the zones are invalid. */
  serviceData(): SetZonesData {
    const errors = this.errors;
    if (errors.length) throw new Error(errors.join("; "));
    return {
      zones: this.zones.map((zone) => ({
        name: zone.name.trim(),
        polygon: zone.polygon.map(([x, y]) => [round4(x), round4(y)] as Point),
        rule: zone.rule,
        enabled: zone.enabled,
      })),
    };
  }

  /** After a successful save: the detector now holds these zones. */
  saved(): void {
    this.dirty = false;
  }
}

/**
 * Recent detection boxes to offer "mask this" on: the current alert's boxes, the boxes the vote
 * has not confirmed yet, and those seen earlier in this session, newest first, no duplicates.
 */
export function recentBoxes(
  attributes: Record<string, unknown> | undefined,
  history: readonly Box[],
  limit = 10,
): Box[] {
  const found: Box[] = [];
  const push = (box: unknown) => {
    if (!Array.isArray(box) || box.length < 4 || !box.every((v) => typeof v === "number")) return;
    if (!boxHasArea(box)) return;
    if (found.some((b) => sameBox(b, box))) return;
    found.push(box.slice(0, 5));
  };
  if (attributes) {
    for (const box of asArray(attributes.boxes)) push(box);
    for (const drop of asArray(attributes.dropped)) {
      // A box a mask already removed needs no new mask.
      if (drop && typeof drop === "object" && (drop as { reason?: unknown }).reason !== "mask") {
        push((drop as { box?: unknown }).box);
      }
    }
  }
  for (const box of history) push(box);
  return found.slice(0, limit);
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

