/**
 * The core and the common layer stay pure: from any file in src/core or src/common, following every
 * runtime import (relative files, then packages through node_modules and their own imports, to the
 * end), neither Electron, React, the DOM nor Node's process, file and network modules are reachable.
 * That is what lets the core run under plain Node, in Electron's main process, or later in a
 * utility process, unchanged. ESLint checks each file's own imports (eslint.config.js); this test
 * checks what those imports drag in.
 *
 * Type-only imports (`import type`, `export type`) are not followed: they are erased at run time.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Packages the pure layers must never reach, matched by package name (so also when not installed). */
const FORBIDDEN_PACKAGES = new Set(['electron', 'react', 'react-dom']);
/** Node built-ins the pure layers must never reach: spawning processes, the file system, the network. */
const FORBIDDEN_BUILTINS = new Set(['child_process', 'fs', 'fs/promises', 'net', 'http', 'https', 'http2']);
/** Browser globals; a member access on one of them (`document.body`, `window.open`) is DOM usage. */
const DOM_GLOBALS = new Set(['document', 'window']);
/** What src/core may import of Node (src/common may import none). */
const CORE_BUILTINS = new Set(['crypto', 'events', 'util']);

const BUILTINS = new Set(builtinModules);
/** Conditions Node uses when resolving package exports for `import` and for `require`. */
const IMPORT_CONDITIONS = new Set(['node', 'import', 'module-sync', 'default']);
const REQUIRE_CONDITIONS = new Set(['node', 'require', 'module-sync', 'default']);

type ImportKind = 'import' | 'dynamic import()' | 'require()';

interface ModuleImport {
  specifier: string;
  kind: ImportKind;
  line: number;
}

interface ParsedModule {
  imports: ModuleImport[];
  /** `document.x` / `window.x` uses, as `document.createElement` with its line. */
  domUses: { text: string; line: number }[];
  /** Lines of `import(expr)` whose specifier is not a literal, so cannot be followed. */
  computedImports: number[];
}

