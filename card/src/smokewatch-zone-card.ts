// SmokeWatch zone card: a camera's latest scored frame with its zones drawn over it.
// Local zones are edited here and saved with `smokewatch.set_zones`; the Pyronear API's masks
// are shown read-only; recent detection boxes can be masked with one click.

import { LitElement, css, html, nothing, svg } from "lit";
import type { PropertyValues, TemplateResult } from "lit";
import { Box, Point, nearestPoint, pointInPolygon, toNormalised } from "./geometry.js";
import { RULES, Rule, Zone, ZoneEditor, recentBoxes, zonesFromAttributes } from "./state.js";

interface HassEntity {
  entity_id: string;
  state: string;
  attributes: Record<string, unknown>;
}

interface HassEntityEntry {
  entity_id: string;
  device_id?: string | null;
}

export interface Hass {
  states: Record<string, HassEntity>;
  entities?: Record<string, HassEntityEntry>;
  callService(
    domain: string,
    service: string,
    data?: Record<string, unknown>,
    target?: Record<string, unknown>,
  ): Promise<unknown>;
  hassUrl?(path?: string): string;
}

export interface ZoneCardConfig {
  type: string;
  /** The camera's smoke binary_sensor (binary_sensor.<camera>_smoke). */
  entity: string;
  /** The picture: defaults to the camera's "Scored frame" image entity. */
  image_entity?: string;
  /** The camera's "Masks" sensor (local zones, API masks): found on the same device. */
  masks_entity?: string;
  title?: string;
}

const VIEW_WIDTH = 1000; // the SVG's own width; its height follows the picture's aspect
const HANDLE_PX = 11; // radius of a point's handle on screen (a finger's width across)
const HISTORY = 10;

/** The entity of `domain` on the same device as `entity` whose id ends with `suffix`. */
function sibling(hass: Hass, entity: string, domain: string, suffix: string): string | undefined {
  const device = hass.entities?.[entity]?.device_id;
  if (device && hass.entities) {
    for (const entry of Object.values(hass.entities)) {
      if (
        entry.device_id === device &&
        entry.entity_id.startsWith(`${domain}.`) &&
        entry.entity_id.endsWith(suffix)
      ) {
        return entry.entity_id;
      }
    }
  }
  // Without the entity registry (older frontends): HA's own naming, device + entity name.
  const base = entity.replace(/^binary_sensor\./, "").replace(/_smoke$/, "");
  const guess = `${domain}.${base}${suffix}`;
  return hass.states[guess] ? guess : undefined;
}

export class SmokeWatchZoneCard extends LitElement {
  private _hass?: Hass;
  private _config?: ZoneCardConfig;
  private editor = new ZoneEditor();
  private history: Box[] = [];
  private lastBoxesKey = "";
  private aspect = 9 / 16; // height / width, until the picture has loaded
  private displayedWidth = 0;
  private drag: { zone: number; point: number; pointer: number } | null = null;
  private boxMenu: number | null = null;
  private message: { text: string; error: boolean } | null = null;
  private saving = false;
  private resizeObserver?: ResizeObserver;

