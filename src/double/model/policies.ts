/** ACL policies by name, resolved on every request (editing a policy applies to live tokens at once). */
import { Acl, parsePolicy } from "../acl.js";
import type { Policy } from "../acl.js";
import type { State } from "../state.js";

export const DEFAULT_POLICY_HCL = `
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/renew" { capabilities = ["update"] }
path "sys/wrapping/wrap" { capabilities = ["update"] }
path "sys/wrapping/lookup" { capabilities = ["update"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }
`;

export function addPolicy(s: State, name: string, hcl: string): void {
  s.policies.set(name, parsePolicy(name, hcl));
  s.aclCache.clear();
}

export function aclFor(s: State, policies: string[]): Acl {
  const key = policies.join("\u0000");
  let acl = s.aclCache.get(key);
  if (!acl) {
    const pols: Policy[] = [];
    for (const n of policies) {
      const p = s.policies.get(n);
      if (p) pols.push(p);
    }
    acl = new Acl(pols);
    s.aclCache.set(key, acl);
  }
  return acl;
}
