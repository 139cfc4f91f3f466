/** Shared by the Vault client's and the transport's tests. */
import { VaultRequestError } from "./classify.js";

/** The VaultRequestError `p` rejects with; a failure when it resolves or rejects with anything else. */
export async function failure(p: Promise<unknown>): Promise<VaultRequestError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VaultRequestError) return e;
    throw e;
  }
  throw new Error("expected a failure");
}
