/**
 * public/ and agent-only/ must not overlap once symlinks are resolved: agent-only/ reached
 * through a link into public/ would put the token where consumers read. Checked at layout load
 * for every command (the lexical check in load.ts cannot see links).
 */
import { realpath } from "node:fs/promises";
import path from "node:path";
import { ExitCode, VrError } from "../support/errors.js";

/** The real path of `p`: its nearest existing ancestor resolved, the rest appended. */
async function resolveExisting(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = p;
  for (;;) {
    try {
      return path.join(await realpath(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return p;
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

export async function checkTreesSeparate(layoutFile: string, publicDir: string, agentDir: string): Promise<void> {
  const [pub, agent] = await Promise.all([resolveExisting(publicDir), resolveExisting(agentDir)]);
  const inside = (a: string, b: string) => a === b || a.startsWith(b.endsWith(path.sep) ? b : b + path.sep);
  if (inside(pub, agent) || inside(agent, pub)) {
    const shown = (given: string, real: string) => (given === real ? given : `${given} -> ${real}`);
    throw new VrError("LAYOUT_INVALID", `${layoutFile}: $.paths: public/ (${shown(publicDir, pub)}) and agent-only/ (${shown(agentDir, agent)}) overlap once symlinks are resolved`, {
      hint: "agent-only/ holds the token: keep it outside public/ (and public/ outside it), without links between them",
      exit: ExitCode.Usage,
    });
  }
}