  static styles = css`
    :host {
      display: block;
    }
    ha-card {
      overflow: hidden;
    }
    .header {
      display: flex;
      align-items: center;
      justify-content: space-between;
      gap: 8px;
      padding: 12px 16px 8px;
      font-size: 1.2em;
    }
    .frame {
      position: relative;
      line-height: 0;
      background: #222;
      user-select: none;
      -webkit-user-select: none;
    }
    .frame img,
    .frame .placeholder {
      width: 100%;
      display: block;
    }
    .frame .placeholder {
      aspect-ratio: 16 / 9;
    }
    .frame svg {
      position: absolute;
      inset: 0;
      width: 100%;
      height: 100%;
      touch-action: none;
    }
    svg.drawing {
      cursor: crosshair;
    }
    .zone {
      fill: rgba(3, 169, 244, 0.25);
      stroke: #03a9f4;
      cursor: pointer;
    }
    .zone.disabled {
      fill: rgba(158, 158, 158, 0.15);
      stroke: #9e9e9e;
      stroke-dasharray: 6 4;
    }
    .zone.iou {
      fill: rgba(255, 152, 0, 0.22);
      stroke: #ff9800;
    }
    .zone.selected {
      stroke: #fff;
    }
    .remote {
      fill: rgba(255, 255, 255, 0.12);
      stroke: #bdbdbd;
      stroke-dasharray: 4 4;
      pointer-events: none;
    }
    .box {
      fill: rgba(244, 67, 54, 0.08);
      stroke: #f44336;
      cursor: pointer;
    }
    .handle {
      fill: #fff;
      stroke: #03a9f4;
      cursor: grab;
    }
    .handle.selected {
      fill: #03a9f4;
    }
    .draft {
      fill: rgba(76, 175, 80, 0.2);
      stroke: #4caf50;
      pointer-events: none;
    }
    .menu {
      position: absolute;
      line-height: normal;
      transform: translate(0, 4px);
      z-index: 1;
    }
    .toolbar,
    .zones,
    .status {
      padding: 8px 16px;
      display: flex;
      flex-wrap: wrap;
      gap: 8px;
      align-items: center;
    }
    .zones {
      flex-direction: column;
      align-items: stretch;
    }
    .row {
      display: flex;
      flex-wrap: wrap;
      gap: 8px;
      align-items: center;
      padding: 4px 0;
      border-bottom: 1px solid var(--divider-color, #ddd);
    }
    .row.selected {
      background: var(--secondary-background-color, #f5f5f5);
    }
    .row input[type="text"] {
      flex: 1 1 140px;
      min-width: 0;
      min-height: 36px;
      font: inherit;
    }
    button,
    select {
      min-height: 40px;
      min-width: 40px;
      font: inherit;
      border-radius: 6px;
      border: 1px solid var(--divider-color, #bbb);
      background: var(--card-background-color, #fff);
      color: var(--primary-text-color, #000);
      padding: 0 12px;
    }
    button.primary {
      background: var(--primary-color, #03a9f4);
      color: var(--text-primary-color, #fff);
      border: none;
    }
    button:disabled {
      opacity: 0.5;
    }
    .error {
      color: var(--error-color, #db4437);
    }
    .hint {
      color: var(--secondary-text-color, #666);
      font-size: 0.9em;
    }
    .readonly {
      color: var(--secondary-text-color, #666);
      font-size: 0.9em;
    }
  `;

  setConfig(config: ZoneCardConfig): void {
    if (!config || typeof config.entity !== "string" || !config.entity.startsWith("binary_sensor.")) {
      throw new Error("Set 'entity' to the camera's smoke binary_sensor (binary_sensor.<camera>_smoke)");
    }
    this._config = config;
    this.requestUpdate();
  }

  set hass(hass: Hass) {
    this._hass = hass;
    this.sync();
    this.requestUpdate();
  }

  get hass(): Hass | undefined {
    return this._hass;
  }

  getCardSize(): number {
    return 8;
  }

  static getStubConfig(hass: Hass): Partial<ZoneCardConfig> {
    const smoke = Object.values(hass.states).find(
      (s) => s.entity_id.startsWith("binary_sensor.") && s.attributes.device_class === "smoke",
    );
    return { entity: smoke?.entity_id ?? "binary_sensor.backyard_smoke" };
  }

  private get imageEntity(): string | undefined {
    if (!this._hass || !this._config) return undefined;
    return (
      this._config.image_entity ??
      sibling(this._hass, this._config.entity, "image", "_scored_frame") ??
      sibling(this._hass, this._config.entity, "image", "_alert_image")
    );
  }

  private get masksEntity(): string | undefined {
    if (!this._hass || !this._config) return undefined;
    return this._config.masks_entity ?? sibling(this._hass, this._config.entity, "sensor", "_masks");
  }

