/** The repair a run makes under the lock before anything else: an interrupted certificate set commit. */
import { recoverJournal } from "../fs/journal.js";
import type { ResolvedLayout } from "../layout/load.js";
import type { Logger } from "../support/log.js";
import { StateStore } from "../state/state.js";

/**
 * Finish a certificate set commit that a crash interrupted. Runs under the lock before anything
 * talks to Vault, so a half-replaced set is repaired even while Vault is unreachable.
 */
export async function recoverInterrupted(layout: ResolvedLayout, log: Logger): Promise<void> {
  const store = new StateStore(layout.agentDir);
  const rolled = await recoverJournal(layout.agentDir, async (records) => {
    const state = await store.load({ warn: (m) => log.warn(m), keepAside: true });
    Object.assign(state.pki, records.pki ?? {});
    Object.assign(state.outputs, records.outputs ?? {});
    await store.save(state);
  });
  if (rolled) log.warn({ count: rolled }, `completed an interrupted certificate set commit (${rolled} files)`);
}
