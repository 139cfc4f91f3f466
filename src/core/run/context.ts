/**
 * The run every command opens over a layout: the layout loaded, agent-only/ checked, the state
 * read, the client authenticated. `openRun` gives one `RunContext`, the only thing the sync
 * steps, `check` and `rotate` are handed; `withRun` is the whole sequence a writing command
 * runs in (load, lock, recovery, open, close); `relogin` is the one way a run changes its token.
 */
import type { AuthContext, AuthResult } from "../vault/auth.js";
import { authenticate, login } from "../vault/auth.js";
import { inspectAppRoleFiles, tightenAppRoleFiles, warnAppRoleFiles } from "../vault/approle-files.js";
import { VaultClient } from "../vault/client.js";
import type { CurrentToken } from "../vault/token-horizon.js";
import { recordToken } from "../vault/token-horizon.js";
import type { Clock } from "../support/clock.js";
import { ExitCode, VrError } from "../support/errors.js";
import type { Logger } from "../support/log.js";
import type { Redactor } from "../support/redact.js";
import type { Env, ResolvedLayout } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import type { State } from "../state/state.js";
import { StateStore } from "../state/state.js";
import type { WriteFault } from "../fs/writer.js";
import { PRIVATE_DIR_MODE } from "../fs/writer.js";
import { setPrivateMode, statPrivateDir } from "../fs/private.js";
import { withLock } from "./lock.js";
import { recoverInterrupted } from "./recover.js";

/** What a command that runs over a layout (sync, rotate, watch, check) is given. */
export interface RunOptions {
  layoutFile: string;
  env: Env;
  dryRun: boolean;
  lockTimeoutMs: number;
  log: Logger;
  redactor: Redactor;
  clock: Clock;
  /** Where the dry-run plan goes (stdout). */
  print: (line: string) => void;
  writeFault?: WriteFault;
  /** Leave hooks pending instead of running them. */
  noHooks?: boolean;
  /** Run every hook of the layout, changed or not. */
  runHooks?: boolean;
  /** Aborted to stop waiting for the lock (watch being stopped). */
  signal?: AbortSignal;
  /** Told what the run opens as it opens it, so a run that fails part-way can still be reported (sync --json, --metrics-file). */
  observer?: RunObserver;
}

interface RunObserver {
  layout?: (layout: ResolvedLayout) => void;
  client?: (client: VaultClient) => void;
}

/** One authenticated run over one layout (under the lock, unless it writes nothing). */
export interface RunContext {
  readonly layout: ResolvedLayout;
  readonly opts: RunOptions;
  /** Carries this run's token; closed by whoever opened the run. */
  readonly client: VaultClient;
  /** agent-only/state.json as this run changes it; `save` writes it. */
  readonly state: State;
  save(): Promise<void>;
  /** The key of the state's keyed hashes (agent-only/state.key). */
  readonly hmacKey: Buffer;
  /** What a login needs (rotate proves a new secret_id with it); `readOnly` for check and dry runs. */
  readonly authCtx: AuthContext;
  /** How the client got its token, and that token as leases record their creator: changed only by `relogin`. */
  auth: AuthResult;
  token: CurrentToken;
}

/** Check agent-only/ exists as a real directory; keep it 0700. */
export async function prepareAgentDir(layout: ResolvedLayout, log: Logger, readOnly = false): Promise<void> {
  const st = await statPrivateDir(layout.agentDir);
  if (!st) {
    throw new VrError("AGENT_DIR", `agent-only directory ${layout.agentDir} does not exist`, {
      hint: "create it (mkdir -m 700) and put the AppRole role_id and secret_id files in it",
      exit: ExitCode.Environment,
    });
  }
  if (!st.isDirectory()) {
    throw new VrError("AGENT_DIR", `agent-only path ${layout.agentDir} is not a directory; nothing was changed`, { hint: "agent-only/ must be a directory (mkdir -m 700)", exit: ExitCode.Environment });
  }
  if ((st.mode & 0o777) !== PRIVATE_DIR_MODE && readOnly) {
    log.warn({ dir: layout.agentDir }, "agent-only/ is not 0700 (a sync sets it)");
  } else if ((st.mode & 0o777) !== PRIVATE_DIR_MODE) {
    if (await setPrivateMode(layout.agentDir, PRIVATE_DIR_MODE)) log.info({ dir: layout.agentDir }, "set agent-only/ to mode 0700");
    else log.warn({ dir: layout.agentDir }, "agent-only/ is not 0700 and its mode cannot be changed");
  }
}