  /** Take the detector's zones and the latest boxes from the new hass state. */
  private sync(): void {
    if (!this._hass || !this._config) return;
    const masks = this.masksEntity ? this._hass.states[this.masksEntity] : undefined;
    if (masks) {
      const before = JSON.stringify(this.editor.zones);
      this.editor.load(zonesFromAttributes(masks.attributes.local));
      // The detector's zones changed (e.g. a "Not smoke" elsewhere): an older note is stale.
      if (!this.saving && JSON.stringify(this.editor.zones) !== before && this.message && !this.message.error) {
        this.message = null;
      }
    }
    const smoke = this._hass.states[this._config.entity];
    const boxes = smoke?.attributes.boxes;
    const key = JSON.stringify(boxes ?? null);
    if (Array.isArray(boxes) && key !== this.lastBoxesKey) {
      this.lastBoxesKey = key;
      this.history = recentBoxes({ boxes }, this.history, HISTORY);
    }
  }

  private get remoteZones(): Zone[] {
    const masks = this.masksEntity && this._hass ? this._hass.states[this.masksEntity] : undefined;
    return masks ? zonesFromAttributes(masks.attributes.remote) : [];
  }

  private get boxes(): Box[] {
    const smoke = this._config && this._hass?.states[this._config.entity];
    return recentBoxes(smoke ? smoke.attributes : undefined, this.history, HISTORY);
  }

  connectedCallback(): void {
    super.connectedCallback();
    this.resizeObserver = new ResizeObserver((entries) => {
      const width = entries[0]?.contentRect.width ?? 0;
      if (Math.abs(width - this.displayedWidth) > 1) {
        this.displayedWidth = width;
        this.requestUpdate();
      }
    });
  }

  disconnectedCallback(): void {
    super.disconnectedCallback();
    this.resizeObserver?.disconnect();
  }

  protected firstUpdated(_changed: PropertyValues): void {
    const frame = this.renderRoot.querySelector(".frame");
    if (frame) this.resizeObserver?.observe(frame);
  }

  // -- gestures ---------------------------------------------------------------------------

  private svgPoint(event: PointerEvent | MouseEvent): Point {
    const svgEl = this.renderRoot.querySelector("svg") as SVGSVGElement;
    return toNormalised(event.clientX, event.clientY, svgEl.getBoundingClientRect());
  }

  /** A handle's radius in normalised y units (distances are measured with the aspect). */
  private get handleRadius(): number {
    const width = this.displayedWidth || 320;
    return HANDLE_PX / (width * this.aspect);
  }

  private onFramePointerDown(event: PointerEvent): void {
    const point = this.svgPoint(event);
    this.boxMenu = null;
    const drawing = this.editor.drawing;
    if (drawing !== null) {
      // A tap on the first point closes the polygon.
      const first = drawing.length >= 3 ? nearestPoint([drawing[0]], point, this.handleRadius, 1 / this.aspect) : -1;
      if (first === 0) this.finishDrawing();
      else this.editor.addPoint(point);
      this.requestUpdate();
      return;
    }
    const selected = this.editor.selected;
    if (selected) {
      const zone = this.editor.zones[selected.zone];
      const index = zone ? nearestPoint(zone.polygon, point, this.handleRadius * 1.5, 1 / this.aspect) : -1;
      if (index >= 0) {
        this.editor.select(selected.zone, index);
        this.drag = { zone: selected.zone, point: index, pointer: event.pointerId };
        (event.currentTarget as Element).setPointerCapture?.(event.pointerId);
        this.requestUpdate();
        return;
      }
    }
    const boxIndex = this.boxes.findIndex(
      ([x1, y1, x2, y2]) => point[0] >= x1 && point[0] <= x2 && point[1] >= y1 && point[1] <= y2,
    );
    // Zones are drawn under the boxes: a box inside a zone stays clickable.
    if (boxIndex >= 0) {
      this.boxMenu = boxIndex;
      this.requestUpdate();
      return;
    }
    const zoneIndex = this.editor.zones.findIndex((zone) => pointInPolygon(point, zone.polygon));
    this.editor.select(zoneIndex >= 0 ? zoneIndex : null);
    this.requestUpdate();
  }

  private onFramePointerMove(event: PointerEvent): void {
    if (!this.drag || event.pointerId !== this.drag.pointer) return;
    this.editor.movePoint(this.drag.zone, this.drag.point, this.svgPoint(event));
    this.requestUpdate();
  }

