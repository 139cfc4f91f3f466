/**
 * The one zod entry the product uses: zod/mini (zod 4's functional API over the same core as
 * classic zod, without its method chains), which loads and builds schemas for a fraction of
 * classic zod's start-up (docs/benchmarks.md, "Start-up: the layout schema"). Unlike classic zod
 * it installs no locale by itself: the English messages are installed here, the same ones classic
 * zod shows, which the layout's issue texts (layout/load.ts) are built from.
 */
import { config } from "zod/mini";
import en from "zod/v4/locales/en.js";

config(en());

// Imported as a namespace (`import * as z from "./zod.js"`), never handed around as an object, so
// the bundler keeps only the parts of zod the schemas use.
export * from "zod/mini";
