import { describe, expect, it } from "vitest";
import type { ResolvedLayout } from "../layout/load.js";
import { emptyState } from "../state/state.js";
import { renderRunMetrics } from "./metrics.js";

/** Only what the metrics read of a layout: its outputs and its sources' types. */
const layout = {
  outputs: [
    { file: "app.env", format: "env", keys: {} },
    { format: "pki", dir: "certs/web", files: { ca: null } },
  ],
  sources: new Map([
    ["app", { type: "kv" }],
    ["db", { type: "lease" }],
  ]),
} as unknown as ResolvedLayout;

const lines = (text: string) => text.split("\n").filter((l) => l && !l.startsWith("#"));

describe("run metrics", () => {
  it("a run that ended before its pass: every file of the layout 0, never a success, no request count, no token", () => {
    const text = renderRunMetrics(layout, emptyState(), { startedAt: 1_000_000, endedAt: 1_002_500, exit: 3 });
    expect(lines(text)).toEqual([
      "vault_render_last_run_timestamp_seconds 1002.5",
      "vault_render_last_run_exit_code 3",
      "vault_render_last_success_timestamp_seconds 0",
      "vault_render_run_duration_seconds 2.5",
      'vault_render_output_status{file="app.env"} 0',
      'vault_render_output_status{file="certs/web/cert.pem"} 0',
      'vault_render_output_status{file="certs/web/key.pem"} 0',
      'vault_render_output_status{file="certs/web/fullchain.pem"} 0',
    ]);
    // Every family with samples has its HELP and TYPE lines just before them.
    expect(text).toMatch(/# HELP vault_render_output_status .+\n# TYPE vault_render_output_status gauge\nvault_render_output_status\{/);
  });

  it("after a pass: status per result, bytes and expiries from state, only leases the layout still has", () => {
    const s = emptyState();
    s.lastSuccessAt = "2026-12-02T05:00:00.000Z";
    s.outputs["app.env"] = { hash: "h", size: 42, sources: {}, writtenAt: "x", lastError: null };
    s.pki["certs/web"] = { serial: "1", notAfter: 1_800_000_000_123, notBefore: 0, requestHash: "r", issuedAt: "x" };
    s.leases.db = { leaseId: "l", path: "database/creds/app", issuedAt: 0, expiresAt: 1_790_000_000_000, duration: 3600, renewable: true };
    s.leases.gone = { leaseId: "m", path: "database/creds/old", issuedAt: 0, expiresAt: 1, duration: 1, renewable: true };
    s.token = { id: "t", accessor: "a", issuedAt: 0, expiresAt: 1_780_000_000_000, period: 0, maxExpiresAt: null, maxTtl: null };
    const results = [
      { file: "app.env", action: "unchanged" as const },
      { file: "certs/web/cert.pem", action: "failed" as const },
      { file: "certs/web/key.pem", action: "update" as const },
      { file: "old.env", action: "delete" as const },
    ];
    const m = lines(renderRunMetrics(layout, s, { startedAt: 0, endedAt: 1, exit: 1, requests: 7, results }));
    expect(m).toContain("vault_render_last_success_timestamp_seconds 1796187600");
    expect(m).toContain("vault_render_run_vault_requests 7");
    expect(m).toContain('vault_render_output_status{file="app.env"} 1');
    expect(m).toContain('vault_render_output_status{file="certs/web/cert.pem"} 0');
    expect(m).toContain('vault_render_output_status{file="certs/web/key.pem"} 1');
    // A file the pass did not report (here: fullchain) is not claimed healthy; a pruned file is not an output.
    expect(m).toContain('vault_render_output_status{file="certs/web/fullchain.pem"} 0');
    expect(m.some((l) => l.includes("old.env"))).toBe(false);
    expect(m).toContain('vault_render_output_bytes{file="app.env"} 42');
    expect(m).toContain('vault_render_certificate_not_after_timestamp_seconds{dir="certs/web"} 1800000000.123');
    expect(m).toContain('vault_render_lease_expiry_timestamp_seconds{source="db"} 1790000000');
    expect(m.some((l) => l.includes('source="gone"'))).toBe(false);
    expect(m).toContain("vault_render_token_expiry_timestamp_seconds 1780000000");
  });
});