/** Reads a file's runtime imports and DOM uses from its syntax tree (comments and strings are never mistaken for code). */
function parseModule(file: string): ParsedModule {
  const text = readFileSync(file, 'utf8');
  const ext = extname(file);
  const kind = ext === '.tsx' ? ts.ScriptKind.TSX : /\.[mc]?ts$/.test(ext) ? ts.ScriptKind.TS : ts.ScriptKind.JS;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const result: ParsedModule = { imports: [], domUses: [], computedImports: [] };
  const literal = (node: ts.Node | undefined) =>
    node !== undefined && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined;

  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const specifier = literal(node.moduleSpecifier);
      // `import type` is erased; `import { type A }` is not (verbatimModuleSyntax keeps the import).
      if (specifier !== undefined && node.importClause?.isTypeOnly !== true) {
        result.imports.push({ specifier, kind: 'import', line: lineOf(node) });
      }
    } else if (ts.isExportDeclaration(node)) {
      const specifier = literal(node.moduleSpecifier);
      if (specifier !== undefined && !node.isTypeOnly) result.imports.push({ specifier, kind: 'import', line: lineOf(node) });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const specifier = literal(node.moduleReference.expression);
      if (specifier !== undefined && !node.isTypeOnly) result.imports.push({ specifier, kind: 'require()', line: lineOf(node) });
    } else if (ts.isCallExpression(node)) {
      const [first] = node.arguments;
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        const specifier = literal(first);
        if (specifier === undefined) result.computedImports.push(lineOf(node));
        else result.imports.push({ specifier, kind: 'dynamic import()', line: lineOf(node) });
      } else if (ts.isIdentifier(node.expression) && node.expression.text === 'require' && node.arguments.length === 1) {
        const specifier = literal(first);
        if (specifier !== undefined) result.imports.push({ specifier, kind: 'require()', line: lineOf(node) });
      }
    } else if (
      (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) &&
      ts.isIdentifier(node.expression) &&
      DOM_GLOBALS.has(node.expression.text) &&
      !isLocallyBound(node.expression)
    ) {
      result.domUses.push({ text: node.getText(source).slice(0, 60), line: lineOf(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return result;
}

/** True when `name` (an identifier or a destructuring pattern) binds `wanted`. */
function bindsName(name: ts.BindingName, wanted: string): boolean {
  if (ts.isIdentifier(name)) return name.text === wanted;
  return name.elements.some((element) => !ts.isOmittedExpression(element) && bindsName(element.name, wanted));
}

/** True when a statement declares `wanted` in the block that holds it. */
function statementDeclares(statement: ts.Statement, wanted: string): boolean {
  if (ts.isVariableStatement(statement)) return statement.declarationList.declarations.some((d) => bindsName(d.name, wanted));
  if (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isEnumDeclaration(statement)) {
    return statement.name?.text === wanted;
  }
  if (ts.isImportDeclaration(statement)) {
    const clause = statement.importClause;
    if (clause?.name?.text === wanted) return true;
    const bindings = clause?.namedBindings;
    if (bindings === undefined) return false;
    return ts.isNamespaceImport(bindings) ? bindings.name.text === wanted : bindings.elements.some((e) => e.name.text === wanted);
  }
  return false;
}

/** True when a `var` anywhere in `body`, outside nested functions, declares `wanted` (var is hoisted to the function). */
function hoistedVarDeclares(body: ts.Node, wanted: string): boolean {
  let found = false;
  const visit = (node: ts.Node): void => {
    if (found || (node !== body && ts.isFunctionLike(node))) return;
    if (ts.isVariableDeclarationList(node) && (node.flags & ts.NodeFlags.BlockScoped) === 0) {
      found = node.declarations.some((d) => bindsName(d.name, wanted));
    }
    ts.forEachChild(node, visit);
  };
  visit(body);
  return found;
}

/** True when a scope node itself declares `wanted` (parameters, block declarations, catch and loop variables, hoisted vars). */
function scopeDeclares(scope: ts.Node, wanted: string): boolean {
  if (ts.isFunctionLike(scope)) {
    if (scope.parameters.some((p) => bindsName(p.name, wanted))) return true;
    if (ts.isFunctionExpression(scope) && scope.name?.text === wanted) return true;
    return 'body' in scope && scope.body !== undefined && hoistedVarDeclares(scope.body as ts.Node, wanted);
  }
  if (ts.isSourceFile(scope)) return scope.statements.some((s) => statementDeclares(s, wanted)) || hoistedVarDeclares(scope, wanted);
  if (ts.isBlock(scope) || ts.isModuleBlock(scope)) return scope.statements.some((s) => statementDeclares(s, wanted));
  if (ts.isCaseBlock(scope)) return scope.clauses.some((c) => c.statements.some((s) => statementDeclares(s, wanted)));
  if (ts.isCatchClause(scope)) return scope.variableDeclaration !== undefined && bindsName(scope.variableDeclaration.name, wanted);
  if (ts.isForStatement(scope) || ts.isForInStatement(scope) || ts.isForOfStatement(scope)) {
    const init = scope.initializer;
    return init !== undefined && ts.isVariableDeclarationList(init) && init.declarations.some((d) => bindsName(d.name, wanted));
  }
  if (ts.isClassExpression(scope)) return scope.name?.text === wanted;
  return false;
}

/**
 * True when `identifier` refers to a binding the file declares (`const window = new ProbeWindow()`),
 * not to the global of that name.
 */
function isLocallyBound(identifier: ts.Identifier): boolean {
  for (let scope: ts.Node | undefined = identifier.parent; scope !== undefined; scope = scope.parent) {
    if (scopeDeclares(scope, identifier.text)) return true;
  }
  return false;
}

/** `node:fs/promises` and `fs/promises` → `fs/promises`; undefined for anything that is not a built-in. */
function builtinName(specifier: string): string | undefined {
  if (specifier.startsWith('node:')) return specifier.slice('node:'.length);
  return BUILTINS.has(specifier) ? specifier : undefined;
}

/** `@scope/name/sub/path` → [`@scope/name`, `./sub/path`]; `name` → [`name`, `.`]. */
function splitPackageSpecifier(specifier: string): [string, string] {
  const parts = specifier.split('/');
  const nameLength = specifier.startsWith('@') ? 2 : 1;
  const rest = parts.slice(nameLength).join('/');
  return [parts.slice(0, nameLength).join('/'), rest === '' ? '.' : `./${rest}`];
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Picks the target of an `exports`/`imports` value under the given conditions, Node's way (first matching key wins). */
function pickTarget(target: unknown, conditions: Set<string>, star: string | undefined): string | undefined {
  if (typeof target === 'string') return star === undefined ? target : target.replaceAll('*', star);
  if (Array.isArray(target)) {
    for (const item of target) {
      const picked = pickTarget(item, conditions, star);
      if (picked !== undefined) return picked;
    }
    return undefined;
  }
  if (typeof target === 'object' && target !== null) {
    for (const [condition, value] of Object.entries(target)) {
      if (!conditions.has(condition)) continue;
      const picked = pickTarget(value, conditions, star);
      if (picked !== undefined) return picked;
    }
  }
  return undefined;
}

/** Looks `key` up in a subpath map (`exports` or `imports`), exact keys first, then the longest matching `*` pattern. */
function matchSubpath(map: Record<string, unknown>, key: string, conditions: Set<string>): string | undefined {
  if (key in map) return pickTarget(map[key], conditions, undefined);
  let best: { prefix: string; star: string; value: unknown } | undefined;
  for (const [pattern, value] of Object.entries(map)) {
    const at = pattern.indexOf('*');
    if (at < 0) continue;
    const prefix = pattern.slice(0, at);
    const suffix = pattern.slice(at + 1);
    if (key.length < pattern.length - 1 || !key.startsWith(prefix) || !key.endsWith(suffix)) continue;
    if (best === undefined || prefix.length > best.prefix.length) {
      best = { prefix, star: key.slice(prefix.length, key.length - suffix.length), value };
    }
  }
  return best === undefined ? undefined : pickTarget(best.value, conditions, best.star);
}

/** CommonJS-style file lookup, used for package entry points without `exports` and for relative imports inside packages. */
function resolveJsFile(path: string): string | undefined {
  for (const candidate of [path, `${path}.js`, `${path}.cjs`, `${path}.mjs`, `${path}.json`]) {
    if (isFile(candidate)) return candidate;
  }
  const manifest = readJson(join(path, 'package.json'));
  if (typeof manifest?.['main'] === 'string') {
    const main = resolveJsFile(join(path, manifest['main']));
    if (main !== undefined) return main;
  }
  for (const index of ['index.js', 'index.cjs', 'index.mjs', 'index.json']) {
    if (isFile(join(path, index))) return join(path, index);
  }
  return undefined;
}

/** A relative import in TypeScript source names the emitted file: `./x.js` is `./x.ts` on disk. */
function resolveTsFile(path: string): string | undefined {
  const swaps: [RegExp, string[]][] = [
    [/\.js$/, ['.ts', '.tsx']],
    [/\.mjs$/, ['.mts']],
    [/\.cjs$/, ['.cts']],
  ];
  for (const [pattern, extensions] of swaps) {
    if (!pattern.test(path)) continue;
    for (const ext of extensions) {
      const candidate = path.replace(pattern, ext);
      if (isFile(candidate)) return candidate;
    }
  }
  return resolveJsFile(path) ?? [`${path}.ts`, join(path, 'index.ts')].find(isFile);
}

function findUp(fromDir: string, relativePath: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, relativePath);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Resolves a bare specifier from `fromFile` through node_modules, honouring `exports` with Node's conditions. */
function resolvePackage(specifier: string, fromFile: string, conditions: Set<string>): string | undefined {
  const [name, subpath] = splitPackageSpecifier(specifier);
  const packageDir = findUp(dirname(fromFile), join('node_modules', name));
  if (packageDir === undefined) return undefined;
  const manifest = readJson(join(packageDir, 'package.json')) ?? {};
  const exportsField = manifest['exports'];
  if (exportsField !== undefined && exportsField !== null) {
    const map =
      typeof exportsField === 'object' && !Array.isArray(exportsField) && Object.keys(exportsField).some((k) => k.startsWith('.'))
        ? (exportsField as Record<string, unknown>)
        : { '.': exportsField };
    const target = matchSubpath(map, subpath, conditions);
    return target === undefined ? undefined : [join(packageDir, target)].find(isFile);
  }
  return resolveJsFile(join(packageDir, subpath));
}

/** Resolves `#internal` specifiers through the `imports` field of the importing file's own package. */
function resolvePackageImport(specifier: string, fromFile: string, conditions: Set<string>): string | undefined {
  const manifestPath = findUp(dirname(fromFile), 'package.json');
  if (manifestPath === undefined) return undefined;
  const imports = readJson(manifestPath)?.['imports'];
  if (typeof imports !== 'object' || imports === null) return undefined;
  const target = matchSubpath(imports as Record<string, unknown>, specifier, conditions);
  if (target === undefined) return undefined;
  if (!target.startsWith('./')) return resolvePackage(target, manifestPath, conditions);
  return [join(dirname(manifestPath), target)].find(isFile);
}

function realFile(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

type FindingKind = 'forbidden module' | 'DOM global' | 'unresolved import' | 'computed import' | 'layer';

interface Finding {
  kind: FindingKind;
  /** What was reached: `node:child_process`, `electron`, `document.createElement`, a file. */
  target: string;
  /** The chain from an entry file to the file that reaches `target`, as readable lines. */
  chain: string[];
}

interface WalkOptions {
  /** Paths in findings are shown relative to this directory. */
  root: string;
  entries: string[];
  /**
   * Folders (absolute) of the project's own code the walk may enter. Reaching a file of the project
   * outside them (such as src/node from src/core) is a `layer` finding.
   */
  allowedDirs: string[];
}

interface WalkResult {
  findings: Finding[];
  /** Every file reached, entries included. */
  files: Set<string>;
}

/**
 * Walks the runtime import graph breadth first from every entry, so each finding carries a
 * shortest chain. Files are followed into node_modules to the end of the graph; built-ins and
 * forbidden packages end a chain.
 */
function walkImportGraph(options: WalkOptions): WalkResult {
  // Compared with real paths throughout, so that a checkout reached through a symlink walks the same.
  const root = realFile(options.root);
  const entries = options.entries.map(realFile);
  const allowedDirs = options.allowedDirs.map(realFile);
  const show = (file: string) => relative(root, file).split(sep).join('/');
  const inNodeModules = (file: string) => file.split(sep).includes('node_modules');
  const inAllowedDir = (file: string) => allowedDirs.some((dir) => file === dir || file.startsWith(dir + sep));
  /** How each file was first reached: the file that imported it, and how. */
  const reachedFrom = new Map<string, { from: string; how: string } | undefined>();
  const findings: Finding[] = [];

  const chainTo = (file: string): string[] => {
    const lines: string[] = [];
    for (let at: string | undefined = file; at !== undefined;) {
      const step = reachedFrom.get(at);
      lines.unshift(step === undefined ? show(at) : `→ ${show(at)}  (${step.how})`);
      at = step?.from;
    }
    return lines;
  };
  const report = (kind: FindingKind, target: string, file: string, how: string) =>
    findings.push({ kind, target, chain: [...chainTo(file), `→ ${target}  (${how})`] });

  const queue: string[] = [];
  for (const file of entries) {
    if (!reachedFrom.has(file)) {
      reachedFrom.set(file, undefined);
      queue.push(file);
    }
  }

  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const file = next;
    if (!/\.[mc]?[jt]sx?$/.test(file) || file.endsWith('.d.ts')) continue; // JSON, WebAssembly, native addons: no imports to read
    const own = !inNodeModules(file);
    if (own && !inAllowedDir(file)) {
      const step = reachedFrom.get(file);
      if (step !== undefined) report('layer', show(file), step.from, step.how);
      continue;
    }
    const parsed = parseModule(file);
    for (const use of parsed.domUses) report('DOM global', use.text, file, `line ${use.line}`);
    if (own) for (const line of parsed.computedImports) report('computed import', 'import(<expression>)', file, `line ${line}`);

    for (const { specifier, kind, line } of parsed.imports) {
      const how = `${kind} '${specifier}', line ${line}`;
      const builtin = builtinName(specifier);
      if (builtin !== undefined) {
        if (FORBIDDEN_BUILTINS.has(builtin)) report('forbidden module', `node:${builtin}`, file, how);
        continue;
      }
      const conditions = kind === 'require()' ? REQUIRE_CONDITIONS : IMPORT_CONDITIONS;
      let target: string | undefined;
      if (specifier.startsWith('.') || isAbsolute(specifier)) {
        const path = resolve(dirname(file), specifier);
        target = own ? resolveTsFile(path) : resolveJsFile(path);
      } else if (specifier.startsWith('#')) {
        target = resolvePackageImport(specifier, file, conditions);
      } else {
        const [name] = splitPackageSpecifier(specifier);
        if (FORBIDDEN_PACKAGES.has(name)) {
          report('forbidden module', specifier, file, how);
          continue;
        }
        target = resolvePackage(specifier, file, conditions);
      }
      if (target === undefined) {
        // Inside packages an unresolvable import is usually an optional dependency behind a try/catch.
        if (own) report('unresolved import', specifier, file, how);
        continue;
      }
      target = realFile(target);
      if (!reachedFrom.has(target)) {
        reachedFrom.set(target, { from: file, how });
        queue.push(target);
      }
    }
  }
  return { findings, files: new Set(reachedFrom.keys()) };
}

function describeFindings(findings: Finding[]): string {
  return findings.map((f) => `${f.kind}: ${f.target}\n    ${f.chain.join('\n    ')}`).join('\n\n');
}

/** Every TypeScript source under `dir` (declaration files excluded). */
function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.[mc]?tsx?$/.test(entry.name) && !/\.d\.[mc]?ts$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

describe('the pure layers (src/core and src/common)', () => {
  const pureDirs = [join(REPO, 'src/core'), join(REPO, 'src/common')];
  const entries = pureDirs.flatMap(sourceFiles);
  let walk: WalkResult;
  const findingsOf = (...kinds: FindingKind[]) => walk.findings.filter((f) => kinds.includes(f.kind));

  beforeAll(() => {
    walk = walkImportGraph({ root: REPO, entries, allowedDirs: pureDirs });
  });

  it('have source files to check', () => {
    expect(entries.length).toBeGreaterThan(0);
  });

  it('reach neither electron, react nor react-dom, through any package', () => {
    const found = findingsOf('forbidden module').filter((f) => !f.target.startsWith('node:'));
    expect(describeFindings(found)).toBe('');
  });

  it('reach no node:child_process, node:fs, node:net or node:http, through any package', () => {
    const found = findingsOf('forbidden module').filter((f) => f.target.startsWith('node:'));
    expect(describeFindings(found)).toBe('');
  });

  it('use no DOM globals (document, window), nor does any file they reach', () => {
    const found = findingsOf('DOM global');
    expect(describeFindings(found)).toBe('');
  });

  it('import nothing from src/node, src/cli, src/hub, main or renderer', () => {
    const found = findingsOf('layer');
    expect(describeFindings(found)).toBe('');
  });

  it('import only what resolves, by literal specifiers the walk can follow', () => {
    const found = findingsOf('unresolved import', 'computed import');
    expect(describeFindings(found)).toBe('');
  });

  it('src/common imports no Node built-in, and src/core only node:crypto, node:events and node:util', () => {
    const offences: string[] = [];
    for (const file of entries) {
      const inCore = file.startsWith(join(REPO, 'src/core') + sep);
      for (const { specifier, line } of parseModule(file).imports) {
        const builtin = builtinName(specifier);
        if (builtin === undefined) continue;
        if (!inCore || !CORE_BUILTINS.has(builtin.split('/')[0] ?? builtin)) offences.push(`${relative(REPO, file)}:${line} imports '${specifier}'`);
        else if (!specifier.startsWith('node:')) offences.push(`${relative(REPO, file)}:${line} imports '${specifier}'; write 'node:${specifier}'`);
      }
    }
    expect(offences.join('\n')).toBe('');
  });
});

describe('the import graph walker', () => {
  let fixture: string;
  const at = (path: string) => join(fixture, path);
  const plant = (files: Record<string, string>) => {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(at(path)), { recursive: true });
      writeFileSync(at(path), text);
    }
  };
  const walkFixture = (...entries: string[]) => walkImportGraph({ root: fixture, entries: entries.map(at), allowedDirs: [at('src/core'), at('src/common')] });

  beforeAll(() => {
    fixture = realFile(mkdtempSync(join(tmpdir(), 'gatehouse-purity-')));
    plant({
      // A core module whose helper leads, two packages deep, to child_process.
      'src/core/entry.ts': "import { helper } from '../common/helper.js';\nexport const run = helper;\n",
      'src/common/helper.ts': "import { spawnIt } from 'fixture-spawner';\nexport const helper = spawnIt;\n",
      'node_modules/fixture-spawner/package.json': JSON.stringify({
        name: 'fixture-spawner',
        type: 'module',
        exports: { '.': { browser: './browser.js', import: './esm/index.js', require: './cjs/index.cjs' } },
      }),
      'node_modules/fixture-spawner/esm/index.js': "export { spawnIt } from './spawn.js';\n",
      'node_modules/fixture-spawner/esm/spawn.js': "import { run } from 'fixture-deep';\nexport const spawnIt = run;\n",
      // Not reached: Node picks `import` over `browser`, and this walk resolves as Node does.
      'node_modules/fixture-spawner/browser.js': "export const spawnIt = () => document.createElement('div');\n",
      'node_modules/fixture-deep/package.json': JSON.stringify({ name: 'fixture-deep', main: 'lib/index.js' }),
      'node_modules/fixture-deep/lib/index.js': "const cp = require('child_process');\nexports.run = () => cp.spawn('true');\n",

      // Reached only through a dynamic import(); the package touches the DOM behind a typeof guard.
      'src/core/lazy.ts': "export async function load() {\n  return import('fixture-ui');\n}\n",
      'node_modules/fixture-ui/package.json': JSON.stringify({ name: 'fixture-ui', exports: './index.js' }),
      'node_modules/fixture-ui/index.js':
        "// window.alert in a comment is not code\nconst hasDom = typeof window !== 'undefined';\nexport const body = hasDom ? document.body : undefined;\n",

      // A re-export of react, which is not even installed: forbidden by name.
      'src/core/view.ts': "export { useState } from 'fixture-reexport';\n",
      'node_modules/fixture-reexport/package.json': JSON.stringify({ name: 'fixture-reexport', type: 'module', main: 'index.js' }),
      'node_modules/fixture-reexport/index.js': "export * from 'react';\n",

      // Type-only imports are erased at run time; a string that merely mentions electron is not an import.
      'src/core/types-only.ts': "import type { App } from 'electron';\nexport type Shell = App;\nexport const note = \"import 'electron'\";\n",

      // A package whose own variables and parameters happen to be called window and document.
      'src/core/probe.ts': "export { open } from 'fixture-probe';\n",
      'node_modules/fixture-probe/package.json': JSON.stringify({ name: 'fixture-probe', main: 'index.js' }),
      'node_modules/fixture-probe/index.js': [
        'exports.open = function open(transport) {',
        '  const window = { pending: transport };',
        '  return () => window.pending;',
        '};',
        'exports.title = (document) => document.title;',
        'exports.first = ({ document }) => { try { return document.x; } catch (window) { return window.message; } };',
        '',
      ].join('\n'),

      // A core file that reaches into src/node, and one whose import cannot be followed.
      'src/core/leaky.ts': "import { launch } from '../node/launcher.js';\nexport const go = launch;\n",
      'src/node/launcher.ts': "import { spawn } from 'node:child_process';\nexport const launch = spawn;\n",
      'src/core/computed.ts': "const name = 'fixture-ui';\nexport const load = () => import(name);\n",
    });
  });

  afterAll(() => {
    rmSync(fixture, { recursive: true, force: true });
  });

  it('names every file on the chain from a core module to a child_process import two packages deep', () => {
    const { findings } = walkFixture('src/core/entry.ts');
    expect(findings.map((f) => [f.kind, f.target])).toEqual([['forbidden module', 'node:child_process']]);
    const [finding] = findings;
    expect(finding?.chain).toEqual([
      'src/core/entry.ts',
      "→ src/common/helper.ts  (import '../common/helper.js', line 1)",
      "→ node_modules/fixture-spawner/esm/index.js  (import 'fixture-spawner', line 1)",
      "→ node_modules/fixture-spawner/esm/spawn.js  (import './spawn.js', line 1)",
      "→ node_modules/fixture-deep/lib/index.js  (import 'fixture-deep', line 1)",
      "→ node:child_process  (require() 'child_process', line 1)",
    ]);
  });

  it('follows dynamic import() and finds DOM globals in the package it loads, but not in comments or typeof guards', () => {
    const { findings } = walkFixture('src/core/lazy.ts');
    expect(findings.map((f) => [f.kind, f.target])).toEqual([['DOM global', 'document.body']]);
    expect(findings[0]?.chain).toContain("→ node_modules/fixture-ui/index.js  (dynamic import() 'fixture-ui', line 2)");
  });

  it('does not mistake a variable or parameter named window or document for the DOM', () => {
    const { findings, files } = walkFixture('src/core/probe.ts');
    expect(files).toContain(at('node_modules/fixture-probe/index.js'));
    expect(findings).toEqual([]);
  });

  it('follows re-exports and refuses a forbidden package by name even when it is not installed', () => {
    const { findings } = walkFixture('src/core/view.ts');
    expect(findings.map((f) => [f.kind, f.target])).toEqual([['forbidden module', 'react']]);
  });

  it('resolves package exports with the conditions Node uses, not the browser build', () => {
    const { files } = walkFixture('src/core/entry.ts');
    expect(files).toContain(at('node_modules/fixture-spawner/esm/index.js'));
    expect(files).not.toContain(at('node_modules/fixture-spawner/browser.js'));
  });

  it('ignores type-only imports and strings that look like imports', () => {
    expect(walkFixture('src/core/types-only.ts').findings).toEqual([]);
  });

  it('reports a core module that reaches into src/node', () => {
    const { findings } = walkFixture('src/core/leaky.ts');
    expect(findings.map((f) => [f.kind, f.target])).toEqual([['layer', 'src/node/launcher.ts']]);
  });

  it('reports an import() it cannot follow because its specifier is computed', () => {
    const { findings } = walkFixture('src/core/computed.ts');
    expect(findings.map((f) => [f.kind, f.chain.at(-1)])).toEqual([['computed import', '→ import(<expression>)  (line 2)']]);
  });

  it('reports nothing for a module without imports, and reaches only that module', () => {
    plant({ 'src/common/clean.ts': 'export const answer = 42;\n' });
    const { findings, files } = walkFixture('src/common/clean.ts');
    expect(findings).toEqual([]);
    expect([...files]).toEqual([at('src/common/clean.ts')]);
  });
});
