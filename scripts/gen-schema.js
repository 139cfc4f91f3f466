// Regenerates schema/vault-layout.schema.json from the zod schema (run after `npm run build`).
import { writeFileSync } from "node:fs";
import { layoutJsonSchema } from "../dist/core/layout/schema.js";

writeFileSync(new URL("../schema/vault-layout.schema.json", import.meta.url), JSON.stringify(layoutJsonSchema(), null, 2) + "\n");
