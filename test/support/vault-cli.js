#!/usr/bin/env node
// A stand-in for HashiCorp's `vault` CLI, for the commands the docs tell operators to run, so that
// test/docs-runnable.test.ts can execute them against the sandbox (there is no vault binary here).
// Each command sends the HTTP request the real CLI sends for it (Vault's API docs for each path,
// and the CLI's documented flags), with VAULT_ADDR and VAULT_TOKEN from the environment:
//
//   vault auth enable [-path=P] TYPE            POST /v1/sys/auth/P        {"type": TYPE}
//   vault secrets enable [-path=P] [-version=N] TYPE
//                                               POST /v1/sys/mounts/P      {"type": TYPE, "options": {"version": "N"}}
//   vault policy write NAME FILE|-              PUT  /v1/sys/policies/acl/NAME {"policy": <text>}
//   vault write [-f] [-wrap-ttl=D] [-field=F] PATH [k=v|k=@file ...]
//                                               PUT  /v1/PATH (X-Vault-Wrap-TTL when -wrap-ttl)
//   vault read [-field=F] PATH                  GET  /v1/PATH
//   vault kv put -mount=M PATH k=v ...          version from GET sys/internal/ui/mounts/M, then
//                                               POST /v1/M/data/PATH {"data": {...}} (v2) or PUT /v1/M/PATH (v1)
//   vault kv get [-field=F] -mount=M PATH       the matching GET
//
// As the real CLI: flags come before arguments (Go's flag package stops at the first argument);
// `-field` prints the bare value with no newline when stdout is not a terminal; `-field=wrapping_token`
// (and the other wrap_info fields) reads a wrapped answer; an API error prints "Error …: Code: N.
// Errors: * …" on stderr and exits 2; a usage error exits 1. Only this subset: anything else exits 1
// naming the command, so a doc line outside it fails its test instead of passing silently.
import { readFileSync } from "node:fs";

const addr = (process.env.VAULT_ADDR ?? "https://127.0.0.1:8200").replace(/\/+$/, "");
const token = process.env.VAULT_TOKEN ?? "";

function usage(msg) {
  process.stderr.write(`${msg}\n`);
  process.exit(1);
}

/** Splits leading `-flag[=value]` words (Go flag style: `-f`, `-field=x`, `--field=x`) from the arguments. */
function parse(words, known) {
  const flags = {};
  let i = 0;
  for (; i < words.length; i++) {
    const w = words[i];
    if (w === "--") {
      i++;
      break;
    }
    if (!/^--?[a-z]/.test(w)) break;
    const [name, value] = w.replace(/^--?/, "").split(/=(.*)/s, 2);
    if (!(name in known)) usage(`flag provided but not defined: -${name}`);
    if (known[name] === "bool") flags[name] = value === undefined || value === "true";
    else if (value !== undefined) flags[name] = value;
    else if (i + 1 < words.length) flags[name] = words[++i];
    else usage(`flag needs an argument: -${name}`);
  }
  return { flags, args: words.slice(i) };
}

