// `npm run lint`: type-aware rules for the TypeScript (Worker, Durable Objects, tests), plain rules
// for the Node scripts, and the dependency rules of docs/architecture.md ("Dependency rules").
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";
import { importX } from "eslint-plugin-import-x";
import globals from "globals";
import tseslint from "typescript-eslint";

const TS_PROJECTS = ["./tsconfig.json", "./test/node.tsconfig.json"];
/** Files of test/node.tsconfig.json; everything else is typed by ./tsconfig.json. */
const NODE_TESTS = ["test/e2e/**/*.ts", "test/elasticsearch/**/*.ts", "test/support/**/*.ts"];

/** `src/` reaches Durable Objects only through `src/durable-stubs.ts`; it never imports `durable/`. */
const NO_DURABLE_FROM_SRC = {
  regex: String.raw`(^|/)durable(/|$)`,
  message: "src/ must not import durable/: put the contract in src/ and reach objects through src/durable-stubs.ts.",
};

export default defineConfig(
  // src/opamp/gen/: protoc-gen-es output (scripts/opamp-codegen.sh), not edited by hand.
  { ignores: ["node_modules/", ".wrangler/", "dist/", "test-output/", "bench-results/", ".cache/", "src/opamp/gen/"] },

  {
    files: ["**/*.ts"],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    plugins: { "import-x": importX },
    languageOptions: {
      parserOptions: { project: "./tsconfig.json", tsconfigRootDir: import.meta.dirname },
    },
    settings: {
      "import-x/extensions": [".ts"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts"] },
      "import-x/resolver-next": [createTypeScriptImportResolver({ project: TS_PROJECTS, noWarnOnMultipleProjects: true })],
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      // Value imports only: a type-only import creates no cycle at run time.
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Object RPC methods and interface implementations are async by contract, awaiting or not; a
      // forgotten await is what no-floating-promises catches.
      "@typescript-eslint/require-await": "off",
      // `interface Env extends FleetEnv {}` is how a declaration merges into the runtime's types.
      "@typescript-eslint/no-empty-object-type": ["error", { allowInterfaces: "with-single-extends" }],
    },
  },

  // The Node-side tests (they start `npm start` and talk to it) have their own compiler settings.
  {
    files: [...NODE_TESTS],
    languageOptions: { parserOptions: { project: "./test/node.tsconfig.json" } },
  },

  // Asymmetric matchers (`expect.any(String)`, `expect.objectContaining(…)`) are typed `any` by vitest.
  {
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-unsafe-assignment": "off" },
  },

  // The Worker side never imports the objects' code (see NO_DURABLE_FROM_SRC). src/index.ts, the
  // Worker's entry point, exports the object classes for the runtime.
  {
    files: ["src/**/*.ts"],
    ignores: ["src/durable-stubs.ts", "src/index.ts"],
    rules: { "@typescript-eslint/no-restricted-imports": ["error", { patterns: [NO_DURABLE_FROM_SRC] }] },
  },
  // Object ids are made in one place, so every caller names an object the same way.
  {
    files: ["src/**/*.ts"],
    ignores: ["src/durable-stubs.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "CallExpression[callee.property.name=/^(idFromName|idFromString|newUniqueId)$/]",
          message: "src/ reaches Durable Objects through src/durable-stubs.ts.",
        },
      ],
    },
  },
  // The stubs type their RPC with the object classes (`Remote<T>`) and import nothing else from durable/.
  {
    files: ["src/durable-stubs.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", { patterns: [{ ...NO_DURABLE_FROM_SRC, allowTypeImports: true }] }],
    },
  },

  {
    files: ["scripts/**/*.mjs", "eslint.config.js"],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },
  // The console's scripts run in the browser as plain ES modules (no build step).
  {
    files: ["public/**/*.js"],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.browser, sourceType: "module" },
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Agent data is set as text only (public/console/dom.js); markup sinks are not used at all.
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "build nodes with el() from dom.js" },
        { property: "outerHTML", message: "build nodes with el() from dom.js" },
        { property: "insertAdjacentHTML", message: "build nodes with el() from dom.js" },
        { object: "document", property: "write", message: "build nodes with el() from dom.js" },
      ],
    },
  },
  // The benchmark's bare Worker runs in workerd, not Node.
  {
    files: ["scripts/bench/bare-worker.mjs"],
    languageOptions: { globals: { ...globals.serviceworker, WebSocketPair: "readonly" } },
  },
);
