import type { TestHooks } from "../../src/cli.js";

export declare const TEST_ENV_PREFIX: string;
export declare function wantsHooks(env: Record<string, string | undefined> | undefined): boolean;
export declare function hooksFromEnv(env: Record<string, string | undefined>, onKill: () => void): TestHooks;
