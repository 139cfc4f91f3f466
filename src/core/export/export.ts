/**
 * `export`: a layout (loaded and validated by the product's own loader) → Kubernetes manifests for
 * the Vault Secrets Operator or the External Secrets Operator, as objects serialised with `yaml`
 * (multi-document, in a fixed order with names derived from the layout), and the findings: what
 * changes on the way and what cannot be expressed.
 */
import path from "node:path";
import YAML from "yaml";
import type { Env, ResolvedLayout } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import { FILE_MODE, atomicWrite, syncDirs } from "../fs/writer.js";
import { sourceNeeds } from "../render/index.js";
import type { ExportTarget, Finding, Manifest } from "./model.js";
import { exportEso } from "./eso.js";
import { exportVso } from "./vso.js";

export type { ExportTarget };

export interface ExportOptions {
  to: ExportTarget;
  namespace?: string | undefined;
  /** KV refresh (VSO refreshAfter, ESO refreshInterval); the watch default is 5m. */
  intervalMs: number;
}

export interface ExportResult {
  manifests: Manifest[];
  findings: Finding[];
  /** Outputs left out because they cannot be expressed. */
  skipped: number;
}

export async function exportLayout(layout: ResolvedLayout, opts: ExportOptions): Promise<ExportResult> {
  const needs = await sourceNeeds(layout);
  const findings: Finding[] = [];
  const cx = { layout, needs, namespace: opts.namespace, intervalMs: opts.intervalMs, findings };
  const { manifests, skipped } = opts.to === "vso" ? exportVso(cx) : exportEso(cx);
  return { manifests, findings, skipped };
}

/** The manifests as one multi-document YAML text (comments above each document). */
export function manifestsYaml(manifests: Manifest[], header: string[]): string {
  return manifests
    .map((m, i) => {
      const doc = new YAML.Document(m.object);
      const lines = i === 0 ? [...header, ...m.comment] : m.comment;
      if (lines.length) doc.commentBefore = lines.map((l) => ` ${l}`).join("\n");
      return doc.toString({ lineWidth: 0 });
    })
    .join("---\n");
}

export interface RunExportOptions extends ExportOptions {
  layoutFile: string;
  env: Env;
  /** Export what can be expressed even when some outputs cannot. */
  partial: boolean;
  /** Write the YAML here (atomically, 0644) instead of handing it to the caller for stdout. */
  outFile?: string | undefined;
}

/**
 * Load, export, and (with outFile) write. When an output cannot be expressed and `partial` is off,
 * nothing is written: `written` is false and the caller prints nothing on stdout (exit 1).
 */
export async function runExport(o: RunExportOptions): Promise<ExportResult & { text: string; written: boolean; outFile?: string }> {
  const layout = await loadLayout(o.layoutFile, o.env);
  const res = await exportLayout(layout, o);
  const header = [`vault-render export --to ${o.to} of ${path.basename(layout.file)}: ${res.manifests.length} objects.`];
  const text = manifestsYaml(res.manifests, header);
  const written = res.skipped === 0 || o.partial;
  if (written && o.outFile !== undefined) {
    const file = path.resolve(o.outFile);
    await atomicWrite(file, Buffer.from(text, "utf8"), FILE_MODE);
    await syncDirs([path.dirname(file)]);
    return { ...res, text, written, outFile: file };
  }
  return { ...res, text, written };
}
