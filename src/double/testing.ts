/** Small helpers shared by the double's own tests (node-vault against the double). */
import vault from "node-vault";
import type { VaultDouble } from "./vault-double.js";

export const PD1 = "1 error occurred:\n\t* permission denied\n\n";
export const PD2 = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n";
export const ENVELOPE_KEYS = ["request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth", "mount_type"];

export interface ApiErr {
  message: string;
  response: { statusCode: number; body: unknown };
}

/** The rejection of `p` (node-vault's ApiResponseError), or a failure when it resolves. */
export async function rejected(p: Promise<unknown>): Promise<ApiErr> {
  try {
    await p;
  } catch (e) {
    return e as ApiErr;
  }
  throw new Error("expected a rejection");
}

export function client(d: VaultDouble, token?: string): vault.client {
  return vault({ endpoint: d.url, noCustomHTTPVerbs: true, token });
}
