/**
 * The PKI step: a set is re-issued only when due (or forced), verified, and committed as one unit
 * through the journal in agent-only/; a set that is not due is checked file by file against the
 * recorded issue and rebuilt from it. What a set on disk should hold, and how it differs, is
 * pki-set.ts (shared with `check`); this file changes the set.
 */
import path from "node:path";
import type { PkiPart } from "../layout/outputs.js";
import { outputId, pkiFiles } from "../layout/outputs.js";
import type { PkiOutput } from "../layout/schema.js";
import type { RunContext } from "../run/context.js";
import type { OutputState } from "../state/state.js";
import { keyedHash } from "../state/state.js";
import { issueSet, pkiDueReason, pkiRequestHash } from "../vault/pki.js";
import type { JournalRecords } from "../fs/journal.js";
import { commitSet } from "../fs/journal.js";
import { discardTemps } from "../fs/private.js";
import type { DirHandle } from "../fs/writer.js";
import { DIR_MODE, FILE_MODE, lstatIn, openDirChain, prepareTemp, splitRel, writeInTree } from "../fs/writer.js";
import { expectedSet, inspectSet, serialOf } from "./pki-set.js";
import { recordFailure } from "./record.js";
import { runValidator, validateContext } from "./validate.js";
import type { OutputResult } from "./result.js";

/** A PKI set: re-issued only when due (or forced), verified, then committed as one unit. */
export async function syncPki(run: RunContext, o: PkiOutput, force: boolean, dirsToSync: Set<string>): Promise<OutputResult[]> {
  const { layout, state, opts, hmacKey } = run;
  const id = outputId(o);
  const parts = pkiFiles(o);
  const reqHash = pkiRequestHash(hmacKey, o);
  let reason: string | null;
  try {
    reason = force ? "rotation requested" : await pkiDueReason(o, layout.publicDir, opts.clock.now(), state.pki[id]?.requestHash, reqHash);
  } catch (e) {
    recordFailure(run, id, e as Error);
    return [{ file: id, action: "failed", error: e as Error }];
  }
  if (reason === null) {
    // Not due: every file is checked against the recorded issue and rebuilt by temp + rename
    // when it differs; re-issued only when something cannot be rebuilt without a secret.
    const repaired = await repairPki(run, o, dirsToSync);
    if ("results" in repaired) return repaired.results;
    reason = repaired.reissue;
  }
  if (opts.dryRun) {
    return Object.values(parts).map((rel) => ({ file: rel, action: state.outputs[rel] ? "update" : "create", note: `issue a new certificate (${reason})` }));
  }
  let issued = false;
  try {
    const set = await issueSet(run.client, o);
    issued = true;
    opts.redactor.add(set.privateKey);
    const entries = Object.entries(parts) as Array<[PkiPart, string]>;
    // Every file of a set is in its directory: one handle, opened without following links, so
    // the temps and the renames all happen in the directory that was verified.
    const dir = (await openDirChain(layout.publicDir, splitRel(entries[0]?.[1] ?? id)[0], { create: { mode: DIR_MODE, changed: dirsToSync }, fixMode: DIR_MODE })) as DirHandle;
    try {
      const renames: Array<[string, string]> = [];
      const via: Array<[string, string]> = [];
      try {
        for (const [part, rel] of entries) {
          const name = splitRel(rel)[1];
          await lstatIn(dir, name); // refuses a planted symlink
          const abs = path.join(dir.real, name);
          const tmp = await prepareTemp(abs, set.files[part] as Buffer, FILE_MODE, opts.writeFault, dir.path);
          via.push([tmp, path.join(dir.path, name)]);
          renames.push([path.join(dir.real, path.basename(tmp)), abs]);
        }
      } catch (e) {
        await discardTemps(via.map(([tmp]) => tmp));
        throw e;
      }
      // The validator sees the whole new set (every temp) before anything is renamed.
      if (o.validate) {
        const temps = Object.fromEntries(entries.map(([part], k) => [part, renames[k]?.[0]]));
        try {
          await runValidator(validateContext(run), o, temps, id, set.privateKey);
        } catch (e) {
          await discardTemps(via.map(([tmp]) => tmp));
          throw e;
        }
      }
      const before = state.pki[id];
      const hadOutputs = new Set(entries.map(([, rel]) => rel).filter((rel) => state.outputs[rel]));
      const at = new Date(opts.clock.now()).toISOString();
      // The new set's state records travel in the commit journal and are saved before the journal
      // is removed: a crash after the renames must not leave a valid certificate without a record
      // (the next run would re-issue it).
      const records: JournalRecords = { pki: { [id]: { serial: set.serial, notAfter: set.notAfter, notBefore: set.notBefore, requestHash: reqHash, issuedAt: at, cert: set.cert, chain: set.chain } }, outputs: {} };
      for (const [part, rel] of entries) {
        const bytes = set.files[part] as Buffer;
        (records.outputs as Record<string, OutputState>)[rel] = { hash: keyedHash(hmacKey, bytes), size: bytes.length, sources: {}, writtenAt: at, lastError: null };
      }
      // A rename that fails midway: the state records only the files actually replaced, and the
      // new certificate's record only if the certificate itself was replaced; the next run
      // rebuilds the rest from that record (or re-issues when the key on disk is the old one).
      const leafRel = parts.cert ?? parts.fullchain;
      const partial = (done: string[]): JournalRecords => {
        const doneRel = new Set(entries.filter(([, rel]) => done.includes(path.join(dir.real, splitRel(rel)[1]))).map(([, rel]) => rel));
        return {
          pki: leafRel && doneRel.has(leafRel) ? records.pki : {},
          outputs: Object.fromEntries(Object.entries(records.outputs ?? {}).filter(([rel]) => doneRel.has(rel))),
        };
      };
      await commitSet(
        layout.agentDir,
        renames,
        records,
        async (applied) => {
          Object.assign(state.pki, applied.pki);
          Object.assign(state.outputs, applied.outputs);
          if (applied === records) delete state.failures[id];
          await run.save();
        },
        { via, fault: opts.writeFault, partial },
      );
      dirsToSync.add(dir.real);
      const note = `serial ${before?.serial ?? "-"} -> ${set.serial}, expires ${new Date(set.notAfter).toISOString()} (${reason})`;
      opts.log.info({ output: id, serial: set.serial }, `issued a certificate for ${id}: ${note}`);
      return entries.map(([, rel]) => ({ file: rel, action: hadOutputs.has(rel) && before ? "update" : "create", note }));
    } finally {
      await dir.close();
    }
  } catch (e) {
    recordFailure(run, id, e as Error);
    return [{ file: id, action: "failed", error: e as Error, afterChange: issued }];
  }
}