  private onFramePointerUp(event: PointerEvent): void {
    if (this.drag && event.pointerId === this.drag.pointer) {
      this.drag = null;
      this.requestUpdate();
    }
  }

  private finishDrawing(): void {
    const index = this.editor.finishDrawing("zone");
    if (index < 0) this.note("A zone needs at least 3 points that enclose an area", true);
    else this.note(`${this.editor.zones[index].name} added: name it, then Save`, false);
  }

  private note(text: string, error: boolean): void {
    this.message = { text, error };
    this.requestUpdate();
  }

  private async save(): Promise<void> {
    if (!this._hass || !this._config) return;
    let data;
    try {
      data = this.editor.serviceData();
    } catch (err) {
      this.note((err as Error).message, true);
      return;
    }
    this.saving = true;
    this.requestUpdate();
    try {
      await this._hass.callService("smokewatch", "set_zones", { ...data }, { entity_id: this._config.entity });
      this.editor.saved();
      this.note(`Saved ${data.zones.length} zone(s)`, false);
    } catch (err) {
      const text = (err as { message?: string }).message ?? String(err);
      this.note(`Not saved: ${text}`, true);
    } finally {
      this.saving = false;
      this.requestUpdate();
    }
  }

  private async maskBox(index: number): Promise<void> {
    const box = this.boxes[index];
    this.boxMenu = null;
    if (!box || this.editor.maskBox(box) < 0) return;
    await this.save();
  }

  private async revert(): Promise<void> {
    const masks = this.masksEntity && this._hass ? this._hass.states[this.masksEntity] : undefined;
    this.editor.load(zonesFromAttributes(masks?.attributes.local), true);
    this.message = null;
    this.requestUpdate();
  }

  // -- rendering ----------------------------------------------------------------------------

  private imageUrl(): string | undefined {
    const entity = this.imageEntity && this._hass?.states[this.imageEntity];
    const picture = entity ? entity.attributes.entity_picture : undefined;
    if (typeof picture !== "string") return undefined;
    return this._hass?.hassUrl ? this._hass.hassUrl(picture) : picture;
  }

  private onImageLoad(event: Event): void {
    const img = event.currentTarget as HTMLImageElement;
    if (img.naturalWidth > 0) {
      const aspect = img.naturalHeight / img.naturalWidth;
      if (Math.abs(aspect - this.aspect) > 1e-3) {
        this.aspect = aspect;
        this.requestUpdate();
      }
    }
  }

  private points(polygon: readonly Point[], height: number): string {
    return polygon.map(([x, y]) => `${x * VIEW_WIDTH},${y * height}`).join(" ");
  }

