// The card in real headless Chromium (Debian's), with a stand-in `hass` object that records
// service calls: drawing, editing and "mask this" on a phone-sized screen.
// Run: npm run test:browser (CHROMIUM=/path/to/chromium to use another browser).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const BUNDLE = fileURLToPath(
  new URL("../../custom_components/smokewatch/frontend/smokewatch-zone-card.js", import.meta.url),
);
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

// A 1280x720 "camera frame": sky, ridge, and a white plume where the detector saw a box.
const FRAME = `data:image/svg+xml,${encodeURIComponent(
  `<svg xmlns="http://www.w3.org/2000/svg" width="1280" height="720">
     <rect width="1280" height="720" fill="#7fa7d0"/>
     <path d="M0 500 L300 380 L700 460 L1280 360 L1280 720 L0 720Z" fill="#355e3b"/>
     <ellipse cx="820" cy="330" rx="70" ry="110" fill="#eee"/></svg>`,
)}`;

const PAGE = `<!doctype html><html><head><meta name="viewport" content="width=device-width">
<style>body{margin:0;font-family:sans-serif}</style></head><body>
<div id="host"></div>
<script type="module">
  import "/card.js";
  const states = {
    "binary_sensor.ridge_smoke": { entity_id: "binary_sensor.ridge_smoke", state: "on",
      attributes: { device_class: "smoke", boxes: [[0.59, 0.3, 0.69, 0.6, 0.71]],
        dropped: [{ reason: "vote", box: [0.1, 0.1, 0.2, 0.2, 0.2] }] } },
    "image.ridge_scored_frame": { entity_id: "image.ridge_scored_frame", state: "x",
      attributes: { entity_picture: ${JSON.stringify(FRAME)} } },
    "sensor.ridge_masks": { entity_id: "sensor.ridge_masks", state: "1",
      attributes: {
        local: [{ name: "chimney", polygon: [[0.05, 0.6], [0.15, 0.6], [0.15, 0.8]], rule: "inside", enabled: true }],
        remote: [{ name: "remote-3", polygon: [[0.8, 0.05], [0.95, 0.05], [0.95, 0.2], [0.8, 0.2]], rule: "iou", enabled: true }],
        false_alarms: [] } },
  };
  const entities = Object.fromEntries(Object.keys(states).map((id) => [id, { entity_id: id, device_id: "dev1" }]));
  window.calls = [];
  const hass = { states, entities, callService: async (domain, service, data, target) => {
    window.calls.push({ domain, service, data, target });
    // The detector answers with its new retained masks: the card reloads them.
    states["sensor.ridge_masks"] = { ...states["sensor.ridge_masks"],
      attributes: { ...states["sensor.ridge_masks"].attributes, local: data.zones } };
    card.hass = { ...hass, states: { ...states } };
  } };
  await customElements.whenDefined("smokewatch-zone-card");
  const card = document.createElement("smokewatch-zone-card");
  card.setConfig({ type: "custom:smokewatch-zone-card", entity: "binary_sensor.ridge_smoke" });
  card.hass = hass;
  document.getElementById("host").appendChild(card);
  window.cardReady = true;
</script></body></html>`;

let server;
let browser;
let base;

