/**
 * `--metrics-file`: what a sync run (or a watch pass) tells a scraper, as Prometheus text for
 * node_exporter's textfile collector. Pure: the run's outcome, the layout and the state in, text
 * out (the atomic write is fs/metrics-file.ts). Names, file paths and times only, never a value.
 */
import type { ResolvedLayout } from "../layout/load.js";
import { isPki, outputFiles, outputId } from "../layout/outputs.js";
import type { State } from "../state/state.js";
import type { MetricFamily } from "../support/prom.js";
import { renderExposition } from "../support/prom.js";
import type { OutputResult } from "./result.js";

/** How a run ended, as the metrics need it. */
export interface RunFacts {
  /** ms since the epoch */
  startedAt: number;
  endedAt: number;
  exit: number;
  /** Vault requests the run made, when known (a run that ended before it had a client made none). */
  requests?: number;
  /** The pass's results; absent when the run ended before its pass (authentication, lock, agent-only/). */
  results?: OutputResult[];
}

const seconds = (ms: number): number => Math.round(ms) / 1000;

/** Per file of the layout: rendered this run (1) or not (0), and the bytes last written (from state). */
function outputSamples(layout: ResolvedLayout, state: State, results: OutputResult[] | undefined) {
  const byFile = new Map((results ?? []).filter((r) => r.action !== "delete").map((r) => [r.file, r]));
  const status: MetricFamily["samples"] = [];
  const bytes: MetricFamily["samples"] = [];
  for (const o of layout.outputs) {
    for (const file of outputFiles(o)) {
      const r = byFile.get(file);
      status.push({ labels: { file }, value: r !== undefined && r.action !== "failed" ? 1 : 0 });
      const size = state.outputs[file]?.size;
      if (size !== undefined) bytes.push({ labels: { file }, value: size });
    }
  }
  return { status, bytes };
}

/** The metric families of one run. */
function runMetrics(layout: ResolvedLayout, state: State, run: RunFacts): MetricFamily[] {
  const { status, bytes } = outputSamples(layout, state, run.results);
  const certs: MetricFamily["samples"] = [];
  for (const o of layout.outputs) {
    if (!isPki(o)) continue;
    const dir = outputId(o);
    const p = state.pki[dir];
    if (p) certs.push({ labels: { dir }, value: seconds(p.notAfter) });
  }
  const leases: MetricFamily["samples"] = [];
  for (const [source, rec] of Object.entries(state.leases)) {
    if (layout.sources.get(source)?.type === "lease") leases.push({ labels: { source }, value: seconds(rec.expiresAt) });
  }
  const lastSuccess = state.lastSuccessAt ? Date.parse(state.lastSuccessAt) : NaN;
  const token = state.token?.expiresAt;
  return [
    { name: "vault_render_last_run_timestamp_seconds", type: "gauge", help: "When the last sync run (or watch pass) ended, in seconds since the epoch.", samples: [{ value: seconds(run.endedAt) }] },
    { name: "vault_render_last_run_exit_code", type: "gauge", help: "Exit code of the last run (0 ok, 1 some outputs failed, 3 Vault unavailable, 4 locked, 5 local environment).", samples: [{ value: run.exit }] },
    {
      name: "vault_render_last_success_timestamp_seconds",
      type: "gauge",
      help: "When a run last ended with exit 0, in seconds since the epoch (0: never).",
      samples: [{ value: Number.isFinite(lastSuccess) ? seconds(lastSuccess) : 0 }],
    },
    { name: "vault_render_run_duration_seconds", type: "gauge", help: "How long the last run took.", samples: [{ value: seconds(Math.max(0, run.endedAt - run.startedAt)) }] },
    { name: "vault_render_run_vault_requests", type: "gauge", help: "HTTP requests the last run made to Vault.", samples: run.requests === undefined ? [] : [{ value: run.requests }] },
    { name: "vault_render_output_status", type: "gauge", help: "1 when the last run rendered the file (written or already current), 0 when it failed (the file keeps its last good content).", samples: status },
    { name: "vault_render_output_bytes", type: "gauge", help: "Size of the file as vault-render last wrote it.", samples: bytes },
    { name: "vault_render_certificate_not_after_timestamp_seconds", type: "gauge", help: "notAfter of the certificate set's current leaf, in seconds since the epoch.", samples: certs },
    { name: "vault_render_lease_expiry_timestamp_seconds", type: "gauge", help: "When the leased credentials of the source expire unless renewed, in seconds since the epoch.", samples: leases },
    {
      name: "vault_render_token_expiry_timestamp_seconds",
      type: "gauge",
      help: "When vault-render's Vault token expires unless renewed, in seconds since the epoch.",
      samples: typeof token === "number" ? [{ value: seconds(token) }] : [],
    },
  ];
}

/** The exposition text of one run. */
export function renderRunMetrics(layout: ResolvedLayout, state: State, run: RunFacts): string {
  return renderExposition(runMetrics(layout, state, run));
}
