/**
 * Token lifecycle. Reuse the cached token (lookup-self); renew it when renewable and past half
 * its TTL; log in with AppRole only when the token is missing, invalid, or near its max TTL.
 * The token lifecycle is separate from every secret's: a new token never re-fetches or re-issues.
 */
import { readErrorText } from "../support/errno.js";
import path from "node:path";
import { ExitCode, VrError } from "../support/errors.js";
import type { ResolvedLayout } from "../layout/load.js";
import type { Logger } from "../support/log.js";
import type { Redactor } from "../support/redact.js";
import type { State } from "../state/state.js";
import { keyedHash } from "../state/state.js";
import type { VaultClient } from "./client.js";
import { VaultRequestError } from "./client.js";
import { readPrivate, writePrivate } from "../fs/writer.js";
import { removePrivateFile } from "../fs/private.js";

export interface AuthContext {
  layout: ResolvedLayout;
  client: VaultClient;
  log: Logger;
  redactor: Redactor;
  state: State;
  hmacKey: Buffer;
  /** Persist state now (used when the unwrapped secret_id must not be lost). */
  saveState: () => Promise<void>;
  /** `check`: verify only — never write the token, never unwrap (which would consume the wrapping token). */
  readOnly?: boolean;
  /** The run's clock (ms), for the token's expiry and max-TTL horizon; default Date.now. */
  now?: () => number;
}

export interface AuthResult {
  token: string;
  via: "cached" | "renewed" | "login";
  ttl: number;
  /** What this run learned about the token's life (token-horizon.ts records it in state). */
  facts?: TokenFacts;
}

/** A token's life as Vault reported it: the leases it creates die with it. */
interface TokenFacts {
  /** "" for batch tokens */
  accessor: string;
  /** ms; the run's clock */
  issuedAt: number;
  /** ms; null when the token never expires */
  expiresAt: number | null;
  /** seconds; 0 = not periodic, or not known yet (a login does not say) */
  period: number;
  /** the token's max-TTL horizon (ms) when this run saw it: an explicit max TTL, or a renewal Vault capped */
  maxExpiresAt: number | null;
  /** the max TTL (seconds) this run learned (also for a token replaced by a new login in the same run) */
  maxTtl?: number;
}

function tokenFile(layout: ResolvedLayout): string {
  return path.join(layout.agentDir, "token");
}

async function readSecretFile(file: string, what: string, redactor: Redactor): Promise<string> {
  let buf: Buffer | null;
  try {
    buf = await readPrivate(file);
  } catch (e) {
    throw new VrError("AUTH_FILES", `cannot read the ${what} file ${file}: ${readErrorText(e, what === "secret_id" ? "auth.approle.secretIdFile" : "auth.approle.roleIdFile")}`, {
      exit: ExitCode.Unavailable,
      cause: e,
    });
  }
  if (!buf) {
    throw new VrError("AUTH_FILES", `the ${what} file ${file} does not exist`, {
      hint: what === "secret_id" ? "write a new secret_id there (vault write -f auth/approle/role/<role>/secret-id)" : "write the AppRole role_id there",
      exit: ExitCode.Unavailable,
    });
  }
  const v = buf.toString("utf8").trim();
  if (!v) throw new VrError("AUTH_FILES", `the ${what} file ${file} is empty`, { exit: ExitCode.Unavailable });
  redactor.add(v);
  return v;
}

/**
 * What to log in with. `probe`: the file holds neither the plain secret_id recorded in state nor a
 * live wrapping token; it may be a secret_id this host unwrapped earlier (state.json lost) or a
 * used wrapping token, and only a login can tell which.
 */
interface SecretIdChoice {
  value: string;
  probe?: boolean;
}

function interception(file: string): VrError {
  return new VrError("WRAPPING", `the secret_id file ${file} holds a wrapping token that is not valid, expired or already used (nor does it log in as a plain secret_id)`, {
    hint: "a used wrapping token may mean someone intercepted it (or an unwrap's answer was lost): investigate, then put a fresh wrapped secret_id there",
    exit: ExitCode.Unavailable,
  });
}

/**
 * The secret_id to log in with; unwraps a response-wrapped one (checking where it was created).
 * Plain or wrapping token is decided by what Vault says, not only by state.json: a value that
 * `sys/wrapping/lookup` does not know is tried as a plain secret_id (see `login`).
 */
