/**
 * `policy`: the minimal Vault policy (HCL) for a layout's AppRole, derived from the exact Vault
 * calls the core makes (sources.ts, leases.ts, pki.ts, auth.ts, rotate.ts): one block per exact
 * path, with the least capabilities, each commented with what needs it. Needs no Vault and no
 * token: it only loads the layout (and reads template files to learn which sources they use).
 *
 * What the code calls, and what that needs in Vault's ACL:
 * - token reuse: GET auth/token/lookup-self (read), POST auth/token/renew-self (update). Both are
 *   in Vault's default policy; they are emitted anyway so the policy also serves a role created
 *   with token_no_default_policy=true. Without them every run logs in again (a new token per run).
 * - KV v1: GET <mount>/<path> (read). KV v2: GET <mount>/data/<path>[?version=N] (read). Nothing
 *   reads metadata/, so no metadata/ rule.
 * - KV v2 with `generate` (rotate): a POST to <mount>/data/<path> with check-and-set, always
 *   after a successful read of the same secret, so the key already exists and Vault's existence
 *   check makes that write an `update` (never `create`).
 * - kvVersion not declared: GET sys/internal/ui/mounts/<mount> (the preflight). It needs no rule:
 *   Vault answers it when the token has any capability inside the mount, which the secret's own
 *   rule gives. The read path then depends on the detected version, so both candidates are emitted.
 * - read: GET <path> (read). lease: GET <path> (read), PUT sys/leases/renew (update, also in the
 *   default policy), PUT sys/leases/revoke (update).
 * - pki: POST <mount>/issue/<role> (update).
 * - rotate --secret-id (auth.approle.roleName): POST auth/<mount>/role/<role>/secret-id/lookup and
 *   …/secret-id (update); …/secret-id-accessor/destroy (update) only with revokeOldSecretId.
 * - Not in the policy: auth/<mount>/login (unauthenticated); sys/wrapping/lookup (unauthenticated)
 *   and sys/wrapping/unwrap (sent with the wrapping token itself, whose own policy allows it).
 */
import path from "node:path";
import { ExitCode, VrError } from "../support/errors.js";
import type { Env, ResolvedLayout } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import { outputId } from "../layout/outputs.js";
import type { SourceSpec } from "../layout/schema.js";
import { sourceNeeds } from "../render/index.js";
import { kvVersionFor, settledKvVersions } from "../vault/kv.js";
import { StateStore } from "../state/state.js";
import { tokenMaxTtlWarning } from "../vault/token-horizon.js";

/** Vault's capability order (as `vault policy fmt` and the docs list them). */
const CAPABILITY_ORDER = ["create", "read", "update", "patch", "delete", "list", "sudo"] as const;
type PolicyCapability = (typeof CAPABILITY_ORDER)[number];

/** Blocks are grouped in this order; within a group they are sorted by path. */
const GROUP_ORDER = ["token", "secret", "pki", "lease", "secret-id"] as const;
type PolicyGroup = (typeof GROUP_ORDER)[number];

/** One capability on one exact path, and why the code needs it. */
interface PolicyGrant {
  path: string;
  capability: PolicyCapability;
  group: PolicyGroup;
  /** The command whose run fails (or degrades) without it. */
  command: "sync" | "rotate" | "rotate --secret-id";
  /** A short comment line naming the source/output that needs it. */
  comment: string;
}

interface PolicyBlock {
  path: string;
  group: PolicyGroup;
  capabilities: PolicyCapability[];
  comments: string[];
}

export interface Policy {
  /** The layout file's name (no directory: the output does not depend on where it is). */
  layoutName: string;
  grants: PolicyGrant[];
  blocks: PolicyBlock[];
  /** Header comment lines (without "# "). */
  notes: string[];
}

/** Which sources the outputs actually use (sync and rotate read nothing else), by the rule sync uses. */
async function usedSources(layout: ResolvedLayout): Promise<Map<string, string[]>> {
  const { needs } = await sourceNeeds(layout);
  const used = new Map<string, string[]>();
  for (const [id, names] of needs) {
    if (names instanceof Error) {
      throw new VrError("TEMPLATE", `cannot tell which sources ${id} uses: ${names.message}`, {
        hint: "the policy follows the templates' references: make the template readable and valid",
        exit: ExitCode.Usage,
      });
    }
    for (const n of names) if (layout.sources.has(n)) used.set(n, [...(used.get(n) ?? []), id]);
  }
  return used;
}

