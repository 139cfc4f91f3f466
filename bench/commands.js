// `node bench/commands.js [calls]` (after `npm run build`): what node-vault's named commands cost on
// top of the transport they ride on, per call, against the in-process Vault double.
//
// For each pair it alternates batches (A B A B …) and reports the median per-call time of each and
// their difference: a raw `transport.send` (the floor: one HTTP exchange, classified), node-vault's
// raw `request`, its `read`, and for a login `approleLogin` (tv4-style argument check + mustache
// path) against `write` to the same path.
import { startVaultDouble } from "../dist/double/vault-double.js";
import { VaultClient } from "../dist/core/vault/client.js";

const CALLS = Number(process.argv[2] ?? 400);
const BATCHES = 7;
const double = await startVaultDouble();
double.mountKv("secret", 2);
double.kvPut("secret", "app", { password: "pw" });
double.addPolicy("bench", `path "secret/data/*" { capabilities = ["read"] }\n`);
const { roleId } = double.addAppRole({ roleName: "bench", policies: ["bench"], tokenTtl: 3600, secretIdNumUses: 0 });
const sid = double.generateSecretId("bench");
const conn = { address: double.url, namespace: undefined, caCertFile: undefined, tlsServerName: undefined, skipVerify: false, timeoutMs: 10_000, retries: 0, concurrency: 1 };
const client = new VaultClient(conn, { sleep: async () => undefined, random: Math.random });
client.setToken(double.rootToken);
const nv = client["nv"];
const transport = client["transport"];
const url = new URL(`${double.url}/v1/secret/data/app`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};
async function perCall(fn) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / 1e3 / CALLS;
}
async function compare(label, a, b) {
  await perCall(a);
  await perCall(b);
  const ra = [];
  const rb = [];
  for (let i = 0; i < BATCHES; i++) {
    ra.push(await perCall(a));
    rb.push(await perCall(b));
  }
  const ma = median(ra);
  const mb = median(rb);
  console.log(`${label.padEnd(58)} ${ma.toFixed(1).padStart(7)} µs vs ${mb.toFixed(1).padStart(7)} µs  (+${(mb - ma).toFixed(1)} µs, ${(mb / ma).toFixed(2)}×)`);
}

const headers = { "X-Vault-Token": double.rootToken };
await compare("read: transport.send  vs  node-vault request", () => transport.send({ method: "GET", url, headers }), () => nv.request({ path: "/secret/data/app", method: "GET" }));
await compare("read: node-vault request  vs  node-vault read", () => nv.request({ path: "/secret/data/app", method: "GET" }), () => nv.read("secret/data/app"));
await compare("read: transport.send  vs  VaultClient.read", () => transport.send({ method: "GET", url, headers }), () => client.read("secret/data/app"));
const loginBody = { role_id: roleId, secret_id: sid.secretId };
await compare(
  "login: node-vault write  vs  approleLogin",
  () => nv.write("auth/approle/login", loginBody),
  () => nv.approleLogin({ mount_point: "approle", ...loginBody }),
);
client.close();
await double.close();
