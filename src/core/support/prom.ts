/**
 * The Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector
 * reads it: per metric family one `# HELP` and one `# TYPE` line, then its samples; label values
 * escaped (backslash, double quote, line feed), HELP text escaped (backslash, line feed). No
 * timestamps (the textfile collector refuses them). Pure: text in memory, no I/O.
 */

type MetricType = "gauge" | "counter" | "untyped";

interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the format quotes it: `\` → `\\`, `"` → `\"`, line feed → `\n`. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text: `\` → `\\`, line feed → `\n` (quotes stay as they are). */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value: integers as they are, `NaN`, `+Inf`, `-Inf` as the format spells them. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** The families as exposition text (families without samples are left out: a HELP with no sample is noise). */
export function renderExposition(families: MetricFamily[]): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!NAME.test(f.name)) throw new Error(`internal: invalid metric name ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new Error(`internal: metric family ${f.name} given twice`);
    seen.add(f.name);
    if (f.samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const entries = Object.entries(s.labels ?? {});
      for (const [k] of entries) if (!LABEL.test(k) || k.startsWith("__")) throw new Error(`internal: invalid label name ${JSON.stringify(k)}`);
      const labels = entries.length ? `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}` : "";
      lines.push(`${f.name}${labels} ${formatValue(s.value)}`);
    }
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}
