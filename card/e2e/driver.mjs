// Drives the zone card in a real Home Assistant page, in Debian's headless Chromium, for the
// end-to-end test (tests/ha_e2e/test_zone_card.py). One JSON command per stdin line, one JSON
// answer per stdout line: the Python test interleaves browser steps with MQTT and REST steps.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

let browser;
let page;
const pageErrors = [];
const cardResponses = [];
const consoleErrors = [];
const card = () => page.locator("smokewatch-zone-card");

async function overlayPoint(x, y) {
  const box = await card().locator("[data-testid=overlay]").boundingBox();
  return [box.x + x * box.width, box.y + y * box.height];
}

async function clickAt(x, y) {
  const [px, py] = await overlayPoint(x, y);
  await page.mouse.click(px, py);
}

async function waitSaved(timeout) {
  await card().locator("[data-testid=status]").getByText(/^\s*Saved \d+ zone/).waitFor({ timeout });
}

const commands = {
  async open({ base, token, path, viewport, timeout = 60000 }) {
    browser ??= await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: ARGS,
    });
    const context = await browser.newContext({ viewport: { width: viewport[0], height: viewport[1] } });
    // The frontend's stored login: a long-lived access token, never expiring in this test.
    const tokens = {
      access_token: token,
      token_type: "Bearer",
      expires_in: 315360000,
      expires: Date.now() + 315360000 * 1000,
      refresh_token: "",
      hassUrl: base,
      clientId: `${base}/`,
    };
    await context.addInitScript((value) => {
      window.localStorage.setItem("hassTokens", value);
      // What a rejected promise carried, when it is not an Error (e.g. a websocket error).
      window.addEventListener("unhandledrejection", (event) => {
        let text;
        try {
          text = JSON.stringify(event.reason);
        } catch {
          text = String(event.reason);
        }
        (window.__rejections ??= []).push(text);
      });
    }, JSON.stringify(tokens));
    page = await context.newPage();
    page.on("response", (response) => {
      if (response.url().includes("smokewatch")) cardResponses.push(`${response.status()} ${response.url()}`);
    });
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text().slice(0, 500));
    });
    page.on("pageerror", (err) => pageErrors.push(`${err.message} ${err.stack ?? ""}`.slice(0, 2000)));
    await page.goto(`${base}${path}`);
    await card().locator("img[data-testid=frame]").waitFor({ timeout });
    await page.waitForFunction(
      () => {
        const find = (root) => {
          const hit = root.querySelector("smokewatch-zone-card");
          if (hit) return hit;
          for (const el of root.querySelectorAll("*")) {
            if (el.shadowRoot) {
              const found = find(el.shadowRoot);
              if (found) return found;
            }
          }
          return null;
        };
        const img = find(document)?.shadowRoot?.querySelector("img");
        return Boolean(img && img.complete && img.naturalWidth > 0);
      },
      null,
      { timeout },
    );
    return {};
  },

  async draw({ points, name, rule = "inside", timeout = 20000 }) {
    await card().locator("[data-testid=add-zone]").click();
    for (const [x, y] of points) await clickAt(x, y);
    await card().locator("[data-testid=finish]").click();
    const rows = card().locator("[data-testid=zone-name]");
    await rows.last().fill(name);
    await card().locator("[data-testid=zone-rule]").last().selectOption(rule);
    await card().locator("[data-testid=save]").click();
    await waitSaved(timeout);
    return {};
  },

  async mask_box({ at, timeout = 20000 }) {
    await clickAt(at[0], at[1]);
    await card().locator("[data-testid=mask-this]").click();
    await waitSaved(timeout);
    return {};
  },

  async state() {
    const zones = await card().locator("[data-testid=zone]").evaluateAll((els) =>
      els.map((el) => el.getAttribute("data-name")),
    );
    const boxes = await card().locator("[data-testid=box]").count();
    const rejections = await page.evaluate(() => window.__rejections ?? []);
    return { zones, boxes, errors: pageErrors, rejections };
  },

  async wait_zone({ prefix, timeout = 20000 }) {
    await card().locator(`[data-testid=zone][data-name^="${prefix}"]`).waitFor({ timeout });
    return {};
  },

  async screenshot({ path, full = false }) {
    if (full) await page.screenshot({ path });
    else await card().screenshot({ path });
    return {};
  },

  async close() {
    await browser?.close();
    browser = undefined;
    return {};
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const message = JSON.parse(line);
    const handler = commands[message.cmd];
    if (!handler) throw new Error(`unknown command ${message.cmd}`);
    answer = { ok: true, ...(await handler(message)) };
  } catch (err) {
    let where = "";
    if (page) {
      // What the page showed: its address and a screenshot beside the driver's log.
      const seen = await page
        .evaluate(async () => ({
          reimport: await import(`/smokewatch_static/smokewatch-zone-card.js?retry=${Date.now()}`).then(
            () => `ok, defined ${Boolean(customElements.get("smokewatch-zone-card"))}`,
            (e) => `${e?.name}: ${e?.message} ${e?.stack}`,
          ),
          defined: Boolean(customElements.get("smokewatch-zone-card")),
          rejections: window.__rejections ?? [],
          scripts: [...document.querySelectorAll("script")].map((el) => el.src || el.textContent.slice(0, 300)),
        }))
        .catch((e) => String(e));
      where = ` (page ${page.url()}; ${JSON.stringify(seen)}; errors ${JSON.stringify(pageErrors)}; card responses ${JSON.stringify(cardResponses)}; console ${JSON.stringify(consoleErrors)})`;
      if (process.env.DRIVER_FAILURE_SCREENSHOT) {
        await page.screenshot({ path: process.env.DRIVER_FAILURE_SCREENSHOT }).catch(() => {});
      }
    }
    answer = { ok: false, error: `${String(err?.stack ?? err)}${where}` };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (JSON.parse(line).cmd === "close") break;
}
// "close", or the end of stdin: leave at once (an open stdin would keep node waiting).
lines.close();
await browser?.close();
process.exit(0);
