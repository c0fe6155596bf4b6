// Bundle the card into the integration (HACS users do not build): `npm run build`.
// test/bundle.test.ts rebuilds with the same options and fails if the committed bundle is stale.
import * as esbuild from "esbuild";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const OUTFILE = fileURLToPath(
  new URL("../custom_components/smokewatch/frontend/smokewatch-zone-card.js", import.meta.url),
);

export const OPTIONS = {
  entryPoints: [fileURLToPath(new URL("src/smokewatch-zone-card.ts", import.meta.url))],
  bundle: true,
  format: "esm",
  target: "es2021",
  minify: true,
  legalComments: "none",
  write: false,
  logLevel: "warning",
};

/** The bundle's bytes. */
export async function bundle() {
  const result = await esbuild.build(OPTIONS);
  return result.outputFiles[0].contents;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const contents = await bundle();
  writeFileSync(OUTFILE, contents);
  console.log(`${OUTFILE}: ${contents.length} bytes`);
}
