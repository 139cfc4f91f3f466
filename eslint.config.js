import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

/** Child processes are started by one module (DESIGN.md): hooks and validators go through it. */
const childProcess = ["node:child_process", "child_process"].map((name) => ({ name, message: "Child processes live in src/core/support/command.ts (DESIGN.md)." }));

export default tseslint.config(
  { ignores: ["dist/**", "dist-bin/**", "node_modules/**", "coverage/**", "demo/**", ".tmp/**"] },
  js.configs.recommended,
  // Lint with type information (the project's tsconfig.json) for TypeScript; plain JS (bench/,
  // scripts/, bin/, build config) is outside the TypeScript project and is linted without it.
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { globals: { ...globals.node }, parserOptions: { project: "./tsconfig.json", tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  { files: ["**/*.js", "**/*.mjs", "**/*.cjs"], ...tseslint.configs.disableTypeChecked },
  {
    // The core never talks to the console or the process directly: the CLI layer passes them in.
    files: ["src/core/**/*.ts"],
    ignores: ["src/core/**/*.test.ts"],
    rules: {
      "no-console": "error",
      "no-restricted-properties": [
        "error",
        { object: "process", property: "exit", message: "Only the entry point sets exit codes." },
        { object: "process", property: "env", message: "Pass the environment in." },
        { object: "process", property: "exitCode", message: "Only the entry point sets exit codes." },
      ],
    },
  },
  {
    // Every file-system mutation lives in src/core/fs/ (DESIGN.md): nothing else in the core writes.
    files: ["src/core/**/*.ts"],
    ignores: ["src/core/fs/**", "src/core/**/*.test.ts", "src/core/support/command.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        ...childProcess,
        ...["node:fs", "node:fs/promises", "fs", "fs/promises"].map((name) => ({
          name,
          importNames: [
            "writeFile", "writeFileSync", "appendFile", "appendFileSync", "rename", "renameSync", "unlink", "unlinkSync",
            "rm", "rmSync", "rmdir", "rmdirSync", "mkdir", "mkdirSync", "mkdtemp", "mkdtempSync", "chmod", "chmodSync",
            "fchmod", "fchmodSync", "lchmod", "chown", "chownSync", "fchown", "lchown", "symlink", "symlinkSync",
            "link", "linkSync", "copyFile", "copyFileSync", "cp", "cpSync", "truncate", "truncateSync", "ftruncate",
            "ftruncateSync", "utimes", "utimesSync", "futimes", "lutimes", "createWriteStream", "write", "writeSync",
            "promises",
          ],
          message: "File-system mutations live in src/core/fs/ (DESIGN.md).",
        })),
      ],
      // Named imports only, so the list above sees every function taken from node:fs. (Reads that
      // open a file, open/openSync, stay allowed; their flags are read-only by review, not by lint.)
      "no-restricted-syntax": [
        "error",
        ...["ImportNamespaceSpecifier", "ImportDefaultSpecifier"].map((kind) => ({
          selector: `ImportDeclaration[source.value=/^(node:)?fs(\\u002Fpromises)?$/] > ${kind}`,
          message: "Import node:fs functions by name (file-system mutations live in src/core/fs/).",
        })),
      ],
    },
  },
  {
    // src/core/fs/ may touch files, but starts no process either.
    files: ["src/core/fs/**/*.ts"],
    ignores: ["src/core/**/*.test.ts"],
    rules: { "no-restricted-imports": ["error", ...childProcess] },
  },
);
