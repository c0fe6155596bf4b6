import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module without types
import { OUTFILE, bundle } from "../build.mjs";

describe("the bundle committed in the integration", () => {
  it("is what the sources build to (run `npm run build` after editing src/)", async () => {
    const built = new TextDecoder().decode(await bundle());
    expect(readFileSync(OUTFILE, "utf8") === built).toBe(true);
    expect(built).toContain("smokewatch-zone-card");
  });
});
