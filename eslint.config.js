// @ts-check
/**
 * Lint rules, and the layer rules of ARCHITECTURE (the design brief, section 2): the folder a file
 * lives in says where it runs, and so what it may import.
 *
 *   src/common  nothing runtime-specific           src/cli   all of src/, Node
 *   src/core    src/common; node:crypto/events/util   src/hub   src/common, src/core, Node
 *   src/node    src/common, src/core, Node           main/     src/, electron
 *   renderer/   src/common only
 *
 * Each folder gets one `no-restricted-imports` setting (ESLint does not merge a rule's options
 * across config objects, so the lists are built whole below). A dynamic `import()` is checked
 * by `no-restricted-syntax` in the folders that must stay pure, and test/unit/purity.test.ts
 * follows what the pure layers reach through packages.
 */
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Node's built-in modules without their `node:` prefix (`fs`, `fs/promises`, ...). */
const BARE_BUILTINS = builtinModules.filter((name) => !name.startsWith('_') && !name.startsWith('node:'));

/**
 * The globals of the Node that runs ESLint (process, Buffer, fetch, Request, AbortController, ...),
 * for plain JavaScript files; taken from Node itself so the list follows the Node version.
 */
const NODE_GLOBALS = Object.fromEntries(Object.getOwnPropertyNames(globalThis).map((name) => [name, 'readonly']));

/** Patterns of no-restricted-imports: gitignore-style `group`s or a `regex`, each with its reason. */
const forbid = {
  electron: { group: ['electron', 'electron/*', '@electron/*'], message: 'electron belongs in main/ only.' },
  react: {
    group: ['react', 'react/*', 'react-dom', 'react-dom/*'],
    message: 'React belongs in renderer/ only.',
  },
  /** Every `node:` module; `allowed` names the exceptions (`['crypto']` lets `node:crypto` through). */
  nodePrefixed: (/** @type {string} */ message, /** @type {string[]} */ allowed = []) => ({
    group: ['node:*', ...allowed.map((name) => `!node:${name}`)],
    message,
  }),
  /** Built-ins written without `node:`; always refused here, so a reader sees at once what is Node. */
  bareBuiltins: (/** @type {string} */ message) => ({
    regex: `^(${BARE_BUILTINS.map((name) => name.replace(/[/]/g, '\\/')).join('|')})(\\/.*)?$`,
    caseSensitive: true,
    message,
  }),
  /** Relative imports into sibling folders of src/ (`../core/x.js` from src/common/y.ts). */
  srcSiblings: (/** @type {string[]} */ folders, /** @type {string} */ message) => ({
    regex: `^(\\.\\./)+(${folders.join('|')})(\\/|$)`,
    caseSensitive: true,
    message,
  }),
  /** Relative imports that climb out of src/ into the shells. */
  shells: {
    regex: '^(\\.\\./)+(main|renderer)(\\/|$)',
    caseSensitive: true,
    message: 'src/ never imports the shells (main/, renderer/); they import src/.',
  },
};

/** Adapter packages that belong in src/node or src/hub, never in the pure layers. */
const ADAPTER_PACKAGES = {
  group: ['better-sqlite3', 'pg', 'keytar', '@napi-rs/keyring', 'openid-client', 'express', '@hono/node-server'],
  message: 'This package is an adapter: wrap it in src/node (or src/hub) behind a port declared in src/core.',
};

/** An error-level no-restricted-imports with these patterns. */
const restrictImports = (/** @type {object[]} */ ...patterns) => ['error', { patterns }];

/**
 * In the pure folders, `import()` must name a literal the layer rules can check, and must not name
 * what a static import could not.
 */
const restrictDynamicImports = (/** @type {string} */ forbiddenRegex, /** @type {string} */ message) => [
  'error',
  {
    selector: `ImportExpression[source.type='Literal'][source.value=/${forbiddenRegex}/]`,
    message,
  },
  {
    selector: "ImportExpression[source.type!='Literal']",
    message: 'A computed import() cannot be checked against the layer rules: import a literal specifier.',
  },
];

