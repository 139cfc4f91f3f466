/**
 * `rotate`: the operator's manual rotation. A certificate set is re-issued, leased credentials
 * replaced, a KV v2 key with a declared generator gets a new random value (written with
 * check-and-set); then the normal pass renders and runs hooks. `--secret-id` replaces the
 * AppRole secret_id after proving the new one logs in.
 */
import { randomInt } from "node:crypto";
import { login } from "../vault/auth.js";
import { ExitCode, VrError } from "../support/errors.js";
import { isPki, outputId } from "../layout/outputs.js";
import type { SourceSpec } from "../layout/schema.js";
import { outputSources } from "../render/index.js";
import type { TemplatePart } from "../render/template.js";
import { kvContext, readSource } from "../vault/kv.js";
import { keyedHash } from "../state/state.js";
import type { RunContext, RunOptions } from "../run/context.js";
import { withRun } from "../run/context.js";
import { syncPass } from "../sync/pass.js";
import type { Forces, SyncResult } from "../sync/result.js";
import { readPrivate, writePrivate } from "../fs/writer.js";

export interface RotateOptions extends RunOptions {
  targets: string[];
  secretId: boolean;
}

const ALPHABETS: Record<string, string> = {
  alnum: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
  hex: "0123456789abcdef",
  base64url: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
  "ascii-printable": Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).join(""),
};

/** A uniformly random string (crypto.randomInt has no modulo bias). */
function generateValue(length: number, alphabet: string): string {
  const chars = [...new Set([...(ALPHABETS[alphabet] ?? alphabet)])];
  let out = "";
  for (let i = 0; i < length; i++) out += chars[randomInt(chars.length)];
  return out;
}

type KvSpec = Extract<SourceSpec, { type: "kv" }>;

interface Plan {
  forces: Forces;
  generators: Array<[string, KvSpec]>;
  lines: string[];
}

async function plan(s: RunContext, targets: string[]): Promise<Plan> {
  const { layout } = s;
  const byId = new Map(layout.outputs.map((o) => [outputId(o), o]));
  const p: Plan = { forces: { pki: new Set(), leases: new Set() }, generators: [], lines: [] };
  const templates = new Map<string, TemplatePart[]>();
  for (const t of targets) {
    const o = byId.get(t.replace(/\/+$/, ""));
    if (!o) {
      throw new VrError("USAGE", `rotate: no output "${t}" in the layout (outputs: ${[...byId.keys()].join(", ")})`, { exit: ExitCode.Usage });
    }
    const id = outputId(o);
    if (isPki(o)) {
      p.forces.pki.add(id);
      p.lines.push(`rotate    ${id}  new certificate from ${o.mount}/issue/${o.role}`);
      continue;
    }
    let found = false;
    for (const name of await outputSources(o, layout.dir, templates)) {
      const spec = layout.sources.get(name);
      if (spec?.type === "lease") {
        found = true;
        if (!p.forces.leases.has(name)) p.lines.push(`rotate    ${id}  new credentials for source "${name}" from ${spec.path}`);
        p.forces.leases.add(name);
      } else if (spec?.type === "kv" && spec.generate) {
        found = true;
        if (!p.generators.some(([n]) => n === name)) {
          p.generators.push([name, spec]);
          p.lines.push(`rotate    ${id}  new random value for ${spec.mount}/${spec.path} key "${spec.generate.key}" (check-and-set)`);
        }
      }
    }
    if (!found) {
      throw new VrError("USAGE", `rotate: nothing to rotate for "${id}": its sources are KV secrets without a "generate" rule (vault-render never rotates those)`, {
        hint: 'add "generate": { "key": "password" } to the KV v2 source, or rotate it in Vault and run sync',
        exit: ExitCode.Usage,
      });
    }
  }
  return p;
}

async function rotateKv(s: RunContext, name: string, spec: KvSpec): Promise<void> {
  const gen = spec.generate as NonNullable<KvSpec["generate"]>;
  const cur = await readSource(s.client, spec, s.state, kvContext(s.layout.sources.values()));
  if (cur.version === undefined) {
    throw new VrError("USAGE", `rotate: source "${name}" is not KV v2; generators need check-and-set`, { exit: ExitCode.Usage });
  }
  const value = generateValue(gen.length, gen.alphabet);
  s.opts.redactor.add(value);
  const res = await s.client.write(`${spec.mount}/data/${spec.path}`, { options: { cas: cur.version }, data: { ...cur.data, [gen.key]: value } }, { sideEffect: true });
  const version = (res.data as { version?: number } | null)?.version;
  s.opts.log.info({ source: name, from: cur.version, to: version }, `rotated ${spec.mount}/${spec.path} key "${gen.key}": version ${cur.version} -> ${version ?? "?"}`);
}

