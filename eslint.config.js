// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// Test code: suites, their fixtures and harnesses.
const TESTS = ["**/*.test.ts", "test/**", "**/test-*.ts"];

const SIDECAR_NOT_OPERATOR = {
  group: ["**/operator/**"],
  message: "architecture: the sidecar never imports the operator",
};

const POLICY_THROUGH_INDEX = {
  regex: "(^|/)policy/(?!index\\.ts$)",
  message:
    "architecture: outside sidecar/policy, the policy core is imported through sidecar/policy/index.ts",
};

// What the operator may import from the sidecar: the policy core's index, the bundle format, the
// shared constants, the process plumbing, the DER encoder and X.509 builder
// (operator/kube/bootstrap-pki.ts), and the address classifier (CIDR flags of the injected sidecar).
const OPERATOR_SIDECAR_SURFACE = {
  regex:
    "(^|/)sidecar/(?!(policy/index|control/bundle|constants|tls/der|tls/x509|net/address)\\.ts$|process/[a-z-]+\\.ts$)",
  message:
    "architecture: the operator imports from sidecar/ only policy/index.ts, control/bundle.ts, constants.ts, process/, tls/der.ts, tls/x509.ts and net/address.ts",
};

// node:http by value only through sidecar/process/http.ts (it says why: memory).
const HTTP_THROUGH_GETBUILTIN = {
  name: "node:http",
  allowTypeImports: true,
  message:
    "memory: an ESM import of node:http loads Node's bundled undici; use { http } from sidecar/process/http.ts (type imports are fine)",
};

// The sidecar talks to the API through sidecar/proxy/kube-api.ts (it says why: memory).
const NO_CLIENT_NODE = {
  group: ["@kubernetes/*"],
  message:
    "memory: @kubernetes/client-node costs every injected sidecar ~32 MiB at idle; use sidecar/proxy/kube-api.ts (docs/decisions.md)",
};

// Imported by both sides, so importing neither (sidecar/process, sidecar/tls/der.ts and x509.ts).
const NEUTRAL = {
  group: ["../*", "**/sidecar/**", "**/operator/**"],
  message:
    "architecture: sidecar/process (and sidecar/tls/der.ts, sidecar/tls/x509.ts, sidecar/net/address.ts) is neutral, imported by both sides: it imports nothing from the rest of sidecar/ or from operator/",
};

const NEUTRAL_TLS = {
  regex: "^\\./(?!(der|x509)\\.ts$)",
  message:
    "architecture: sidecar/tls/der.ts and sidecar/tls/x509.ts are neutral: of sidecar/tls they import only each other",
};

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
  // Architecture (docs/architecture.md, "Import rules"). ESLint keeps one configuration of a rule
  // per file (the last matching block wins), so each block below lists every restriction of its
  // file group. Tests (and their fixtures and harnesses) may reach inside any module: they start
  // real sidecars and build real bundles; only "the sidecar never imports the operator" binds them.
  {
    files: ["sidecar/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [SIDECAR_NOT_OPERATOR] }] },
  },
  {
    files: ["sidecar/**/*.ts"],
    ignores: TESTS,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: [HTTP_THROUGH_GETBUILTIN],
          patterns: [SIDECAR_NOT_OPERATOR, POLICY_THROUGH_INDEX, NO_CLIENT_NODE],
        },
      ],
    },
  },
  {
    // The pure policy core must not touch I/O: keep sockets, files and clients out of it.
    files: ["sidecar/policy/**/*.ts"],
    ignores: TESTS,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["node:*", "@kubernetes/*", "../*", "!../constants.ts"],
              message: "architecture: sidecar/policy is pure: no I/O, no imports from outside it.",
            },
            SIDECAR_NOT_OPERATOR,
          ],
        },
      ],
    },
  },
  {
    // Process plumbing both sides use; and the DER encoder and X.509 builder the operator's PKI
    // shares with the CA.
    files: ["sidecar/process/**/*.ts", "sidecar/tls/der.ts", "sidecar/tls/x509.ts", "sidecar/net/address.ts"],
    ignores: TESTS,
    rules: { "no-restricted-imports": ["error", { paths: [HTTP_THROUGH_GETBUILTIN], patterns: [NEUTRAL] }] },
  },
  {
    // The rest of sidecar/tls is not neutral: the encoder and builder reach only each other.
    files: ["sidecar/tls/der.ts", "sidecar/tls/x509.ts"],
    ignores: TESTS,
    rules: {
      "no-restricted-imports": [
        "error",
        { paths: [HTTP_THROUGH_GETBUILTIN], patterns: [NEUTRAL, NEUTRAL_TLS] },
      ],
    },
  },
  {
    files: ["operator/**/*.ts"],
    ignores: TESTS,
    rules: { "no-restricted-imports": ["error", { patterns: [OPERATOR_SIDECAR_SURFACE] }] },
  },
  {
    files: ["operator/core/**/*.ts"],
    ignores: TESTS,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["node:*", "@kubernetes/*"],
              message: "architecture: operator/core is pure (no node:*, no @kubernetes/*)",
            },
            {
              regex: "(^|/)kube/",
              message:
                "architecture: operator/core never imports operator/kube (the Cluster seam calls the core, not the reverse)",
            },
            {
              regex: "^\\.\\./(?!kube/|\\.\\./sidecar/(policy/index|constants)\\.ts$)",
              message:
                "architecture: operator/core imports only operator/core, sidecar/policy/index.ts and sidecar/constants.ts",
            },
          ],
        },
      ],
    },
  },
  {
    // Small functions outside tests; declarative tables say so with a disable comment and a reason.
    files: ["**/*.ts"],
    ignores: TESTS,
    rules: { "max-lines-per-function": ["error", { max: 80, skipBlankLines: true, skipComments: true }] },
  },
);