/**
 * A set that is not due: each file is compared with what the recorded issue implies and, when
 * its bytes, its mode or its link count are wrong, rewritten by temp + rename (never chmod'ed in
 * place: a hard link would carry the chmod out of public/). Gives the reason to re-issue instead
 * when the set cannot be rebuilt from disk and state.
 */
async function repairPki(run: RunContext, o: PkiOutput, dirsToSync: Set<string>): Promise<{ results: OutputResult[] } | { reissue: string }> {
  const { layout, state, opts, hmacKey } = run;
  const id = outputId(o);
  const exp = await expectedSet(layout.publicDir, o, state.pki[id], state.outputs, hmacKey);
  if ("reissue" in exp) return exp;
  const bad = new Map((await inspectSet(layout.publicDir, o, exp)).map((p) => [p.rel, p]));
  const at = new Date(opts.clock.now()).toISOString();
  const results: OutputResult[] = [];
  const livePaths = Object.fromEntries(Object.entries(pkiFiles(o)).map(([part, rel]) => [part, path.join(layout.publicDir, rel)]));
  for (const [part, rel] of Object.entries(pkiFiles(o)) as Array<[PkiPart, string]>) {
    const p = bad.get(rel);
    const bytes = exp.files[part];
    if (!p || !bytes) {
      results.push({ file: rel, action: "unchanged" });
      continue;
    }
    if (!opts.dryRun) {
      try {
        // The validator sees the set as it will be: this file's temp, the others' live files.
        const validate = o.validate ? (tmp: string) => runValidator(validateContext(run), o, { ...livePaths, [part]: tmp }, id) : undefined;
        await writeInTree(layout.publicDir, rel, bytes, FILE_MODE, DIR_MODE, dirsToSync, opts.writeFault, validate);
      } catch (e) {
        recordFailure(run, id, e as Error);
        results.push({ file: rel, action: "failed", error: e as Error });
        continue;
      }
      state.outputs[rel] = { hash: keyedHash(hmacKey, bytes), size: bytes.length, sources: {}, writtenAt: at, lastError: null };
    }
    const modeOnly = p.problems.length === 1 && p.problems[0]?.startsWith("mode ");
    results.push({ file: rel, action: "update", modeFixed: modeOnly, note: `rebuilt from the recorded issue (${p.problems.join(", ")})` });
  }
  // Record the set's public parts, so the next repair needs no derivation.
  const rec = state.pki[id];
  if (!opts.dryRun && rec && (rec.cert !== exp.cert || rec.chain !== exp.chain) && serialOf(exp.cert) === rec.serial) {
    rec.cert = exp.cert;
    rec.chain = exp.chain;
  }
  return { results };
}
