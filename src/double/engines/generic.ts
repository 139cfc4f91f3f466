/** Generic paths: `setGeneric` fixtures, cubbyhole and identity mounts. */
import type { GenericEntry, Mount } from "../model/types.js";
import { ME_UNSUPPORTED_OP, NOT_FOUND, NO_CONTENT, err, ok } from "../result.js";
import type { Ctx, Result } from "../result.js";
import type { State } from "../state.js";
import { clone, listKeys, trimSlashes } from "../util.js";

export function genericOp(s: State, ctx: Ctx, p: string, g: GenericEntry, mount: Mount | undefined): Result {
  const mountType = g.opts.mountType ?? mount?.type ?? p.split("/", 1)[0] ?? p;
  switch (ctx.op) {
    case "read":
    case "write":
      if (ctx.op === "write" && mount?.kind === "cubbyhole") {
        if (Object.keys(ctx.body).length === 0) return err(400, "missing data fields");
        g.data = clone(ctx.body);
        return NO_CONTENT;
      }
      return ok({
        leaseId: g.opts.leaseId ?? "",
        renewable: g.opts.renewable ?? false,
        leaseDuration: g.opts.leaseDuration ?? 0,
        data: clone(g.data),
        warnings: g.opts.warnings ? [...g.opts.warnings] : null,
        mountType,
      });
    case "delete":
      s.generic.delete(p);
      return NO_CONTENT;
    default:
      return err(405, ME_UNSUPPORTED_OP);
  }
}

/** Paths on a generic/cubbyhole mount that have no fixture. */
export function genericMount(s: State, ctx: Ctx, m: Mount, rest: string): Result {
  const { op } = ctx;
  if (op === "list") {
    const keys = listKeys([...s.generic.keys()].filter((k) => `${k}/`.startsWith(m.path)).map((k) => k.slice(m.path.length)), rest);
    return keys.length ? ok({ data: { keys }, mountType: m.type }) : NOT_FOUND;
  }
  if (op === "write" && m.kind === "cubbyhole") {
    if (Object.keys(ctx.body).length === 0) return err(400, "missing data fields");
    s.generic.set(trimSlashes(ctx.path), { data: clone(ctx.body), opts: {} });
    return NO_CONTENT;
  }
  if (op === "delete") return NO_CONTENT;
  if (op === "read") return NOT_FOUND;
  return err(405, ME_UNSUPPORTED_OP);
}