/** The layout of a run (read-only for dry runs), its text public for the redactor, agent-only/ prepared. */
async function loadForRun(opts: RunOptions): Promise<ResolvedLayout> {
  const layout = await loadLayout(opts.layoutFile, opts.env, opts.dryRun ? "read" : "write");
  opts.redactor.setPublicText(layout.text);
  opts.observer?.layout?.(layout);
  if (layout.vault.skipVerify && layout.vault.address.startsWith("https:")) {
    opts.log.warn({ address: layout.vault.address }, "TLS verification of Vault is DISABLED (skip-verify): anyone on the path can read the secrets");
  }
  await prepareAgentDir(layout, opts.log, opts.dryRun);
  return layout;
}

/**
 * Read the state and authenticate. `readOnly` (check, and every dry run): nothing is written to
 * agent-only/ — no token, no state.key. `loaded`: the state the caller already read (check), so a
 * damaged file is read and reported once.
 */
export async function openRun(layout: ResolvedLayout, opts: RunOptions, readOnly = opts.dryRun, loaded?: State): Promise<RunContext> {
  const store = new StateStore(layout.agentDir);
  const state = loaded ?? (await store.load({ warn: (m) => opts.log.warn(m), keepAside: !readOnly, now: opts.clock.now }));
  const hmacKey = await store.hmacKey({ create: !readOnly });
  const client = new VaultClient(layout.vault, {
    sleep: opts.clock.sleep,
    random: opts.clock.random,
    onRetry: (i) => opts.log.info({ path: i.path, attempt: i.attempt, waitMs: i.waitMs }, `${i.reason}; retry ${i.attempt} in ${i.waitMs} ms`),
    redact: (text) => opts.redactor.redact(text),
  });
  opts.observer?.client?.(client);
  const save = () => store.save(state);
  const authCtx: AuthContext = { layout, client, log: opts.log, redactor: opts.redactor, state, hmacKey, saveState: save, readOnly, now: opts.clock.now };
  // `check` reports the AppRole files itself (it writes nothing).
  const approleFiles = readOnly ? [] : await inspectAppRoleFiles(layout);
  if (!opts.dryRun) await tightenAppRoleFiles(approleFiles, opts.log);
  let auth: AuthResult;
  try {
    auth = await authenticate(authCtx);
  } catch (e) {
    client.close();
    throw e;
  }
  // A cached token hides a file the next login needs until the token's max TTL: say so now.
  if (auth.via !== "login") warnAppRoleFiles(approleFiles, opts.log);
  const token = recordToken(state, hmacKey, auth);
  return { layout, opts, client, state, save, hmacKey, authCtx, auth, token };
}

/** Log in again in the middle of a run (the token was revoked, or ends too soon); the run holds the new token. */
export async function relogin(run: RunContext): Promise<CurrentToken> {
  run.auth = await login(run.authCtx);
  run.token = recordToken(run.state, run.hmacKey, run.auth);
  return run.token;
}

/**
 * A command's run from start to end: the layout loaded, agent-only/ prepared, the lock held (not
 * for dry runs), an interrupted commit finished (not for dry runs), the run opened, `fn`, the
 * client closed.
 */
export async function withRun<T>(opts: RunOptions, command: string, fn: (run: RunContext) => Promise<T>): Promise<T> {
  const layout = await loadForRun(opts);
  return withLock(layout, opts, command, async () => {
    if (!opts.dryRun) await recoverInterrupted(layout, opts.log);
    const run = await openRun(layout, opts);
    try {
      return await fn(run);
    } finally {
      run.client.close();
    }
  });
}
