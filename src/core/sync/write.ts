/**
 * The render-and-write step. Every output of the layout, results indexed by its position. Runs
 * of consecutive file outputs are compared and written `vault.concurrency` at a time (as the
 * reads are); what each records in the state is applied after its run, in layout order, so the
 * state, the logs and the summary do not depend on which write finished first. A PKI output
 * runs alone between those runs (pki.ts): it commits through the one journal in agent-only/ and
 * saves the state with the outputs before it recorded, as a serial pass would.
 */
import path from "node:path";
import { isFileOutput, outputId } from "../layout/outputs.js";
import type { FileOutput, OutputSpec } from "../layout/schema.js";
import type { Rendered, SourceResults } from "../render/index.js";
import { renderOutput } from "../render/index.js";
import { DryRunPending, SourceUnavailable } from "../support/errors.js";
import type { TemplatePart } from "../render/template.js";
import type { RunContext } from "../run/context.js";
import type { OutputState } from "../state/state.js";
import { keyedHash } from "../state/state.js";
import { mapLimit } from "../support/clock.js";
import { diffKeys } from "../support/key-diff.js";
import type { BeforeCommit } from "../fs/writer.js";
import { DIR_MODE, FILE_MODE, readCurrent, writeInTree } from "../fs/writer.js";
import { runValidator, validateContext } from "./validate.js";
import { syncPki } from "./pki.js";
import { recordFailure } from "./record.js";
import type { Forces, OutputResult } from "./result.js";

/** What the render step needs: the sources each output reads (or why it cannot), their data, the parsed templates. */
export interface RenderInputs {
  needs: Map<string, string[] | Error>;
  sources: SourceResults;
  templates: Map<string, TemplatePart[]>;
}

/** Every output rendered, compared and written when it changed; `dirsToSync` collects the directories to fsync. */
export async function writeOutputs(run: RunContext, forces: Forces, inputs: RenderInputs, dirsToSync: Set<string>): Promise<OutputResult[][]> {
  const outputs = run.layout.outputs;
  const out = new Array<OutputResult[]>(outputs.length);
  let i = 0;
  while (i < outputs.length) {
    const first = outputs[i] as OutputSpec;
    if (!isFileOutput(first)) {
      out[i] = await syncPki(run, first, forces.pki.has(outputId(first)), dirsToSync);
      i++;
      continue;
    }
    let end = i;
    while (end < outputs.length && isFileOutput(outputs[end] as OutputSpec)) end++;
    const batch = outputs.slice(i, end) as FileOutput[];
    // writeFileOutput never rejects (every failure is its output's result), so no write is left
    // running behind a rejected mapLimit.
    // Every write adds its directories to the one set (a failed write's too: it may have made
    // some); they are fsynced once after all writes, in whatever order they were added.
    const done = await mapLimit(batch, run.layout.vault.concurrency, (o) => writeFileOutput(run, o, inputs.needs.get(outputId(o)) ?? [], inputs, dirsToSync));
    for (const [k, d] of done.entries()) {
      d.record();
      out[i + k] = [d.result];
    }
    i = end;
  }
  return out;
}

/** A file output compared (and written when it changed); `record` applies it to the state. */
interface FileOutcome {
  result: OutputResult;
  record: () => void;
}

/**
 * Render, compare and write one file output. Runs alongside other outputs: the only shared thing
 * it changes is the set of directories to fsync (the state is changed by `record`, in layout order).
 */
async function writeFileOutput(run: RunContext, o: FileOutput, need: string[] | Error, inputs: RenderInputs, dirsToSync: Set<string>): Promise<FileOutcome> {
  const { layout, state, hmacKey, opts } = run;
  const { sources } = inputs;
  const file = outputId(o);
  const prev: OutputState | undefined = state.outputs[file];
  const fail = (e: Error): FileOutcome => ({ result: { file, action: "failed", error: e }, record: () => recordFailure(run, file, e) });
  if (need instanceof Error) return fail(need);

  let rendered: Rendered;
  try {
    rendered = await renderOutput(o, sources, layout.dir, inputs.templates);
  } catch (e) {
    if (opts.dryRun && e instanceof SourceUnavailable && e.error instanceof DryRunPending) {
      return { result: { file, action: prev ? "update" : "create", note: e.error.message }, record: () => undefined };
    }
    return fail(e as Error);
  }
  const keyHashes = rendered.keys ? Object.fromEntries([...rendered.keys].map(([k, v]) => [k, keyedHash(hmacKey, `${k}\0${v}`)])) : undefined;
  const sourceVersions = Object.fromEntries(
    need.map((n) => {
      const d = sources.get(n);
      return [n, d && !(d instanceof Error) && d.version !== undefined ? { version: d.version } : {}];
    }),
  );
  const r = await writeIfChanged(run, file, rendered.bytes, keyHashes, dirsToSync, o.validate ? (tmp) => runValidator(validateContext(run), o, { file: tmp }, file, outputSecrets(o, rendered)) : undefined);
  if (r.action === "failed") return fail(r.error as Error);
  const record = () => {
    if (opts.dryRun) return;
    const writtenAt = r.action === "unchanged" && prev ? prev.writtenAt : new Date(opts.clock.now()).toISOString();
    state.outputs[file] = { hash: keyedHash(hmacKey, rendered.bytes), size: rendered.bytes.length, keys: keyHashes, sources: sourceVersions, writtenAt, lastError: null };
    delete state.failures[file];
  };
  return { result: r, record };
}

/** The key diff a result shows: by keyed hash, against what the state recorded (nothing without keys). */
function keyChanges(before: Record<string, string> | undefined, after: Record<string, string> | undefined): Partial<OutputResult> {
  if (!after) return {};
  const d = diffKeys(before ?? {}, after);
  return { keysAdded: d.added, keysRemoved: d.removed, keysChanged: d.changed };
}

/** The values a validator's output must not show: each key's value, and a raw file's whole content. */
function outputSecrets(o: FileOutput, rendered: Rendered): string[] {
  const values = [...(rendered.keys?.values() ?? [])].map(String);
  if (o.format === "raw") values.push(rendered.bytes.toString("utf8").trim());
  return values;
}

/**
 * Compare with the file on disk; write atomically when bytes or mode differ (not in dry runs).
 * `validate` runs on the complete temp file before it replaces the live one.
 */
async function writeIfChanged(run: RunContext, file: string, bytes: Buffer, keyHashes: Record<string, string> | undefined, dirsToSync: Set<string>, validate?: BeforeCommit): Promise<OutputResult> {
  const { layout, state, opts } = run;
  const abs = path.join(layout.publicDir, file);
  let current;
  try {
    current = await readCurrent(abs);
  } catch (e) {
    return { file, action: "failed", error: e as Error };
  }
  const same = current !== null && current.bytes.equals(bytes);
  const modeOk = current !== null && current.mode === FILE_MODE;
  const result: OutputResult = {
    file,
    action: current === null ? "create" : same && modeOk ? "unchanged" : "update",
    sizeBefore: current?.bytes.length,
    sizeAfter: bytes.length,
    modeFixed: same && !modeOk,
    ...(current === null || !same ? keyChanges(state.outputs[file]?.keys, keyHashes) : {}),
  };
  if (opts.dryRun || result.action === "unchanged") return result;
  try {
    await writeInTree(layout.publicDir, file, bytes, FILE_MODE, DIR_MODE, dirsToSync, opts.writeFault, validate);
  } catch (e) {
    return { file, action: "failed", error: e as Error };
  }
  return result;
}