/** Every grant the layout needs, in a stable order. */
async function policyGrants(layout: ResolvedLayout): Promise<{ grants: PolicyGrant[]; notes: string[] }> {
  const grants: PolicyGrant[] = [];
  const notes: string[] = [];
  const add = (g: PolicyGrant) => grants.push(g);

  add({ path: "auth/token/lookup-self", capability: "read", group: "token", command: "sync", comment: "token: reuse the cached token (also in Vault's default policy)" });
  add({ path: "auth/token/renew-self", capability: "update", group: "token", command: "sync", comment: "token: renew the cached token past half its TTL (also in Vault's default policy)" });

  const used = await usedSources(layout);
  const unused = [...layout.sources.keys()].filter((n) => !used.has(n)).sort();
  const names = [...used.keys()].sort();
  const leaseNames: string[] = [];
  const undeclared = new Set<string>();
  // Mounts whose version the layout settles: the same rule sync reads with.
  const declared = settledKvVersions(layout.sources.values());
  for (const name of names) {
    const spec = layout.sources.get(name) as SourceSpec;
    if (spec.type === "read") {
      add({ path: spec.path, capability: "read", group: "secret", command: "sync", comment: `source "${name}": read ${spec.path}` });
    } else if (spec.type === "lease") {
      leaseNames.push(name);
      add({ path: spec.path, capability: "read", group: "secret", command: "sync", comment: `source "${name}": leased credentials from ${spec.path}` });
    } else {
      const v = kvVersionFor(spec, declared);
      const pin = spec.version !== undefined ? ` (version ${spec.version})` : "";
      if (v === 1 || v === undefined) {
        const when = v === undefined ? ` (if ${spec.mount} is KV v1: kvVersion not declared)` : "";
        add({ path: `${spec.mount}/${spec.path}`, capability: "read", group: "secret", command: "sync", comment: `source "${name}": KV v1 ${spec.mount}/${spec.path}${when}` });
      }
      if (v === 2 || v === undefined) {
        const when = v === undefined ? ` (if ${spec.mount} is KV v2: kvVersion not declared)` : "";
        add({ path: `${spec.mount}/data/${spec.path}`, capability: "read", group: "secret", command: "sync", comment: `source "${name}": KV v2 ${spec.mount}/${spec.path}${pin}${when}` });
      }
      if (v === undefined) undeclared.add(spec.mount);
      if (spec.generate) {
        add({
          path: `${spec.mount}/data/${spec.path}`,
          capability: "update",
          group: "secret",
          command: "rotate",
          comment: `rotate: ${name} (new "${spec.generate.key}", check-and-set write to the existing secret)`,
        });
      }
    }
  }

  for (const o of layout.outputs) {
    if (o.format !== "pki") continue;
    add({ path: `${o.mount}/issue/${o.role}`, capability: "update", group: "pki", command: "sync", comment: `output "${outputId(o)}": certificate for ${o.commonName}` });
  }

  if (leaseNames.length) {
    const list = leaseNames.map((n) => `"${n}"`).join(", ");
    add({ path: "sys/leases/renew", capability: "update", group: "lease", command: "sync", comment: `leases: renew ${list} (also in Vault's default policy)` });
    add({ path: "sys/leases/revoke", capability: "update", group: "lease", command: "sync", comment: `leases: revoke the replaced leases of ${list}` });
  }

  const { mount, roleName, revokeOldSecretId } = layout.approle;
  if (roleName) {
    const base = `auth/${mount}/role/${roleName}`;
    add({ path: `${base}/secret-id`, capability: "update", group: "secret-id", command: "rotate --secret-id", comment: "rotate --secret-id: issue the new secret_id" });
    add({ path: `${base}/secret-id/lookup`, capability: "update", group: "secret-id", command: "rotate --secret-id", comment: "rotate --secret-id: look up the old secret_id's accessor" });
    if (revokeOldSecretId) {
      add({ path: `${base}/secret-id-accessor/destroy`, capability: "update", group: "secret-id", command: "rotate --secret-id", comment: "rotate --secret-id: destroy the old secret_id (revokeOldSecretId)" });
    }
  }

  notes.push(`Vault policy for the AppRole of ${layout.approle.mount === "approle" ? "auth/approle" : `auth/${layout.approle.mount}`} used by vault-render with ${path.basename(layout.file)}.`);
  notes.push("Generated by `vault-render policy`: exact paths, least capabilities, nothing else.");
  notes.push(`Needs no rule: auth/${mount}/login (unauthenticated).`);
  if (layout.approle.secretIdWrapped) {
    notes.push("Wrapped secret_id, no rule either: sys/wrapping/lookup (unauthenticated) and");
    notes.push("sys/wrapping/unwrap (sent with the wrapping token, whose own policy allows it).");
  }
  if (!roleName) notes.push('rotate --secret-id is not set up (no auth.approle.roleName): no secret-id rules.');
  for (const m of [...undeclared].sort()) {
    notes.push(`Mount "${m}": no source declares its kvVersion, so vault-render detects it through`);
    notes.push(`sys/internal/ui/mounts/${m} (that needs no rule) and both the KV v1 and the KV v2 path are`);
    notes.push(`granted below; declare "kvVersion" on its sources to drop the one that does not apply.`);
  }
  if (unused.length) notes.push(`Not referenced by any output, never read, no rule: ${unused.map((n) => `"${n}"`).join(", ")}.`);
  return { grants, notes };
}