  private renderOverlay(): TemplateResult {
    const height = VIEW_WIDTH * this.aspect;
    const scale = VIEW_WIDTH / (this.displayedWidth || 320); // view units per screen pixel
    const stroke = 2 * scale;
    const selected = this.editor.selected;
    const drawing = this.editor.drawing;
    return html`<svg
      viewBox="0 0 ${VIEW_WIDTH} ${height}"
      preserveAspectRatio="none"
      class=${drawing !== null ? "drawing" : ""}
      data-testid="overlay"
      @pointerdown=${this.onFramePointerDown}
      @pointermove=${this.onFramePointerMove}
      @pointerup=${this.onFramePointerUp}
      @pointercancel=${this.onFramePointerUp}
    >
      ${this.remoteZones.map(
        (zone) =>
          svg`<polygon class="remote" data-testid="remote-mask" points=${this.points(zone.polygon, height)}
            stroke-width=${stroke}><title>${zone.name} (Pyronear API, read-only)</title></polygon>`,
      )}
      ${this.editor.zones.map(
        (zone, index) =>
          svg`<polygon class="zone ${zone.rule} ${zone.enabled ? "" : "disabled"} ${
            selected?.zone === index ? "selected" : ""
          }" data-testid="zone" data-name=${zone.name} points=${this.points(zone.polygon, height)}
            stroke-width=${stroke}><title>${zone.name}</title></polygon>`,
      )}
      ${this.boxes.map(
        ([x1, y1, x2, y2], index) =>
          svg`<rect class="box" data-testid="box" data-index=${index} x=${x1 * VIEW_WIDTH} y=${y1 * height}
            width=${(x2 - x1) * VIEW_WIDTH} height=${(y2 - y1) * height} stroke-width=${stroke}></rect>`,
      )}
      ${selected && this.editor.zones[selected.zone]
        ? this.editor.zones[selected.zone].polygon.map(
            ([x, y], index) =>
              svg`<circle class="handle ${selected.point === index ? "selected" : ""}" data-testid="handle"
                cx=${x * VIEW_WIDTH} cy=${y * height} r=${HANDLE_PX * scale} stroke-width=${stroke}></circle>`,
          )
        : nothing}
      ${drawing !== null && drawing.length
        ? svg`<polygon class="draft" points=${this.points(drawing, height)} stroke-width=${stroke}></polygon>
          ${drawing.map(
            ([x, y]) =>
              svg`<circle class="handle" cx=${x * VIEW_WIDTH} cy=${y * height} r=${HANDLE_PX * scale * 0.7}
                stroke-width=${stroke}></circle>`,
          )}`
        : nothing}
    </svg>`;
  }

  private renderBoxMenu(): TemplateResult | typeof nothing {
    if (this.boxMenu === null) return nothing;
    const box = this.boxes[this.boxMenu];
    if (!box) return nothing;
    const left = Math.min(box[0], 0.7) * 100;
    const top = Math.min(box[3], 0.85) * 100;
    return html`<div class="menu" style="left:${left}%;top:${top}%">
      <button class="primary" data-testid="mask-this" @click=${() => this.maskBox(this.boxMenu as number)}>
        Mask this
      </button>
      <button @click=${() => ((this.boxMenu = null), this.requestUpdate())}>✕</button>
    </div>`;
  }

  private renderZoneRow(zone: Zone, index: number): TemplateResult {
    const selected = this.editor.selected;
    const isSelected = selected?.zone === index;
    return html`<div class="row ${isSelected ? "selected" : ""}" data-testid="zone-row">
      <input
        type="text"
        aria-label="Zone name"
        data-testid="zone-name"
        .value=${zone.name}
        @focus=${() => (this.editor.select(index), this.requestUpdate())}
        @input=${(e: Event) => (this.editor.rename(index, (e.target as HTMLInputElement).value), this.requestUpdate())}
      />
      <select
        aria-label="Rule"
        data-testid="zone-rule"
        @change=${(e: Event) => (this.editor.setRule(index, (e.target as HTMLSelectElement).value as Rule), this.requestUpdate())}
      >
        ${RULES.map(
          (rule) =>
            html`<option value=${rule} ?selected=${zone.rule === rule}>
              ${rule === "inside" ? "inside (mostly in zone)" : "iou (look-alike box)"}
            </option>`,
        )}
      </select>
      <label
        ><input
          type="checkbox"
          data-testid="zone-enabled"
          .checked=${zone.enabled}
          @change=${(e: Event) => (this.editor.setEnabled(index, (e.target as HTMLInputElement).checked), this.requestUpdate())}
        />
        on</label
      >
      ${isSelected && selected?.point !== null && selected?.point !== undefined
        ? html`<button
              data-testid="delete-point"
              ?disabled=${zone.polygon.length <= 3}
              @click=${() => (this.editor.deletePoint(index, selected.point as number), this.requestUpdate())}
            >
              Delete point
            </button>
            <button @click=${() => (this.editor.insertPoint(index, selected.point as number), this.requestUpdate())}>
              Add point
            </button>`
        : html`<button @click=${() => (this.editor.select(index), this.requestUpdate())}>Edit</button>`}
      <button
        data-testid="zone-delete"
        aria-label="Delete zone"
        @click=${() => (this.editor.deleteZone(index), this.requestUpdate())}
      >
        Delete
      </button>
    </div>`;
  }

  render(): TemplateResult {
    if (!this._config) return html``;
    const smoke = this._hass?.states[this._config.entity];
    const url = this.imageUrl();
    const drawing = this.editor.drawing;
    const remote = this.remoteZones;
    const errors = this.editor.errors;
    return html`<ha-card>
      <div class="header">
        <span>${this._config.title ?? "Smoke zones"}</span>
        <span class="hint">${smoke ? (smoke.state === "on" ? "SMOKE" : "no smoke") : "entity not found"}</span>
      </div>
      <div class="frame">
        ${url
          ? html`<img src=${url} alt="Latest scored frame" data-testid="frame" @load=${this.onImageLoad} />`
          : html`<div class="placeholder" style="aspect-ratio:${1 / this.aspect}"></div>`}
        ${this.renderOverlay()} ${this.renderBoxMenu()}
      </div>
      <div class="toolbar">
        ${drawing === null
          ? html`<button data-testid="add-zone" @click=${() => (this.editor.startDrawing(), this.note("Tap the picture to add points; tap the first point or Finish to close", false))}>
              Add zone
            </button>`
          : html`<button class="primary" data-testid="finish" ?disabled=${!this.editor.canFinish} @click=${() => this.finishDrawing()}>
                Finish
              </button>
              <button @click=${() => (this.editor.undoPoint(), this.requestUpdate())}>Undo point</button>
              <button @click=${() => (this.editor.cancelDrawing(), (this.message = null), this.requestUpdate())}>Cancel</button>`}
        <button
          class="primary"
          data-testid="save"
          ?disabled=${!this.editor.dirty || this.saving || errors.length > 0}
          @click=${() => this.save()}
        >
          Save
        </button>
        ${this.editor.dirty ? html`<button @click=${() => this.revert()}>Revert</button>` : nothing}
      </div>
      ${this.message || errors.length
        ? html`<div class="status ${this.message?.error || errors.length ? "error" : ""}" data-testid="status">
            ${errors.length ? errors.join("; ") : this.message?.text}
          </div>`
        : nothing}
      <div class="zones">
        ${this.editor.zones.map((zone, index) => this.renderZoneRow(zone, index))}
        ${remote.length
          ? html`<div class="readonly">
              Pyronear API masks (read-only): ${remote.map((zone) => zone.name).join(", ")}
            </div>`
          : nothing}
        ${this.editor.zones.length === 0 && remote.length === 0
          ? html`<div class="hint">No zones. Add one, or tap a detection box to mask it.</div>`
          : nothing}
      </div>
    </ha-card>`;
  }

  protected updated(_changed: PropertyValues): void {
    const frame = this.renderRoot.querySelector(".frame");
    if (frame && this.displayedWidth === 0) {
      this.displayedWidth = frame.getBoundingClientRect().width;
      if (this.displayedWidth > 0) this.requestUpdate();
    }
  }
}

