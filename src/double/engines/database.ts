/** The database secrets engine: leased dynamic credentials from `<mount>/creds/<role>`. */
import { newLease } from "../model/leases.js";
import { DEFAULT_LEASE_TTL, SYSTEM_MAX_TTL } from "../model/types.js";
import type { Mount, TokenEntry } from "../model/types.js";
import { ME_UNSUPPORTED_OP, ME_UNSUPPORTED_PATH, NOT_FOUND, err, ok } from "../result.js";
import type { Ctx, Result } from "../result.js";
import type { State } from "../state.js";
import { randomBase62 } from "../util.js";

export function database(s: State, ctx: Ctx, m: Mount, rest: string): Result {
  const mm = /^creds\/([^/]+)\/?$/.exec(rest);
  if (!mm) {
    if (/^roles\/?$/.test(rest) && ctx.op === "list") {
      const keys = [...(m.dbRoles?.keys() ?? [])].sort();
      return keys.length ? ok({ data: { keys }, mountType: "database" }) : NOT_FOUND;
    }
    return err(404, ME_UNSUPPORTED_PATH);
  }
  if (ctx.op !== "read") return err(405, ME_UNSUPPORTED_OP);
  const roleName = mm[1] as string;
  const role = m.dbRoles?.get(roleName);
  if (!role) return err(400, `unknown role: ${roleName}`);
  const tok = ctx.token as TokenEntry;
  const issued = Math.floor(s.clock.now() / 1000);
  const username = `v-${tok.displayName.slice(0, 8)}-${roleName.slice(0, 8)}-${randomBase62(20)}-${issued}`;
  const pw = randomBase62(20).split("");
  pw[Math.floor(pw.length / 2)] = "-";
  const password = pw.join("");
  const id = `${m.path}creds/${roleName}/${randomBase62(24)}`;
  const maxTtl = role.maxTtl > 0 ? Math.min(role.maxTtl, SYSTEM_MAX_TTL) : SYSTEM_MAX_TTL;
  const ttl = Math.min(role.defaultTtl > 0 ? role.defaultTtl : DEFAULT_LEASE_TTL, maxTtl);
  newLease(s, id, ttl, maxTtl, role.renewable, { username, password }, tok);
  return ok({ leaseId: id, renewable: role.renewable, leaseDuration: ttl, data: { password, username }, mountType: "database" });
}
