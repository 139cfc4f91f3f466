/**
 * `status`: offline, from state and the files on disk — fast enough for a shell prompt or a
 * monitoring script. One row per output: source versions, last written, certificate expiry,
 * lease expiry, last error, pending hook.
 */
import type { Env } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import { isPki, outputFiles, outputId, pkiFiles } from "../layout/outputs.js";
import { StateStore } from "../state/state.js";
import { readLeaf } from "../vault/pki.js";
import { cutText } from "../support/redact.js";

interface StatusRow {
  output: string;
  format: string;
  sources: Record<string, number | null>;
  lastWritten: string | null;
  certExpires: string | null;
  certDaysLeft: number | null;
  leaseExpires: string | null;
  lastError: string | null;
  pendingHooks: string[];
}

export interface StatusReport {
  version: 1;
  layout: string;
  lastRun: { at: string; exit: number; summary: string } | null;
  lastSuccessAt: string | null;
  outputs: StatusRow[];
}

export async function runStatus(opts: { layoutFile: string; env: Env; now: number }): Promise<StatusReport> {
  const layout = await loadLayout(opts.layoutFile, opts.env, "read");
  const state = await new StateStore(layout.agentDir).load();
  const rows: StatusRow[] = [];
  for (const o of layout.outputs) {
    const id = outputId(o);
    const first = outputFiles(o)[0] ?? id;
    const rec = state.outputs[first];
    const row: StatusRow = {
      output: id,
      format: o.format,
      sources: {},
      lastWritten: rec?.writtenAt ?? null,
      certExpires: null,
      certDaysLeft: null,
      leaseExpires: null,
      lastError: rec?.lastError?.message ?? state.failures[id]?.message ?? null,
      pendingHooks: (o.hooks ?? []).filter((h) => state.pendingHooks[h]),
    };
    for (const [name, v] of Object.entries(rec?.sources ?? {})) {
      row.sources[name] = v.version ?? null;
      const lease = state.leases[name];
      if (lease && (!row.leaseExpires || lease.expiresAt < Date.parse(row.leaseExpires))) row.leaseExpires = new Date(lease.expiresAt).toISOString();
    }
    if (isPki(o)) {
      const files = pkiFiles(o);
      const cert = await readLeaf(layout.publicDir, files);
      if (typeof cert === "string") {
        row.lastError ??= "no readable certificate on disk";
      } else {
        const notAfter = Date.parse(cert.validTo);
        row.certExpires = new Date(notAfter).toISOString();
        row.certDaysLeft = Math.floor((notAfter - opts.now) / 86_400_000);
      }
    }
    rows.push(row);
  }
  return { version: 1, layout: layout.file, lastRun: state.lastRun ?? null, lastSuccessAt: state.lastSuccessAt ?? null, outputs: rows };
}

export function formatStatus(r: StatusReport): string {
  const head = ["OUTPUT", "FORMAT", "SOURCES", "WRITTEN", "EXPIRES", "ERROR", "HOOKS"];
  const rows = r.outputs.map((o) => [
    o.output,
    o.format,
    Object.entries(o.sources).map(([k, v]) => (v === null ? k : `${k}@v${v}`)).join(",") || "-",
    o.lastWritten ? o.lastWritten.slice(0, 19).replace("T", " ") : "never",
    o.certExpires ? `cert ${o.certDaysLeft}d` : o.leaseExpires ? `lease ${o.leaseExpires.slice(0, 16).replace("T", " ")}` : "-",
    o.lastError ? cutText(o.lastError, 60) : "-",
    o.pendingHooks.length ? `pending: ${o.pendingHooks.join(",")}` : "-",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ");
  const lines = [fmt(head), ...rows.map(fmt)];
  lines.push(r.lastRun ? `last run ${r.lastRun.at} (exit ${r.lastRun.exit}: ${r.lastRun.summary}); last success ${r.lastSuccessAt ?? "never"}` : "no run recorded yet");
  return lines.join("\n") + "\n";
}