const CARD_TAG = "smokewatch-zone-card";

/** Define the card on the registry in place (a subclass: a constructor is defined only once). */
function defineCard(first: boolean): void {
  if (customElements.get(CARD_TAG)) return;
  customElements.define(CARD_TAG, first ? SmokeWatchZoneCard : class extends SmokeWatchZoneCard {});
}

defineCard(true);
// HA's frontend installs a scoped custom-element registry polyfill when its app script runs,
// which replaces window.customElements: a card module that ran first is then unknown to the
// registry HA uses, and the dashboard shows "Configuration error" (seen on HA 2026.5 in the
// end-to-end test). Define the card again on the new registry when that happens.
const registryAtLoad = window.customElements;
let registryChecks = 0;
const registryWatch = window.setInterval(() => {
  registryChecks += 1;
  if (window.customElements !== registryAtLoad) {
    defineCard(false);
    window.clearInterval(registryWatch);
  } else if (registryChecks >= 600) {
    window.clearInterval(registryWatch); // a minute: HA's frontend has long booted
  }
}, 100);

declare global {
  interface Window {
    customCards?: { type: string; name: string; description: string; preview?: boolean }[];
  }
}

window.customCards = window.customCards ?? [];
if (!window.customCards.some((card) => card.type === "smokewatch-zone-card")) {
  window.customCards.push({
    type: "smokewatch-zone-card",
    name: "SmokeWatch zones",
    description: "Draw a camera's exclusion zones on its latest scored frame; mask a detection box.",
  });
}