export default defineConfig(
  {
    ignores: ['dist/', 'out/', 'coverage/', 'node_modules/', 'test/fixtures/**/node_modules/', '.vite/', 'test-results/'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Plain JavaScript here runs under Node: the bin/ launcher, scripts and this file.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: NODE_GLOBALS },
  },

  // --- Layer rules -------------------------------------------------------------------------
  {
    files: ['src/common/**/*.{ts,tsx,mts,cts}'],
    rules: {
      'no-restricted-imports': restrictImports(
        forbid.nodePrefixed('src/common runs anywhere (Node, Electron, the browser): no Node modules.'),
        forbid.bareBuiltins('src/common runs anywhere (Node, Electron, the browser): no Node modules.'),
        forbid.electron,
        forbid.react,
        ADAPTER_PACKAGES,
        forbid.srcSiblings(['core', 'node', 'cli', 'hub'], 'src/common imports nothing else of src/: everything else imports it.'),
        forbid.shells,
      ),
      'no-restricted-syntax': restrictDynamicImports(
        '^(node:|electron|react|\\.\\.\\/(core|node|cli|hub|main|renderer)(\\/|$))',
        'src/common imports nothing runtime-specific and nothing else of src/.',
      ),
    },
  },
  {
    files: ['src/core/**/*.{ts,tsx,mts,cts}'],
    rules: {
      'no-restricted-imports': restrictImports(
        forbid.nodePrefixed('src/core may use only node:crypto, node:events and node:util of Node; anything else is an adapter in src/node behind a port.', [
          'crypto',
          'events',
          'util',
        ]),
        forbid.bareBuiltins('Write Node modules with the node: prefix (and src/core may use only node:crypto, node:events, node:util).'),
        forbid.electron,
        forbid.react,
        ADAPTER_PACKAGES,
        forbid.srcSiblings(['node', 'cli', 'hub'], 'src/core imports only src/common: adapters depend on the core, not the other way round.'),
        forbid.shells,
      ),
      'no-restricted-syntax': restrictDynamicImports(
        '^(node:(?!(crypto|events|util)$)|electron|react|(\\.\\.\\/)+(node|cli|hub|main|renderer)(\\/|$))',
        'src/core imports only src/common, and of Node only node:crypto, node:events and node:util.',
      ),
    },
  },
  {
    files: ['src/node/**/*.{ts,tsx,mts,cts}'],
    rules: {
      'no-restricted-imports': restrictImports(
        forbid.electron,
        forbid.react,
        forbid.srcSiblings(['cli', 'hub'], 'src/node holds adapters for the core; the commands (src/cli) and the hub (src/hub) use it, not the reverse.'),
        forbid.shells,
      ),
    },
  },
  {
    files: ['src/hub/**/*.{ts,tsx,mts,cts}'],
    rules: {
      'no-restricted-imports': restrictImports(
        forbid.electron,
        forbid.react,
        forbid.srcSiblings(['node', 'cli'], 'src/hub imports src/common, src/core and Node; it runs on a server, not a desktop.'),
        forbid.shells,
      ),
    },
  },
  {
    files: ['src/cli/**/*.{ts,tsx,mts,cts}'],
    rules: {
      'no-restricted-imports': restrictImports(forbid.electron, forbid.react, forbid.shells),
    },
  },
  {
    files: ['main/**/*.{ts,tsx,mts,cts}'],
    rules: {
      'no-restricted-imports': restrictImports(forbid.react, {
        regex: '^(\\.\\./)+renderer(\\/|$)',
        caseSensitive: true,
        message: 'main/ talks to the renderer only through the declared IPC contract in src/common.',
      }),
    },
  },
  {
    files: ['renderer/**/*.{ts,tsx,mts,cts}'],
    rules: {
      'no-restricted-imports': restrictImports(
        forbid.nodePrefixed('renderer/ runs in a sandboxed page: no Node modules.'),
        forbid.bareBuiltins('renderer/ runs in a sandboxed page: no Node modules.'),
        forbid.electron,
        ADAPTER_PACKAGES,
        {
          regex: '^(\\.\\./)+src\\/(?!common(\\/|$))',
          caseSensitive: true,
          message: 'renderer/ imports only src/common; everything else reaches it through the preload IPC contract.',
        },
        {
          regex: '^(\\.\\./)+main(\\/|$)',
          caseSensitive: true,
          message: 'renderer/ never imports main/; it reaches it through the preload IPC contract.',
        },
      ),
      'no-restricted-syntax': restrictDynamicImports(
        '^(node:|electron|(\\.\\.\\/)+(main(\\/|$)|src\\/(?!common(\\/|$))))',
        'renderer/ imports only src/common.',
      ),
    },
  },
);
