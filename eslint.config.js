// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", ".cluster/", "coverage/", "eslint.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    // The sidecar never imports the operator.
    files: ["sidecar/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["**/operator/**"], message: "the sidecar never imports the operator" }] },
      ],
    },
  },
  {
    // The pure policy core must not touch I/O: keep sockets, files and clients out of it.
    files: ["sidecar/policy/**/*.ts"],
    ignores: ["sidecar/policy/**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["node:*", "@kubernetes/*", "../*", "!../constants.ts"],
              message: "sidecar/policy is pure: no I/O, no imports from outside it.",
            },
            { group: ["**/operator/**"], message: "the sidecar never imports the operator" },
          ],
        },
      ],
    },
  },
);
