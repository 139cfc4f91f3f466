/** The PKI secrets engine's HTTP side: issue (real certificates, see ../pki.ts), roles list, ca/pem. */
import { goDuration, parseDurationSecond } from "../duration.js";
import { newLease } from "../model/leases.js";
import { DEFAULT_LEASE_TTL, SYSTEM_MAX_TTL } from "../model/types.js";
import type { Env, Mount, PkiRole, PkiState } from "../model/types.js";
import { exportPrivateKey, ipBytes, signLeaf } from "../pki.js";
import { ME_UNSUPPORTED_OP, ME_UNSUPPORTED_PATH, NOT_FOUND, err, ok } from "../result.js";
import type { Ctx, Result } from "../result.js";
import type { State } from "../state.js";
import { randomBase62, weakString } from "../util.js";

/** Vault's validateNames, reduced to the role options the double supports. */
function pkiNameAllowed(role: PkiRole, n: string): boolean {
  const hostname = /^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*\.?$/.test(n);
  if (!hostname) return false; // enforce_hostnames (default true)
  const name = n.toLowerCase().replace(/\.$/, "");
  if (role.allowAnyName) return true;
  if (role.allowLocalhost && (name === "localhost" || name === "localdomain")) return true;
  for (const raw of role.allowedDomains) {
    const d = raw.toLowerCase();
    if (role.allowBareDomains && name === d) return true;
    if (role.allowSubdomains && name.endsWith(`.${d}`) && name.length > d.length + 1) return true;
    if (role.allowGlobDomains && d.includes("*")) {
      const re = new RegExp(`^${d.split("*").map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
      if (re.test(name)) return true;
    }
  }
  return false;
}

export async function pki(s: State, ctx: Ctx, m: Mount, rest: string): Promise<Result> {
  const st = m.pki as PkiState;
  const { op, body } = ctx;
  const mm = /^(?:issuer\/([^/]+)\/)?issue\/([^/]+)\/?$/.exec(rest);
  if (!mm) {
    if (/^roles\/?$/.test(rest) && op === "list") {
      const keys = [...st.roles.keys()].sort();
      return keys.length ? ok({ data: { keys }, mountType: "pki" }) : NOT_FOUND;
    }
    if (rest === "ca/pem" && op === "read") return { t: "bytes", status: 200, body: `${st.ca.intermediate.pem}\n`, contentType: "application/pem-certificate-chain" };
    return err(404, ME_UNSUPPORTED_PATH);
  }
  if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
  const issuerRef = mm[1];
  if (issuerRef !== undefined && issuerRef !== "default" && issuerRef !== st.issuerId) {
    return err(400, `unable to find PKI issuer for reference: ${issuerRef}`);
  }
  const roleName = mm[2] as string;
  const role = st.roles.get(roleName);
  if (!role) return err(400, `unknown role: ${roleName}`);

  const format = weakString(body["format"]) || "pem";
  if (!["pem", "der", "pem_bundle"].includes(format)) return err(400, `the "format" path parameter must be "pem", "der", or "pem_bundle"`);
  const pkFormat = weakString(body["private_key_format"]) || "der";
  if (!["der", "pem", "pkcs8"].includes(pkFormat)) return err(400, `the "private_key_format" path parameter must be "der", "pem" or "pkcs8"`);
  const cn = weakString(body["common_name"]).trim();
  if (!cn) {
    return err(400, `the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false`);
  }
  if (!pkiNameAllowed(role, cn)) return err(400, `common name ${cn} not allowed by this role`);
  const list = (v: unknown): string[] =>
    (Array.isArray(v) ? v.map(weakString) : weakString(v).split(",")).map((x) => x.trim()).filter((x) => x !== "");
  const excludeCn = body["exclude_cn_from_sans"] === true || body["exclude_cn_from_sans"] === "true";
  const dnsNames: string[] = excludeCn ? [] : [cn];
  for (const n of list(body["alt_names"])) {
    if (!pkiNameAllowed(role, n)) return err(400, `subject alternate name ${n} not allowed by this role`);
    if (!dnsNames.includes(n)) dnsNames.push(n);
  }
  const ips: Buffer[] = [];
  for (const ip of list(body["ip_sans"])) {
    if (!role.allowIpSans) return err(400, `IP Subject Alternative Names are not allowed in this role, but was provided ${ip}`);
    const b = ipBytes(ip);
    if (!b) return err(400, `the value "${ip}" is not a valid IP address`);
    ips.push(b);
  }
  if (list(body["uri_sans"]).length) return err(400, "URI Subject Alternative Names are not allowed in this role, but were provided via the API");

  // TTL
  const maxTtl = role.maxTtl || st.maxTtl || SYSTEM_MAX_TTL;
  let ttl: number;
  try {
    ttl = body["ttl"] !== undefined && body["ttl"] !== "" ? parseDurationSecond(body["ttl"]) : 0;
  } catch (e) {
    return err(400, `error converting input for field "ttl": ${(e as Error).message}`);
  }
  if (ttl <= 0) ttl = role.ttl || st.defaultTtl || DEFAULT_LEASE_TTL;
  const warnings: string[] = [];
  const now = s.clock.now();
  let notAfterMs = now + ttl * 1000;
  const notAfterRaw = weakString(body["not_after"]);
  if (notAfterRaw) {
    const t = Date.parse(notAfterRaw);
    if (Number.isNaN(t)) return err(400, `unable to parse "not_after" field: ${notAfterRaw}`);
    notAfterMs = t;
  } else if (ttl > maxTtl) {
    warnings.push(`TTL "${goDuration(ttl)}" is longer than permitted maxTTL "${goDuration(maxTtl)}", so maxTTL is being used`);
    notAfterMs = now + maxTtl * 1000;
  }
  const ca = st.ca.intermediate;
  if (notAfterMs > ca.notAfterMs) {
    const goTime = (ms: number): string => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " +0000 UTC");
    return err(400, `cannot satisfy request, as TTL would result in notAfter of ${goTime(notAfterMs)} that is beyond the expiration of the CA certificate at ${goTime(ca.notAfterMs)}`);
  }

  // Key and certificate
  const kp = await s.keyPool.take(role.keyType, role.keyBits);
  const leaf = signLeaf({ commonName: cn, dnsNames, ipAddresses: ips, notBeforeMs: now - 30_000, notAfterMs, publicKey: kp.publicKey, issuer: ca });
  const keyOut = st.mismatch ? (await s.keyPool.take(role.keyType, role.keyBits)).privateKey : kp.privateKey;
  const asPem = format !== "der";
  const enc = (pemText: string, der: Buffer): string => (asPem ? pemText : der.toString("base64"));
  const privateKey = exportPrivateKey(keyOut, role.keyType, pkFormat === "pkcs8", asPem);
  const chain = [enc(ca.pem, ca.der)];
  if (!(body["remove_roots_from_chain"] === true || body["remove_roots_from_chain"] === "true")) chain.push(enc(st.ca.root.pem, st.ca.root.der));
  const certificate = format === "pem_bundle" ? `${privateKey}\n${leaf.pem}` : enc(leaf.pem, leaf.der);
  const expiration = Math.floor(leaf.notAfterMs / 1000);
  st.issued.push({ serial: leaf.serial, commonName: cn, notAfter: leaf.notAfterMs });

  const env: Env = {
    data: {
      ca_chain: chain,
      certificate,
      expiration,
      issuing_ca: enc(ca.pem, ca.der),
      private_key: privateKey,
      private_key_type: role.keyType,
      serial_number: leaf.serial,
    },
    warnings: warnings.length ? warnings : null,
    mountType: "pki",
  };
  if (role.generateLease) {
    const id = `${m.path}issue/${roleName}/${randomBase62(24)}`;
    const secs = Math.max(0, Math.round((leaf.notAfterMs - s.clock.now()) / 1000));
    newLease(s, id, secs, secs, false, { username: "", password: "" }, ctx.token);
    env.leaseId = id;
    env.leaseDuration = secs;
    env.renewable = false;
  }
  return ok(env);
}