async function resolveSecretId(ctx: AuthContext): Promise<SecretIdChoice> {
  const { layout, client, state, hmacKey, redactor, log } = ctx;
  const file = layout.approle.secretIdFile;
  const content = await readSecretFile(file, "secret_id", redactor);
  if (!layout.approle.secretIdWrapped) return { value: content };
  if (state.secretIdPlainHash && keyedHash(hmacKey, content) === state.secretIdPlainHash) return { value: content };

  // The lookup consumes nothing (check may do it too).
  let creationPath: string | undefined;
  try {
    const res = await client.write("sys/wrapping/lookup", { token: content }, { noRetry: false });
    creationPath = typeof res.data?.creation_path === "string" ? res.data.creation_path : undefined;
  } catch (e) {
    // 400 "wrapping token is not valid or does not exist": not a live wrapping token.
    if (e instanceof VaultRequestError && e.status === 400) return { value: content, probe: true };
    if (e instanceof VaultRequestError && !e.unavailable) {
      throw new VrError("WRAPPING", `cannot look up the wrapping token in ${file}: ${e.message}`, { exit: ExitCode.Unavailable });
    }
    throw e;
  }
  const expected = new RegExp(`^auth/${layout.approle.mount.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/role/[^/]+/secret-id$`);
  if (!creationPath || !expected.test(creationPath)) {
    throw new VrError("WRAPPING", `the wrapping token in ${file} was created at "${creationPath ?? "?"}", not at auth/${layout.approle.mount}/role/<role>/secret-id: refusing to unwrap it`, {
      hint: "only unwrap tokens that wrap an AppRole secret_id; someone may have substituted it",
      exit: ExitCode.Unavailable,
    });
  }
  if (ctx.readOnly) {
    throw new VrError("WRAPPING", `the secret_id file ${file} still holds a wrapping token; a sync unwraps it (check never does: unwrapping consumes it)`, { exit: ExitCode.Unavailable });
  }
  const res = await client.unwrap(content);
  const secretId = res.data?.secret_id;
  if (typeof secretId !== "string" || !secretId) {
    throw new VrError("WRAPPING", `the wrapping token in ${file} did not contain a secret_id`, { exit: ExitCode.Unavailable });
  }
  redactor.add(secretId);
  // Record the plain secret_id's hash before replacing the file, so a crash in between never
  // makes us treat the plain secret_id as a (used) wrapping token.
  state.secretIdPlainHash = keyedHash(hmacKey, secretId);
  await ctx.saveState();
  // The unwrapped secret_id replaces the (now used) wrapping token before the login, with
  // removeSecretIdFile too (which deletes the file only after a login succeeded): a login that
  // fails right after the unwrap never loses the secret_id.
  await writePrivate(file, secretId + "\n");
  log.info({ file: path.basename(file) }, "unwrapped the response-wrapped secret_id");
  return { value: secretId };
}

/** AppRole login; `secretIdOverride` proves a freshly generated secret_id (rotate --secret-id). */
export async function login(ctx: AuthContext, secretIdOverride?: string): Promise<AuthResult> {
  const { layout, client, redactor, log } = ctx;
  const roleId = await readSecretFile(layout.approle.roleIdFile, "role_id", redactor);
  const secretId: SecretIdChoice = secretIdOverride !== undefined ? { value: secretIdOverride } : await resolveSecretId(ctx);
  let res;
  try {
    // A login burns a use of a secret_id with secret_id_num_uses: never replayed once it may have reached Vault.
    res = await client.approleLogin(layout.approle.mount, roleId, secretId.value);
  } catch (e) {
    if (e instanceof VaultRequestError && !e.unavailable) {
      if (secretId.probe && e.status === 400) throw interception(layout.approle.secretIdFile);
      const msg = e.status === 400 ? "AppRole login failed: invalid role_id or secret_id (wrong, expired, or out of uses)" : `AppRole login failed: ${e.message}`;
      throw new VrError("AUTH_FAILED", msg, {
        hint: "issue a new secret_id (vault write -f auth/approle/role/<role>/secret-id) into agent-only/, or run vault-render rotate --secret-id while the token is still valid",
        exit: ExitCode.Unavailable,
      });
    }
    throw e;
  }
  const auth = res.auth;
  if (!auth || typeof auth.client_token !== "string") {
    throw new VrError("AUTH_FAILED", "AppRole login answered without a token", { exit: ExitCode.Unavailable });
  }
  redactor.add(auth.client_token);
  client.setToken(auth.client_token);
  const now = (ctx.now ?? Date.now)();
  const ttlSec = Number(auth.lease_duration ?? 0);
  const facts: TokenFacts = { accessor: typeof auth.accessor === "string" ? auth.accessor : "", issuedAt: now, expiresAt: ttlSec > 0 ? now + ttlSec * 1000 : null, period: 0, maxExpiresAt: null };
  if (ctx.readOnly) return { token: auth.client_token, via: "login", ttl: auth.lease_duration, facts };
  if (secretId.probe) {
    // It logged in, so it is a secret_id unwrapped by an earlier run whose record was lost.
    ctx.state.secretIdPlainHash = keyedHash(ctx.hmacKey, secretId.value);
    await ctx.saveState();
    log.info({ file: path.basename(layout.approle.secretIdFile) }, "the secret_id file holds an already unwrapped secret_id (its record in state was missing)");
  }
  await writePrivate(tokenFile(layout), auth.client_token + "\n");
  if (layout.approle.removeSecretIdFile) {
    await removePrivateFile(layout.approle.secretIdFile);
  }
  log.info({ ttl: auth.lease_duration, renewable: auth.renewable }, "logged in with AppRole");
  return { token: auth.client_token, via: "login", ttl: auth.lease_duration, facts };
}