before(async () => {
  server = createServer((req, res) => {
    if (req.url === "/card.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(readFileSync(BUNDLE));
    } else {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(PAGE);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}/`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  await browser?.close();
  server?.close();
});

async function openCard(viewport) {
  const page = await browser.newPage({ viewport, deviceScaleFactor: 1, hasTouch: true });
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(base);
  await page.waitForFunction(() => window.cardReady === true);
  await page.locator("smokewatch-zone-card img[data-testid=frame]").waitFor();
  await page.waitForFunction(() => {
    const img = document.querySelector("smokewatch-zone-card").shadowRoot.querySelector("img");
    return img.complete && img.naturalWidth === 1280;
  });
  return { page, errors };
}

/** Click at a normalised point of the picture. */
async function clickAt(page, x, y) {
  const box = await page.locator("smokewatch-zone-card [data-testid=overlay]").boundingBox();
  await page.mouse.click(box.x + x * box.width, box.y + y * box.height);
}

test("draws a polygon, names it and saves it through smokewatch.set_zones (phone screen)", async () => {
  const { page, errors } = await openCard({ width: 390, height: 844 });
  const card = page.locator("smokewatch-zone-card");
  // The overlay covers the picture exactly, at the picture's aspect, within the phone's width.
  const overlay = await card.locator("[data-testid=overlay]").boundingBox();
  assert.ok(overlay.width <= 390 && Math.abs(overlay.height - (overlay.width * 720) / 1280) < 1.5);
  assert.equal(await card.locator("[data-testid=zone]").count(), 1);
  assert.equal(await card.locator("[data-testid=remote-mask]").count(), 1);
  assert.equal(await card.locator("[data-testid=box]").count(), 2);

  await card.locator("[data-testid=add-zone]").click();
  for (const [x, y] of [[0.55, 0.25], [0.75, 0.25], [0.75, 0.65], [0.55, 0.65]]) {
    await clickAt(page, x, y);
  }
  await clickAt(page, 0.55, 0.25); // tapping the first point closes the polygon
  assert.equal(await card.locator("[data-testid=zone]").count(), 2);
  const name = card.locator("[data-testid=zone-name]").nth(1);
  await name.fill("plume ridge");
  await card.locator("[data-testid=zone-rule]").nth(1).selectOption("iou");
  // Drag a point of the new (selected) zone, then save.
  const handle = await card.locator("[data-testid=handle]").nth(2).boundingBox();
  await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
  await page.mouse.down();
  const frame = await card.locator("[data-testid=overlay]").boundingBox();
  await page.mouse.move(frame.x + 0.8 * frame.width, frame.y + 0.7 * frame.height, { steps: 4 });
  await page.mouse.up();
  await card.locator("[data-testid=save]").click();
  await page.waitForFunction(() => window.calls.length === 1);
  const [call] = await page.evaluate(() => window.calls);
  assert.equal(call.domain, "smokewatch");
  assert.equal(call.service, "set_zones");
  assert.deepEqual(call.target, { entity_id: "binary_sensor.ridge_smoke" });
  assert.equal(call.data.zones.length, 2);
  const zone = call.data.zones[1];
  assert.equal(zone.name, "plume ridge");
  assert.equal(zone.rule, "iou");
  assert.equal(zone.enabled, true);
  const near = (a, b) => Math.abs(a - b) < 0.01;
  const expected = [[0.55, 0.25], [0.75, 0.25], [0.8, 0.7], [0.55, 0.65]];
  zone.polygon.forEach(([x, y], i) => assert.ok(near(x, expected[i][0]) && near(y, expected[i][1]), `${x},${y}`));
  assert.deepEqual(call.data.zones[0].name, "chimney");
  await card.locator("[data-testid=status]").getByText("Saved 2 zone(s)").waitFor();
  if (process.env.SCREENSHOTS) await card.screenshot({ path: `${process.env.SCREENSHOTS}/card-phone.png` });
  assert.deepEqual(errors, []);
  await page.close();
});

test("a click on a detection box offers 'mask this', which saves an IoU zone of that box", async () => {
  const { page, errors } = await openCard({ width: 800, height: 900 });
  const card = page.locator("smokewatch-zone-card");
  await clickAt(page, 0.64, 0.45); // inside the alert box [0.59, 0.3, 0.69, 0.6]
  await card.locator("[data-testid=mask-this]").click();
  await page.waitForFunction(() => window.calls.length === 1);
  const [call] = await page.evaluate(() => window.calls);
  const zone = call.data.zones.at(-1);
  assert.match(zone.name, /^masked \d{4}-\d\d-\d\d \d\d:\d\d$/);
  assert.equal(zone.rule, "iou");
  assert.deepEqual(zone.polygon, [[0.59, 0.3], [0.69, 0.3], [0.69, 0.6], [0.59, 0.6]]);
  assert.equal(await card.locator("[data-testid=zone]").count(), 2);
  assert.deepEqual(errors, []);
  await page.close();
});

test("deleting points stops at three, and an invalid zone cannot be saved", async () => {
  const { page } = await openCard({ width: 600, height: 800 });
  const card = page.locator("smokewatch-zone-card");
  await clickAt(page, 0.12, 0.72); // inside the chimney zone: selects it
  assert.equal(await card.locator("[data-testid=handle]").count(), 3);
  const handle = await card.locator("[data-testid=handle]").nth(0).boundingBox();
  await page.mouse.click(handle.x + handle.width / 2, handle.y + handle.height / 2);
  assert.equal(await card.locator("[data-testid=delete-point]").isDisabled(), true);
  await card.locator("[data-testid=zone-name]").first().fill("");
  await card.locator("[data-testid=status]").getByText("give it a name").waitFor();
  assert.equal(await card.locator("[data-testid=save]").isDisabled(), true);
  await page.close();
});

test("the card is defined again when HA's frontend replaces the element registry", async () => {
  const page = await browser.newPage();
  await page.goto(`${base}blank`);
  await page.setContent("<!doctype html><body></body>");
  const defined = await page.evaluate(async (url) => {
    await import(url);
    // What HA's scoped-registry polyfill does when its app script runs after the card's.
    const entries = new Map();
    const registry = {
      get: (name) => entries.get(name),
      define: (name, ctor) => entries.set(name, ctor),
      whenDefined: async () => undefined,
    };
    Object.defineProperty(window, "customElements", { value: registry, configurable: true });
    await new Promise((resolve) => setTimeout(resolve, 500));
    return typeof registry.get("smokewatch-zone-card");
  }, `${base}card.js`);
  assert.equal(defined, "function");
  await page.close();
});
