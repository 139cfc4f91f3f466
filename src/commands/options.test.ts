import { describe, expect, it } from "vitest";
import { checkOptions, globalOptions, parseOptions, rotateOptions, syncOptions, watchOptions } from "./options.js";
import { VrError } from "../core/support/errors.js";

const g = { layout: "vault-layout.json" };
const refusal = (f: () => unknown): VrError => {
  try {
    f();
  } catch (e) {
    if (e instanceof VrError) return e;
    throw e;
  }
  throw new Error("not refused");
};

describe("command option schemas", () => {
  it("give typed options: absent flags false, durations in ms", () => {
    expect(parseOptions(globalOptions, g)).toEqual({ layout: "vault-layout.json", verbose: false, debug: false });
    expect(parseOptions(syncOptions, { ...g, hooks: false, lockTimeout: "1m30s", logFormat: "json" })).toEqual({
      ...g, verbose: false, debug: false, logFormat: "json", dryRun: false, hooks: false, runHooks: false, lockTimeout: 90_000, json: false,
    });
    const r = parseOptions(rotateOptions, { ...g, targets: ["a.env"], secretId: true, hooks: true, lockTimeout: "30s" });
    expect(r).toMatchObject({ targets: ["a.env"], secretId: true, dryRun: false, lockTimeout: 30_000 });
    const c = parseOptions(checkOptions, { ...g, minValidity: "7d", minTokenTtl: "10m" });
    expect(c).toMatchObject({ offline: false, json: false, minValidity: 7 * 86_400_000, minTokenTtl: 600_000 });
    expect(c.maxAge).toBeUndefined();
  });

  it("refuse a bad duration with the flag's one line and exit 2; the first bad flag in order wins", () => {
    const w = { ...g, hooks: true, lockTimeout: "30s", interval: "5m", maxBackoff: "5m", healInterval: "10s", debounce: "300ms" };
    const cases: [Record<string, string>, string][] = [
      [{ interval: "0" }, '--interval: "0" must be longer than 0 (e.g. 30s, 2m)'],
      [{ debounce: "-1s" }, '--debounce: "-1s" is not a duration (e.g. 30s, 2m)'],
      [{ lockTimeout: "x", interval: "0s" }, '--lock-timeout: "x" is not a duration (e.g. 30s, 2m)'],
      [{ maxBackoff: "0ms", healInterval: "soon" }, '--max-backoff: "0ms" must be longer than 0 (e.g. 30s, 2m)'],
    ];
    for (const [bad, message] of cases) {
      const e = refusal(() => parseOptions(watchOptions, { ...w, ...bad }));
      expect([e.code, e.exit, e.message]).toEqual(["USAGE", 2, message]);
    }
    const c = refusal(() => parseOptions(checkOptions, { ...g, minValidity: "7d", minTokenTtl: "10m", maxAge: "old" }));
    expect(c.message).toBe('--max-age: "old" is not a duration (e.g. 7d, 12h, 30m)');
    expect(parseOptions(watchOptions, { ...w, debounce: "0" }).debounce).toBe(0);
  });

  it("name the option of any other refusal", () => {
    const e = refusal(() => parseOptions(syncOptions, { ...g, hooks: true, lockTimeout: "30s", logFormat: "xml" }));
    expect(e.exit).toBe(2);
    expect(e.message).toMatch(/^--log-format: /);
  });
});
