/**
 * `vault-render init [dir]`: the tree a layout needs, with the modes sync expects (public/ 0755,
 * agent-only/ and its approle/ 0700, AppRole files 0600), a starter layout whose `$schema` resolves
 * to the schema file written beside it, the policy `vault-render policy` derives for that layout,
 * and the `vault` CLI commands that create the AppRole and fill agent-only/approle/.
 *
 * Idempotent: what exists is kept (a layout or an AppRole file is never overwritten); a directory
 * init owns with an unsafe mode is fixed (agent-only/ and approle/ to 0700, a group/world-writable
 * public/ to 0755), a readable AppRole file tightened to 0600, and each is reported. An existing
 * layout is loaded and its paths, mount and role are used. Secrets are never printed: only names.
 */
import { errnoOf, errnoText, readErrorStep } from "../support/errno.js";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ExitCode, VrError } from "../support/errors.js";
import type { Env, ResolvedLayout } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import { layoutJsonSchema } from "../layout/schema.js";
import { runPolicy } from "../policy/policy.js";
import { atomicWrite, DIR_MODE, FILE_MODE, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "../fs/writer.js";
import { createNew, ensureDir, ensureParents, kindAt, setDirMode } from "../fs/create.js";
import { setPrivateMode } from "../fs/private.js";

const LAYOUT_NAME = "vault-layout.json";
const SCHEMA_NAME = "vault-layout.schema.json";
const DEFAULT_ROLE = "vault-render";

/** The AppRole's settings the printed `vault write auth/<mount>/role/<role>` uses. */
const ROLE_SETTINGS = { tokenTtl: "1h", tokenMaxTtl: "24h", secretIdTtl: "720h", wrapTtl: "24h" } as const;

export interface InitOptions {
  /** The tree's directory (absolute or relative to the working directory). */
  dir: string;
  env: Env;
  role?: string | undefined;
  /** AppRole auth mount (default "approle"). */
  mount?: string | undefined;
  /** KV v2 mount of the starter source (default "secret"). */
  kvMount?: string | undefined;
  vaultAddr?: string | undefined;
  /** Files to copy into agent-only/approle/ (never over an existing one). */
  roleIdFile?: string | undefined;
  secretIdFile?: string | undefined;
  /** The secret_id is a plain one, not a response-wrapping token (secretIdWrapped: false). */
  plainSecretId?: boolean | undefined;
}

interface InitEntry {
  /** Relative to the tree's directory; directories end in "/". */
  path: string;
  mode: string;
}

interface InitFix extends InitEntry {
  from: string;
}

interface InitCommand {
  purpose: string;
  command: string;
}

export interface InitResult {
  /** The --json document's version. */
  version: 1;
  dir: string;
  layout: string;
  /** True when the layout was there before (then its paths, mount and role were used). */
  layoutKept: boolean;
  role: string;
  mount: string;
  kvMount: string | null;
  secretIdWrapped: boolean;
  created: InitEntry[];
  kept: InitEntry[];
  fixed: InitFix[];
  /** Files init owns that it replaced because their bytes were stale (the schema file). */
  updated: InitEntry[];
  changed: boolean;
  policy: string;
  commands: InitCommand[];
  warnings: string[];
}

const octal = (m: number) => m.toString(8).padStart(4, "0");
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const MOUNT = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

/** A role name from the directory's name (Vault lowercases policy names), or "vault-render". */
function roleFromDir(dir: string): string {
  const base = path
    .basename(path.resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, 128);
  return base && NAME.test(base) ? base : DEFAULT_ROLE;
}

function usage(message: string, hint?: string): VrError {
  return new VrError("USAGE", message, { exit: ExitCode.Usage, ...(hint ? { hint } : {}) });
}

/** A word for the shell: as it is when plain, else single-quoted. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function starterLayout(o: { role: string; mount: string; kvMount: string; vaultAddr?: string | undefined; wrapped: boolean }): Record<string, unknown> {
  return {
    $schema: `./${SCHEMA_NAME}`,
    version: 1,
    ...(o.vaultAddr ? { vault: { address: o.vaultAddr } } : {}),
    auth: {
      approle: {
        mount: o.mount,
        roleIdFile: "approle/role_id",
        secretIdFile: "approle/secret_id",
        secretIdWrapped: o.wrapped,
        roleName: o.role,
      },
    },
    paths: { public: "public", agentOnly: "agent-only" },
    sources: { app: { type: "kv", mount: o.kvMount, path: `${o.role}/app`, kvVersion: 2 } },
    outputs: [{ file: "app/app.env", format: "env", from: ["app"] }],
  };
}

class Recorder {
  created: InitEntry[] = [];
  kept: InitEntry[] = [];
  fixed: InitFix[] = [];
  updated: InitEntry[] = [];
  warnings: string[] = [];
  constructor(readonly root: string) {}
  rel(p: string, isDir: boolean): string {
    const r = path.relative(this.root, p) || ".";
    return isDir ? `${r}/` : r;
  }
}

function fsError(e: unknown, what: string): VrError {
  const code = (e as NodeJS.ErrnoException).code ?? "error";
  const why: Record<string, string> = {
    EACCES: "permission denied: run as the user that will run vault-render, or fix the parent's owner",
    EPERM: "operation not permitted: the file belongs to another user",
    ENOTDIR: "a file stands where a directory belongs: move it away",
    EROFS: "read-only file system: choose a writable directory",
    ENOSPC: "no space left on the device",
  };
  return new VrError("PATHS", `init: cannot create ${what}: ${code}`, { hint: why[code] ?? "check the path and its parent directory", exit: ExitCode.Environment });
}

/**
 * A directory init owns: created with `mode`, or its mode fixed when `unsafe(mode)` says so. A
 * symlink is refused: init does not follow one into a place it did not choose.
 */
async function ownDir(rec: Recorder, dir: string, mode: number, unsafe: (m: number) => boolean): Promise<void> {
  const rel = rec.rel(dir, true);
  const at = await kindAt(dir).catch((e: unknown) => {
    throw fsError(e, rel);
  });
  if (at?.kind === "symlink" || (at && at.kind !== "dir")) {
    throw new VrError("PATHS", `init: ${rel} exists and is ${at.kind === "symlink" ? "a symlink" : "not a directory"}`, {
      hint: "move it away (init creates a real directory there) or point the layout's paths elsewhere",
      exit: ExitCode.Environment,
    });
  }
  try {
    const r = await ensureDir(dir, mode);
    if (r.state === "created") rec.created.push({ path: rel, mode: octal(mode) });
    else if (unsafe(r.mode)) {
      await setDirMode(dir, mode);
      rec.fixed.push({ path: rel, mode: octal(mode), from: octal(r.mode) });
    } else rec.kept.push({ path: rel, mode: octal(r.mode) });
  } catch (e) {
    throw fsError(e, rel);
  }
}

/** An AppRole file: copied from `from` when given and absent, tightened to 0600 when it exists and is readable by others. */
async function ownSecretFile(rec: Recorder, file: string, from: string | undefined, flag: string): Promise<boolean> {
  const rel = rec.rel(file, false);
  let bytes: Buffer | undefined;
  if (from !== undefined) {
    try {
      bytes = await readFile(from);
    } catch (e) {
      const code = errnoOf(e);
      const step = code === "EISDIR" ? `${flag} must name a file, not its directory` : code === "ENOENT" ? undefined : readErrorStep(code);
      throw usage(`init: cannot read ${flag} ${from}: ${errnoText(e)}`, step ?? "check the path and that this user can read it");
    }
    if (bytes.toString("utf8").trim() === "") throw usage(`init: ${flag} ${from} is empty`);
  }
  const at = await kindAt(file);
  if (at) {
    if (at.kind !== "file") throw new VrError("PATHS", `init: ${rel} exists and is not a regular file`, { hint: "move it away", exit: ExitCode.Environment });
    if ((at.mode & 0o077) !== 0) {
      if (!(await setPrivateMode(file, PRIVATE_FILE_MODE))) throw new VrError("PATHS", `init: cannot set ${rel} to 0600`, { exit: ExitCode.Environment });
      rec.fixed.push({ path: rel, mode: octal(PRIVATE_FILE_MODE), from: octal(at.mode) });
    } else rec.kept.push({ path: rel, mode: octal(at.mode) });
    if (bytes !== undefined) {
      const current = await readFile(file).catch(() => null);
      if (current === null || !current.equals(bytes)) rec.warnings.push(`${rel} exists and differs from ${flag}: kept, not overwritten (remove it first to replace it)`);
    }
    return true;
  }
  if (bytes === undefined) return false;
  try {
    if (await createNew(file, bytes, PRIVATE_FILE_MODE)) rec.created.push({ path: rel, mode: octal(PRIVATE_FILE_MODE) });
  } catch (e) {
    throw fsError(e, rel);
  }
  return true;
}

function commandsFor(o: {
  layout: ResolvedLayout;
  layoutFile: string;
  role: string;
  policy: string;
  starterKv: string | null;
  haveRoleId: boolean;
  haveSecretId: boolean;
}): InitCommand[] {
  const { mount, roleIdFile, secretIdFile, secretIdWrapped } = o.layout.approle;
  const role = o.role;
  const base = `auth/${mount}/role/${role}`;
  const q = shellWord;
  const cmds: InitCommand[] = [
    { purpose: `enable AppRole auth at ${mount}/ (once per Vault; skip it when \`vault auth list\` shows ${mount}/)`, command: `vault auth enable -path=${q(mount)} approle` },
  ];
  if (o.starterKv !== null) {
    cmds.push({ purpose: `enable a KV v2 engine at ${o.starterKv}/ (skip it when \`vault secrets list\` shows ${o.starterKv}/)`, command: `vault secrets enable -path=${q(o.starterKv)} -version=2 kv` });
  }
  cmds.push({ purpose: `load the policy above as "${role}"`, command: `vault policy write ${q(role)} - <<'EOF'\n${o.policy}EOF` });
  cmds.push({
    purpose: `create the AppRole "${role}" with that policy (${ROLE_SETTINGS.tokenTtl} tokens renewed up to ${ROLE_SETTINGS.tokenMaxTtl}, secret_ids valid ${ROLE_SETTINGS.secretIdTtl}: renew with \`vault-render rotate --secret-id\`)`,
    command: `vault write ${q(base)} token_policies=${q(role)} token_ttl=${ROLE_SETTINGS.tokenTtl} token_max_ttl=${ROLE_SETTINGS.tokenMaxTtl} secret_id_ttl=${ROLE_SETTINGS.secretIdTtl} secret_id_num_uses=0`,
  });
  if (!o.haveRoleId) {
    cmds.push({ purpose: "fetch the role_id into agent-only/ (0600)", command: `(umask 077 && vault read -field=role_id ${q(`${base}/role-id`)} > ${q(roleIdFile)})` });
  }
  if (!o.haveSecretId) {
    cmds.push(
      secretIdWrapped
        ? {
            purpose: `fetch a response-wrapped secret_id (the first sync unwraps it; run it within ${ROLE_SETTINGS.wrapTtl})`,
            command: `(umask 077 && vault write -f -wrap-ttl=${ROLE_SETTINGS.wrapTtl} -field=wrapping_token ${q(`${base}/secret-id`)} > ${q(secretIdFile)})`,
          }
        : { purpose: "fetch a secret_id (secretIdWrapped is false in the layout)", command: `(umask 077 && vault write -f -field=secret_id ${q(`${base}/secret-id`)} > ${q(secretIdFile)})` },
    );
  }
  if (o.starterKv !== null) {
    cmds.push({ purpose: `a first secret for the starter output public/app/app.env (replace it with yours)`, command: `vault kv put -mount=${q(o.starterKv)} ${q(`${role}/app`)} GREETING=hello` });
  }
  cmds.push({ purpose: "render the files", command: `vault-render --layout ${q(o.layoutFile)} sync` });
  return cmds;
}

export async function runInit(opts: InitOptions): Promise<InitResult> {
  const root = path.resolve(opts.dir);
  const mountOpt = opts.mount ?? "approle";
  const kvOpt = opts.kvMount ?? "secret";
  if (opts.role !== undefined && !NAME.test(opts.role)) throw usage(`init: --role "${opts.role}" is not an AppRole name (letters, digits, _ . -, at most 128)`);
  if (!MOUNT.test(mountOpt)) throw usage(`init: --mount "${mountOpt}" is not a mount path (no leading or trailing /)`);
  if (!MOUNT.test(kvOpt)) throw usage(`init: --kv-mount "${kvOpt}" is not a mount path (no leading or trailing /)`);
  if (opts.vaultAddr !== undefined && !/^https?:\/\/[^\s/]+/.test(opts.vaultAddr)) throw usage(`init: --vault-addr "${opts.vaultAddr}" is not an http(s) address`, 'e.g. "https://vault.home.arpa:8200"');
  const roleOpt = opts.role ?? roleFromDir(root);
  const rec = new Recorder(root);

  const rootAt = await kindAt(root).catch(() => null);
  if (rootAt && rootAt.kind !== "dir" && rootAt.kind !== "symlink") throw new VrError("PATHS", `init: ${root} exists and is not a directory`, { exit: ExitCode.Environment });
  if (!rootAt) {
    // 0700, as docs/operations.md advises: public/ files are 0644, so only the root keeps other
    // local users out (Docker, as root, still bind-mounts public/).
    try {
      await ensureParents(root);
      await ensureDir(root, PRIVATE_DIR_MODE);
      rec.created.push({ path: "./", mode: octal(PRIVATE_DIR_MODE) });
    } catch (e) {
      throw fsError(e, root);
    }
  } else if (rootAt.kind === "dir" && (rootAt.mode & 0o005) !== 0) {
    rec.warnings.push(`${root} is ${octal(rootAt.mode)}: other local users can read the 0644 files in public/; consider \`chmod 700 ${shellWord(root)}\` (Docker still bind-mounts it)`);
  }

  // The schema file: init's own, rewritten when its bytes are stale (an older vault-render wrote it).
  const schemaFile = path.join(root, SCHEMA_NAME);
  const schemaText = JSON.stringify(layoutJsonSchema(), null, 2) + "\n";
  try {
    if (await createNew(schemaFile, schemaText, FILE_MODE)) rec.created.push({ path: SCHEMA_NAME, mode: octal(FILE_MODE) });
    else {
      const current = await readFile(schemaFile, "utf8").catch(() => null);
      if (current === schemaText) rec.kept.push({ path: SCHEMA_NAME, mode: octal(((await kindAt(schemaFile))?.mode ?? FILE_MODE) & 0o7777) });
      else {
        await atomicWrite(schemaFile, Buffer.from(schemaText), FILE_MODE);
        rec.updated.push({ path: SCHEMA_NAME, mode: octal(FILE_MODE) });
      }
    }
  } catch (e) {
    throw fsError(e, SCHEMA_NAME);
  }

  // The layout: never overwritten; an existing one is loaded (exit 2 with its issues when invalid).
  const layoutFile = path.join(root, LAYOUT_NAME);
  const wrapped = !opts.plainSecretId;
  const starter = starterLayout({ role: roleOpt, mount: mountOpt, kvMount: kvOpt, vaultAddr: opts.vaultAddr, wrapped });
  let layoutKept: boolean;
  try {
    layoutKept = !(await createNew(layoutFile, JSON.stringify(starter, null, 2) + "\n", FILE_MODE));
  } catch (e) {
    throw fsError(e, LAYOUT_NAME);
  }
  if (layoutKept) rec.kept.push({ path: LAYOUT_NAME, mode: octal(((await kindAt(layoutFile))?.mode ?? FILE_MODE) & 0o7777) });
  else rec.created.push({ path: LAYOUT_NAME, mode: octal(FILE_MODE) });
  const layout = await loadLayout(layoutFile, opts.env);
  if (layoutKept) {
    const given = (["role", "mount", "kvMount", "vaultAddr"] as const).filter((k) => opts[k] !== undefined);
    if (given.length) rec.warnings.push(`${LAYOUT_NAME} exists: kept as it is, so ${given.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(", ")} only shaped the commands below`);
  }

  // The tree, as the layout names it.
  await ownDir(rec, layout.publicDir, DIR_MODE, (m) => (m & 0o022) !== 0 || (m & 0o700) !== 0o700);
  await ownDir(rec, layout.agentDir, PRIVATE_DIR_MODE, (m) => m !== PRIVATE_DIR_MODE);
  const { roleIdFile, secretIdFile } = layout.approle;
  for (const d of new Set([path.dirname(roleIdFile), path.dirname(secretIdFile)])) {
    if (d !== layout.agentDir && d.startsWith(layout.agentDir + path.sep)) await ownDir(rec, d, PRIVATE_DIR_MODE, (m) => m !== PRIVATE_DIR_MODE);
  }
  const haveRoleId = await ownSecretFile(rec, roleIdFile, opts.roleIdFile, "--role-id-file");
  const haveSecretId = await ownSecretFile(rec, secretIdFile, opts.secretIdFile, "--secret-id-file");
  if (opts.secretIdFile !== undefined && !layoutKept && wrapped) {
    rec.warnings.push("--secret-id-file was copied and the layout expects a wrapping token (secretIdWrapped: true); pass --plain-secret-id for a plain secret_id");
  }

  const { text: policy } = await runPolicy({ layoutFile, env: opts.env, format: "hcl" });
  const role = layout.approle.roleName ?? roleOpt;
  const starterKv = layoutKept ? null : kvOpt;
  const commands = commandsFor({ layout, layoutFile, role, policy, starterKv, haveRoleId, haveSecretId });
  return {
    version: 1,
    dir: root,
    layout: layoutFile,
    layoutKept,
    role,
    mount: layout.approle.mount,
    kvMount: starterKv,
    secretIdWrapped: layout.approle.secretIdWrapped,
    created: rec.created,
    kept: rec.kept,
    fixed: rec.fixed,
    updated: rec.updated,
    changed: rec.created.length + rec.fixed.length + rec.updated.length > 0,
    policy,
    commands,
    warnings: rec.warnings,
  };
}

/** The human report: what changed (or that nothing did), the policy, the commands. */
export function renderInit(r: InitResult): string {
  const out: string[] = [];
  for (const e of r.created) out.push(`created ${e.path} (${e.mode})`);
  for (const e of r.updated) out.push(`updated ${e.path} (${e.mode}, stale schema)`);
  for (const e of r.fixed) out.push(`fixed   ${e.path}: mode ${e.from} -> ${e.mode}`);
  for (const e of r.kept) out.push(`kept    ${e.path} (${e.mode})`);
  out.push(r.changed ? `init: ${r.dir} is ready` : `init: nothing changed: ${r.dir} is already set up`);
  out.push("", `# The policy for ${path.basename(r.layout)} (what \`vault-render policy\` prints):`, r.policy.trimEnd(), "");
  out.push("# Run these with a Vault admin token (VAULT_ADDR and VAULT_TOKEN set):", "");
  for (const c of r.commands) out.push(`# ${c.purpose}`, c.command, "");
  return out.join("\n");
}
