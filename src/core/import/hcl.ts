/**
 * HCL → JSON through @cdktf/hcl2json's WebAssembly build of HashiCorp's own HCL parser. The
 * package's JS bridge reads its wasm next to itself (which a bundle moves away) and pulls in
 * fs-extra; this loader starts the same Go program itself and finds the wasm either beside the
 * bundle (dist/hcl2json.wasm.gz, copied there by esbuild.config.mjs) or in node_modules (source,
 * tests, the tsc tree). The single executable carries neither: `import` of an HCL file fails there
 * with one line, while JSON configs need no wasm at all.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { ExitCode, VrError } from "../support/errors.js";

type Callback = (err: string | null, result?: string) => void;
interface Bridge {
  parse?: (filename: string, contents: string, cb: Callback) => void;
}
interface GoRuntime {
  importObject: WebAssembly.Imports;
  run(instance: WebAssembly.Instance): Promise<void>;
}
type GoGlobal = typeof globalThis & { Go?: new () => GoRuntime; __parse_terraform_config_wasm__?: Bridge };

let bridge: Promise<Bridge> | undefined;

async function wasmFile(): Promise<Buffer> {
  const candidates: string[] = [];
  try {
    candidates.push(path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "hcl2json.wasm.gz"));
  } catch {
    // not a file URL: no bundle directory to look in
  }
  try {
    candidates.push(path.join(path.dirname(createRequire(import.meta.url).resolve("@cdktf/hcl2json/package.json")), "main.wasm.gz"));
  } catch {
    // not installed beside this program
  }
  for (const c of candidates) {
    try {
      return await readFile(c);
    } catch {
      // try the next place
    }
  }
  throw new VrError("USAGE", "import: this build of vault-render cannot parse HCL (hcl2json.wasm.gz is not beside it; the single executable does not embed it)", {
    hint: "convert the config to JSON, or run import from the npm package",
    exit: ExitCode.Usage,
  });
}

async function start(): Promise<Bridge> {
  const gz = await wasmFile();
  await import("@cdktf/hcl2json/wasm/wasm_exec.js");
  const g = globalThis as GoGlobal;
  if (g.Go === undefined) throw new VrError("INTERNAL", "import: the HCL parser's Go runtime did not load");
  const go = new g.Go();
  const root: Bridge = {};
  g.__parse_terraform_config_wasm__ = root;
  const { instance } = await WebAssembly.instantiate(gunzipSync(gz), go.importObject);
  void go.run(instance);
  for (let i = 0; i < 100 && root.parse === undefined; i++) await new Promise((r) => setImmediate(r));
  if (root.parse === undefined) throw new VrError("INTERNAL", "import: the HCL parser did not start");
  return root;
}

/** Parse HCL text into hcl2json's JSON (every block an array of objects). Throws the parser's own message. */
export async function parseHcl(filename: string, text: string): Promise<Record<string, unknown>> {
  bridge ??= start();
  const b = await bridge;
  const parse = b.parse as NonNullable<Bridge["parse"]>;
  const out = await new Promise<string>((resolve, reject) => {
    parse(filename, text, (err, res) => (err ? reject(new Error(String(err))) : resolve(res ?? "{}")));
  });
  return JSON.parse(out) as Record<string, unknown>;
}