async function api(method, path, body, headers = {}) {
  const r = await fetch(`${addr}/v1/${path.replace(/^\/+/, "")}`, {
    method,
    headers: { "X-Vault-Token": token, ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (r.status >= 400 && !(r.status === 404 && json && (json.data || json.warnings))) {
    const errors = Array.isArray(json?.errors) ? json.errors : [];
    process.stderr.write(
      `Error making API request.\n\nURL: ${method} ${addr}/v1/${path}\nCode: ${r.status}. Errors:\n\n${errors.map((e) => `* ${e}`).join("\n")}\n`,
    );
    process.exit(2);
  }
  return { status: r.status, json };
}

/** `k=v`, `k=@file` and `k=-` (stdin) pairs, as `vault write` and `vault kv put` read them. */
function pairs(args) {
  const out = {};
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq <= 0) usage(`invalid key/value pair "${a}": format must be key=value`);
    const k = a.slice(0, eq);
    let v = a.slice(eq + 1);
    if (v.startsWith("@")) v = readFileSync(v.slice(1), "utf8");
    else if (v === "-") v = readFileSync(0, "utf8");
    out[k] = v;
  }
  return out;
}

function printField(resp, field) {
  const wrap = resp?.wrap_info;
  const fromWrap = wrap && { wrapping_token: wrap.token, wrapping_accessor: wrap.accessor, wrapping_token_ttl: wrap.ttl, wrapping_token_creation_path: wrap.creation_path };
  const source = fromWrap ?? resp?.data?.data ?? resp?.data ?? {};
  const value = source[field] ?? resp?.data?.[field];
  if (value === undefined) {
    process.stderr.write(`Field "${field}" not present in secret\n`);
    process.exit(1);
  }
  const text = typeof value === "string" ? value : JSON.stringify(value);
  process.stdout.write(process.stdout.isTTY ? `${text}\n` : text);
}

function printTable(resp) {
  const rows = resp?.wrap_info
    ? Object.entries({ wrapping_token: resp.wrap_info.token, wrapping_accessor: resp.wrap_info.accessor, wrapping_token_ttl: resp.wrap_info.ttl })
    : Object.entries(resp?.data?.data ?? resp?.data ?? {});
  const w = Math.max(3, ...rows.map(([k]) => k.length));
  process.stdout.write(`${"Key".padEnd(w)}    Value\n${"---".padEnd(w)}    -----\n`);
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}    ${typeof v === "string" ? v : JSON.stringify(v)}\n`);
}

async function kvVersion(mount) {
  const r = await api("GET", `sys/internal/ui/mounts/${mount}`);
  return r.json?.data?.options?.version === "2" ? 2 : 1;
}

const [cmd, ...rest] = process.argv.slice(2);
switch (cmd) {
  case "auth":
  case "secrets": {
    const [sub, ...words] = rest;
    if (sub !== "enable") usage(`vault ${cmd} ${sub ?? ""}: not in this stand-in (only "enable")`);
    const { flags, args } = parse(words, cmd === "auth" ? { path: "str", description: "str" } : { path: "str", version: "str", description: "str" });
    if (args.length !== 1) usage(`Too many or too few arguments (expected 1, got ${args.length})`);
    const type = args[0];
    const at = (flags.path ?? type).replace(/^\/+|\/+$/g, "");
    const body = { type, ...(flags.description ? { description: flags.description } : {}), ...(flags.version ? { options: { version: flags.version } } : {}) };
    await api("POST", `${cmd === "auth" ? "sys/auth" : "sys/mounts"}/${at}`, body);
    process.stdout.write(cmd === "auth" ? `Success! Enabled ${type} auth method at: ${at}/\n` : `Success! Enabled the ${type} secrets engine at: ${at}/\n`);
    break;
  }
  case "policy": {
    const [sub, ...words] = rest;
    if (sub !== "write") usage(`vault policy ${sub ?? ""}: not in this stand-in (only "write")`);
    const { args } = parse(words, {});
    if (args.length !== 2) usage(`Too many or too few arguments (expected 2, got ${args.length})`);
    const text = readFileSync(args[1] === "-" ? 0 : args[1], "utf8");
    await api("PUT", `sys/policies/acl/${args[0]}`, { policy: text });
    process.stdout.write(`Success! Uploaded policy: ${args[0]}\n`);
    break;
  }
  case "write": {
    const { flags, args } = parse(rest, { f: "bool", force: "bool", "wrap-ttl": "str", field: "str", format: "str" });
    if (args.length < 1) usage("Not enough arguments (expected 1, got 0)");
    const [path, ...kv] = args;
    if (kv.length === 0 && !flags.f && !flags.force) usage("Must supply data or use -force");
    const r = await api("PUT", path, pairs(kv), flags["wrap-ttl"] ? { "X-Vault-Wrap-TTL": flags["wrap-ttl"] } : {});
    if (flags.field) printField(r.json, flags.field);
    else if (flags.format === "json") process.stdout.write(`${JSON.stringify(r.json, null, 2)}\n`);
    else if (r.json) printTable(r.json);
    else process.stdout.write(`Success! Data written to: ${path}\n`);
    break;
  }
  case "read": {
    const { flags, args } = parse(rest, { field: "str", format: "str" });
    if (args.length !== 1) usage(`Too many or too few arguments (expected 1, got ${args.length})`);
    const r = await api("GET", args[0]);
    if (r.status === 404) {
      process.stderr.write(`No value found at ${args[0]}\n`);
      process.exit(2);
    }
    if (flags.field) printField(r.json, flags.field);
    else if (flags.format === "json") process.stdout.write(`${JSON.stringify(r.json, null, 2)}\n`);
    else printTable(r.json);
    break;
  }
  case "kv": {
    const [sub, ...words] = rest;
    if (sub !== "put" && sub !== "get") usage(`vault kv ${sub ?? ""}: not in this stand-in (only "put" and "get")`);
    const { flags, args } = parse(words, { mount: "str", field: "str" });
    let mount = flags.mount;
    let path = args[0] ?? usage("Not enough arguments");
    if (!mount) [mount, path] = [path.split("/")[0], path.split("/").slice(1).join("/")];
    const v2 = (await kvVersion(mount)) === 2;
    if (sub === "put") {
      const data = pairs(args.slice(1));
      if (Object.keys(data).length === 0) usage("Must supply data");
      const r = v2 ? await api("POST", `${mount}/data/${path}`, { data }) : await api("PUT", `${mount}/${path}`, data);
      if (v2 && r.json) printTable({ data: r.json.data });
      else process.stdout.write(`Success! Data written to: ${mount}/${path}\n`);
    } else {
      const r = await api("GET", v2 ? `${mount}/data/${path}` : `${mount}/${path}`);
      if (r.status === 404) {
        process.stderr.write(`No value found at ${mount}/${v2 ? "data/" : ""}${path}\n`);
        process.exit(2);
      }
      if (flags.field) printField(r.json, flags.field);
      else printTable(r.json);
    }
    break;
  }
  default:
    usage(`vault ${cmd ?? ""}: not in this stand-in (test/support/vault-cli.js covers the commands the docs use)`);
}
