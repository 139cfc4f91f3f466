/** What both export targets share: findings, hooks as restarts, the output entry specs. */
import type { Layout, OutputSpec, SourceSpec } from "../layout/schema.js";
import type { FileOutput } from "../layout/schema.js";
import { dnsLabel } from "./names.js";
import type { EntrySpec } from "./templates.js";

export type ExportTarget = "vso" | "eso";

/** One line on stderr: `vault-render: export: <where>: <why>[; instead: <instead>]`. */
export interface Finding {
  where: string;
  why: string;
  instead?: string;
  /** The output cannot be expressed (left out of the manifests). */
  blocking?: boolean;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: Record<string, unknown>;
}

/** A manifest and the comment lines above it. */
export interface Manifest {
  object: K8sObject;
  comment: string[];
  /** The index of the output it carries (none for connection, auth, stores, generators). */
  output?: number;
}

export function outputWhere(o: OutputSpec, i: number): string {
  return `outputs[${i}] (${o.format === "pki" ? o.dir : o.file})`;
}

export function findingLine(f: Finding): string {
  return `vault-render: export: ${f.where}: ${f.why}${f.instead ? `; instead: ${f.instead}` : ""}`;
}

export function entrySpec(o: Extract<FileOutput, { format: "env" | "json" }>): EntrySpec {
  const keys = Object.entries(o.keys ?? {}).map(([name, ref]) => {
    const i = ref.indexOf(".");
    return [name, ref.slice(0, i), ref.slice(i + 1)] as const;
  });
  const from = (o.from ?? []).map((f) => (typeof f === "string" ? { source: f, prefix: "" } : { source: f.source, prefix: f.prefix ?? "" }));
  return { keys, from };
}

export interface RestartTarget {
  kind: "Deployment";
  name: string;
}

/** `docker restart X…`, `docker container restart X…`, `docker compose restart X…` → the containers named. */
function restartedContainers(argv: string[]): string[] | null {
  if (argv[0] !== "docker") return null;
  let rest = argv.slice(1);
  if (rest[0] === "container" || rest[0] === "compose") rest = rest.slice(1);
  if (rest[0] !== "restart") return null;
  const names = rest.slice(1);
  if (names.length === 0 || names.some((n) => n.startsWith("-"))) return null;
  return names;
}

/** The hooks of an output as restarts where they map, and a finding for each (a guess, or no equivalent). */
export function hookRestarts(layout: Layout, hookNames: readonly string[], where: string, target: ExportTarget): { targets: RestartTarget[]; findings: Finding[] } {
  const targets: RestartTarget[] = [];
  const findings: Finding[] = [];
  for (const name of hookNames) {
    const hook = layout.hooks?.[name];
    if (!hook) continue;
    const argv = Array.isArray(hook.command) ? hook.command : hook.command.trim().split(/\s+/);
    const shown = `\`${argv.join(" ")}\``;
    const containers = hook.shell && /[;&|<>$`(){}]/.test(hook.command as string) ? null : restartedContainers(argv);
    if (target === "eso") {
      findings.push({
        where,
        why: `hook "${name}" (${shown}): ESO changes the Secret and restarts nothing`,
        instead: containers ? `a rollout restart of Deployment ${containers.map((c) => dnsLabel(c)).join(", ")} by a reloader watching the Secret (e.g. Stakater Reloader), or --to vso (rolloutRestartTargets)` : "an application that re-reads its mounted file, or a reloader watching the Secret",
      });
      continue;
    }
    if (containers) {
      for (const c of containers) {
        const t = { kind: "Deployment" as const, name: dnsLabel(c) };
        if (!targets.some((x) => x.name === t.name)) targets.push(t);
      }
      findings.push({
        where,
        why: `hook "${name}" (${shown}) became rolloutRestartTargets Deployment ${containers.map((c) => dnsLabel(c)).join(", ")}: a guess from the container name`,
        instead: "change the kind (DaemonSet, StatefulSet, argo.Rollout) or the name if the workload is not that Deployment",
      });
    } else {
      findings.push({
        where,
        why: `hook "${name}" (${shown}) has no equivalent: VSO can only restart a workload (rolloutRestartTargets)`,
        instead: "an application that re-reads its mounted file (Secret volumes are updated in place), or a restart target",
      });
    }
  }
  return { targets, findings };
}

/** A source's KV version as exported: declared, else 2 with a finding (vault-render detects it at run time). */
export function kvVersionOf(name: string, s: Extract<SourceSpec, { type: "kv" }>, findings: Finding[], said: Set<string>): 1 | 2 {
  if (s.kvVersion !== undefined) return s.kvVersion;
  if (!said.has(name)) {
    said.add(name);
    findings.push({
      where: `sources.${name}`,
      why: "kvVersion is not declared (vault-render detects it at run time); exported as KV v2",
      instead: 'declare "kvVersion": 1 or 2 in the layout and export again',
    });
  }
  return 2;
}

/** A generic path split into mount (its first segment) and the rest. */
export function splitMount(p: string): { mount: string; rest: string } {
  const i = p.indexOf("/");
  return i < 0 ? { mount: p, rest: "" } : { mount: p.slice(0, i), rest: p.slice(i + 1) };
}

/**
 * A lease's renewBefore (renew when less than this fraction of its lifetime is left) as VSO's
 * renewalPercent (renew when this percent of the lease duration has elapsed): 100 × (1 − fraction),
 * within VSO's 0..90. vault-render's default is 0.5 (so 50, not VSO's 67).
 */
export function renewalPercent(renewBefore: number | string | undefined): { percent: number | undefined; why?: string } {
  const rb = renewBefore ?? 0.5;
  if (typeof rb === "string") {
    return { percent: undefined, why: `renewBefore "${rb}" is a duration and VSO's renewalPercent a share of a lease duration not known before the read; VSO's default (67%) applies` };
  }
  const p = Math.round((1 - rb) * 100);
  if (p > 90) return { percent: 90, why: `renewBefore ${rb} means renewing at ${p}% of the lease; VSO allows at most 90` };
  return { percent: p };
}