async function rotateSecretId(s: RunContext): Promise<void> {
  const { layout, client, opts, state, hmacKey } = s;
  const { mount, roleName, secretIdFile } = layout.approle;
  if (!roleName) {
    throw new VrError("USAGE", 'rotate --secret-id needs "auth.approle.roleName" in the layout', { exit: ExitCode.Usage });
  }
  const old = (await readPrivate(secretIdFile))?.toString("utf8").trim();
  if (opts.dryRun) {
    opts.print(`rotate    secret_id  new secret_id for auth/${mount}/role/${roleName}, written to ${secretIdFile}${layout.approle.revokeOldSecretId ? "; the old one destroyed" : ""}`);
    return;
  }
  let oldAccessor: string | undefined;
  if (old && !(layout.approle.secretIdWrapped && state.secretIdPlainHash !== keyedHash(hmacKey, old))) {
    opts.redactor.add(old);
    try {
      const r = await client.write(`auth/${mount}/role/${roleName}/secret-id/lookup`, { secret_id: old });
      const a = r.data?.secret_id_accessor;
      if (typeof a === "string") oldAccessor = a;
    } catch {
      // Looking up the old accessor is a courtesy for the log; rotation goes on without it.
    }
  }
  const res = await client.write(`auth/${mount}/role/${roleName}/secret-id`, {}, { sideEffect: true });
  const secretId = res.data?.secret_id;
  const accessor = res.data?.secret_id_accessor;
  if (typeof secretId !== "string") throw new VrError("AUTH_FAILED", `auth/${mount}/role/${roleName}/secret-id answered without a secret_id`, { exit: ExitCode.Unavailable });
  opts.redactor.add(secretId);
  // Prove it works before it replaces anything: a login with the new secret_id.
  await login({ ...s.authCtx, layout: { ...layout, approle: { ...layout.approle, secretIdWrapped: false, removeSecretIdFile: false } } }, secretId);
  state.secretIdPlainHash = keyedHash(hmacKey, secretId);
  await s.save();
  await writePrivate(secretIdFile, secretId + "\n", opts.writeFault);
  opts.log.info({ accessor }, `rotated the AppRole secret_id (new accessor ${String(accessor)})`);
  if (oldAccessor && layout.approle.revokeOldSecretId) {
    await client.write(`auth/${mount}/role/${roleName}/secret-id-accessor/destroy`, { secret_id_accessor: oldAccessor });
    opts.log.info({ accessor: oldAccessor }, `destroyed the old secret_id (accessor ${oldAccessor})`);
  } else if (layout.approle.revokeOldSecretId) {
    opts.log.warn(`could not look up the old secret_id's accessor (the policy needs "update" on auth/${mount}/role/${roleName}/secret-id/lookup): it was NOT destroyed and stays valid until its own TTL`);
  } else if (oldAccessor) {
    opts.log.warn(
      { accessor: oldAccessor },
      `the old secret_id stays valid until its own TTL; to revoke it now: vault write auth/${mount}/role/${roleName}/secret-id-accessor/destroy secret_id_accessor=${oldAccessor}`,
    );
  }
}

export async function runRotate(opts: RotateOptions): Promise<SyncResult | { exit: ExitCode }> {
  if (!opts.secretId && opts.targets.length === 0) {
    throw new VrError("USAGE", "rotate: name the outputs to rotate, or --secret-id", { exit: ExitCode.Usage });
  }
  return withRun(opts, "rotate", async (s): Promise<SyncResult | { exit: ExitCode }> => {
    if (opts.secretId) await rotateSecretId(s);
    if (opts.targets.length === 0) return { exit: ExitCode.Ok };
    const p = await plan(s, opts.targets);
    if (opts.dryRun) {
      for (const l of p.lines) opts.print(l);
      return { exit: ExitCode.Ok };
    }
    for (const [name, spec] of p.generators) await rotateKv(s, name, spec);
    return syncPass(s, p.forces);
  });
}