/** A layout path that Vault's ACL would read as a glob (`+` segment, trailing `*`) cannot get an exact rule. */
function checkExact(grants: PolicyGrant[]): void {
  for (const g of grants) {
    if (g.path.endsWith("*") || g.path.split("/").includes("+")) {
      throw new VrError("USAGE", `policy: "${g.path}" would be a glob in a Vault policy ("+" segment or trailing "*"), not an exact path`, {
        hint: "rename the secret, or write that rule by hand",
        exit: ExitCode.Usage,
      });
    }
  }
}

/** Merge grants into one block per exact path (capabilities in Vault's order, comments deduplicated). */
function mergeGrants(grants: PolicyGrant[]): PolicyBlock[] {
  const byPath = new Map<string, PolicyBlock>();
  for (const g of grants) {
    let b = byPath.get(g.path);
    if (!b) {
      b = { path: g.path, group: g.group, capabilities: [], comments: [] };
      byPath.set(g.path, b);
    }
    if (!b.capabilities.includes(g.capability)) b.capabilities.push(g.capability);
    if (!b.comments.includes(g.comment)) b.comments.push(g.comment);
  }
  const blocks = [...byPath.values()];
  for (const b of blocks) b.capabilities.sort((x, y) => CAPABILITY_ORDER.indexOf(x) - CAPABILITY_ORDER.indexOf(y));
  blocks.sort((a, b) => GROUP_ORDER.indexOf(a.group) - GROUP_ORDER.indexOf(b.group) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return blocks;
}

export async function buildPolicy(layout: ResolvedLayout): Promise<Policy> {
  const { grants, notes } = await policyGrants(layout);
  checkExact(grants);
  return { layoutName: path.basename(layout.file), grants, blocks: mergeGrants(grants), notes };
}

/** Paths and comments come from the layout; neither may break out of a string or a comment line. */
function hclString(s: string): string {
  return JSON.stringify(s);
}

function commentLine(s: string): string {
  return `# ${s.replace(/[\r\n]+/g, " ")}`;
}

export function renderHcl(p: Pick<Policy, "blocks" | "notes">): string {
  const out: string[] = p.notes.map(commentLine);
  for (const b of p.blocks) {
    out.push("");
    for (const c of b.comments) out.push(commentLine(c));
    out.push(`path ${hclString(b.path)} {`);
    out.push(`  capabilities = [${b.capabilities.map((c) => `"${c}"`).join(", ")}]`);
    out.push("}");
  }
  return out.join("\n") + "\n";
}

export function renderJson(p: Pick<Policy, "blocks">): string {
  const obj: Record<string, PolicyCapability[]> = {};
  for (const b of p.blocks) obj[b.path] = b.capabilities;
  return JSON.stringify(obj, null, 2) + "\n";
}

export interface PolicyOptions {
  layoutFile: string;
  env: Env;
  format: "hcl" | "json";
}

/**
 * `vault-render policy`: load the layout (exit 2 when invalid) and render its policy. The policy
 * text depends on the layout only; `warnings` (for stderr) come from what earlier runs recorded
 * in agent-only/state.json about the AppRole's token, when there is such a state.
 */
export async function runPolicy(opts: PolicyOptions): Promise<{ text: string; policy: Policy; warnings: string[] }> {
  const layout = await loadLayout(opts.layoutFile, opts.env);
  const policy = await buildPolicy(layout);
  const state = await new StateStore(layout.agentDir).load().catch(() => null);
  const w = state ? tokenMaxTtlWarning(layout, state) : null;
  return { text: opts.format === "json" ? renderJson(policy) : renderHcl(policy), policy, warnings: w ? [w] : [] };
}