/**
 * Make the client carry a usable token. Vault being down is an error (exit 3); an invalid
 * cached token leads to a login.
 */
export async function authenticate(ctx: AuthContext): Promise<AuthResult> {
  const { layout, client, redactor, log } = ctx;
  const cached = (await readPrivate(tokenFile(layout)))?.toString("utf8").trim();
  if (!cached) return login(ctx);
  redactor.add(cached);
  client.setToken(cached);
  let info: Record<string, unknown>;
  try {
    const res = await client.tokenLookupSelf();
    info = res.data ?? {};
  } catch (e) {
    // lookup-self is granted to every valid token by the default policy: any 403 means the token is gone.
    if (e instanceof VaultRequestError && (e.kind === "invalid-token" || e.kind === "permission")) {
      // A valid token without a policy for lookup-self gets Vault's multierror denial; an invalid
      // one gets "invalid token" (or, on older servers, a bare "permission denied").
      const errors = (e.body as { errors?: unknown[] } | undefined)?.errors;
      if (e.kind === "permission" && typeof errors?.[0] === "string" && errors[0].startsWith("1 error occurred")) {
        log.warn(`${e.message}: the policy lacks "read" on auth/token/lookup-self (Vault's default policy has it), so every run logs in again`);
      } else {
        log.info("cached token is no longer valid; logging in");
      }
      return login(ctx);
    }
    throw e;
  }
  const ttl = Number(info.ttl ?? 0);
  const creationTtl = Number(info.creation_ttl ?? 0);
  const renewable = info.renewable === true;
  const now = (ctx.now ?? Date.now)();
  const explicitMax = Number(info.explicit_max_ttl ?? 0);
  const issuedAt = typeof info.creation_time === "number" ? info.creation_time * 1000 : now;
  const facts: TokenFacts = {
    accessor: typeof info.accessor === "string" ? info.accessor : "",
    issuedAt,
    expiresAt: ttl === 0 && info.expire_time == null ? null : now + ttl * 1000,
    period: Number(info.period ?? 0) || 0,
    maxExpiresAt: explicitMax > 0 ? issuedAt + explicitMax * 1000 : null,
    ...(explicitMax > 0 ? { maxTtl: explicitMax } : {}),
  };
  if (ttl === 0 && info.expire_time == null) return { token: cached, via: "cached", ttl: 0, facts };
  const reloginBelow = Math.min(300, Math.max(1, Math.floor(creationTtl / 4)));
  if (ctx.readOnly) return { token: cached, via: "cached", ttl, facts };
  if (renewable && creationTtl > 0 && ttl < creationTtl / 2) {
    try {
      const res = await client.tokenRenewSelf(creationTtl);
      const newTtl = Number(res.auth?.lease_duration ?? 0);
      log.info({ ttl: newTtl }, "renewed the cached token");
      const at = (ctx.now ?? Date.now)();
      facts.expiresAt = at + newTtl * 1000;
      // Vault caps a renewal at the token's max TTL: a shorter answer shows where that lies.
      if (newTtl < creationTtl && facts.period === 0) {
        facts.maxExpiresAt = at + newTtl * 1000;
        facts.maxTtl = Math.round((facts.maxExpiresAt - issuedAt) / 1000);
      }
      if (newTtl >= reloginBelow) return { token: cached, via: "renewed", ttl: newTtl, facts };
    } catch (e) {
      if (e instanceof VaultRequestError && e.unavailable) throw e;
      if (e instanceof VaultRequestError && e.kind === "permission") log.warn(`${e.message}; logging in again instead of renewing`);
      else log.info("renewing the cached token failed; logging in");
    }
    const fresh = await login(ctx);
    if (fresh.facts && facts.maxTtl !== undefined) fresh.facts.maxTtl = facts.maxTtl;
    return fresh;
  }
  if (ttl < reloginBelow) return login(ctx);
  return { token: cached, via: "cached", ttl, facts };
}
