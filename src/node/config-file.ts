/**
 * The configuration file on disk: loading (with exact error locations), variable expansion,
 * first-run creation, atomic edits and change watching. The schema itself is in common/config.ts;
 * users read docs/configuration.md.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { formatPath, parseConfig, type ConfigProblem, type GatehouseConfig } from '../common/config.js';
import { errorMessage } from '../common/errors.js';
import { ensureUserOnlyDir } from './paths.js';
import { isPlainObject } from '../common/objects.js';

/** A config file larger than this is refused unread. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Problems listed in one error before the rest are counted. */
const MAX_LISTED_PROBLEMS = 20;

/** Maps an npm package name to the absolute path of its bin script; throws an Error with a readable message. */
export type BundledResolver = (packageName: string) => string;

export interface LoadOptions {
  /** Defaults to `resolveBundledBin`, which looks next to Gatehouse's own install. */
  bundledResolve?: BundledResolver;
  /** What `${dataDir}` expands to. `${configDir}` is the directory of the file being loaded. */
  dataDir: string;
}

export type LoadResult = { ok: true; config: GatehouseConfig } | { ok: false; error: string };
export type EditResult = { ok: true } | { ok: false; error: string };

/**
 * Reads, checks, expands and validates a config file. Never throws for a problem in the file or
 * in reading it; every error line names the file, then the place (a field path, or line:column for
 * JSON syntax), then the problem.
 */
export async function loadConfigFile(file: string, options: LoadOptions): Promise<LoadResult> {
  const read = await readConfigText(file);
  if (!read.ok) return read;
  const raw = parseJsonText(file, read.text);
  if (!raw.ok) return raw;
  const checked = validateRaw(raw.value, {
    bundledResolve: options.bundledResolve ?? resolveBundledBin,
    dataDir: options.dataDir,
    configDir: path.dirname(path.resolve(file)),
  });
  if (!checked.ok) return { ok: false, error: formatProblems(file, checked.problems) };
  return { ok: true, config: checked.config };
}

/**
 * Writes `defaultFile`'s content to `file` when `file` does not exist yet (mode 0600, in a
 * directory made user-only). A `config.schema.json` next to `defaultFile` is copied next to
 * `file` every time, so that the `$schema` reference in the file resolves to the schema of the
 * installed version.
 */
export async function ensureConfigFile(file: string, defaultFile: string): Promise<{ created: boolean }> {
  const dir = path.dirname(path.resolve(file));
  await ensureUserOnlyDir(dir);

  const schemaSource = path.join(path.dirname(defaultFile), 'config.schema.json');
  const schemaTarget = path.join(dir, 'config.schema.json');
  const schema = await readFile(schemaSource, 'utf8').catch(ignoreMissing);
  if (schema !== undefined && path.resolve(schemaSource) !== schemaTarget) {
    const current = await readFile(schemaTarget, 'utf8').catch(ignoreMissing);
    if (current !== schema) await writeAtomic(schemaTarget, schema);
  }

  if (await exists(file)) return { created: false };
  const text = await readFile(defaultFile, 'utf8');
  await writeAtomic(file, text);
  return { created: true };
}

/**
 * Applies `mutate` to the file's parsed JSON and writes the result atomically (temp file in the
 * same directory, fsync, rename; mode 0600). The result must pass the same checks as
 * `loadConfigFile` (schema and variables); otherwise nothing is written and the error says why.
 *
 * If the file changes on disk while the edit is being prepared, the edit starts again from the new
 * content, so `mutate` may run more than once and should depend only on its argument. Exceptions
 * thrown by `mutate` propagate.
 */
export async function editConfigFile(
  file: string,
  mutate: (raw: Record<string, unknown>) => void,
  options: { bundledResolve?: BundledResolver } = {},
): Promise<EditResult> {
  // Edit the target of a symbolic link (dotfile managers), not the link.
  const target = await realpath(file).catch(() => file);
  for (let attempt = 0; attempt < 5; attempt++) {
    const read = await readConfigText(target);
    if (!read.ok) return read;
    const parsed = parseJsonText(target, read.text);
    if (!parsed.ok) return parsed;
    if (!isPlainObject(parsed.value)) {
      return { ok: false, error: `${target}: the top level must be a JSON object, found ${jsonKind(parsed.value)}` };
    }
    const raw = parsed.value;
    mutate(raw);

    const checked = validateRaw(raw, {
      bundledResolve: options.bundledResolve ?? resolveBundledBin,
      dataDir: '/gatehouse-data-dir',
      configDir: path.dirname(target),
    });
    if (!checked.ok) {
      return { ok: false, error: `the edit was not saved: ${formatProblems(target, checked.problems)}` };
    }
    const text = `${JSON.stringify(raw, null, 2)}\n`;
    if (Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) {
      return { ok: false, error: `the edit was not saved: ${target}: the result would exceed ${MAX_CONFIG_BYTES} bytes` };
    }

    const again = await readConfigText(target);
    if (!again.ok || again.text !== read.text) continue; // someone else wrote in between: redo on top of their change
    try {
      await writeAtomic(target, text);
    } catch (error) {
      return { ok: false, error: `the edit was not saved: ${target}: ${errorMessage(error)}` };
    }
    return { ok: true };
  }
  return { ok: false, error: `the edit was not saved: ${target}: the file kept changing while it was being edited` };
}

export interface ConfigWatcher {
  close(): void;
}

/**
 * Calls `onChange` once after a burst of changes to `file` has been quiet for `debounceMs`
 * (at most `maxWaitMs` after the first change of a burst). Watches the directory, not the file:
 * editors and `editConfigFile` replace the file by renaming, and a deleted and recreated file is
 * seen too. If the directory itself goes away, the watcher re-arms when it is back.
 *
 * `onChange` only says "look again": the caller loads the file and decides.
 */
export function watchConfigFile(
  file: string,
  onChange: () => void,
  options: { debounceMs?: number; maxWaitMs?: number; retryMs?: number } = {},
): ConfigWatcher {
  const debounceMs = options.debounceMs ?? 100;
  const maxWaitMs = options.maxWaitMs ?? 1000;
  const retryMs = options.retryMs ?? 500;
  const dir = path.dirname(path.resolve(file));
  const name = path.basename(file);

  let watcher: FSWatcher | undefined;
  let quiet: NodeJS.Timeout | undefined;
  let burstStart: number | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;

  const fire = () => {
    if (quiet !== undefined) clearTimeout(quiet);
    quiet = undefined;
    burstStart = undefined;
    if (!closed) onChange();
  };
  const changed = () => {
    if (closed) return;
    const now = Date.now();
    burstStart ??= now;
    if (quiet !== undefined) clearTimeout(quiet);
    const wait = Math.max(0, Math.min(debounceMs, burstStart + maxWaitMs - now));
    quiet = setTimeout(fire, wait);
  };
  const lost = () => {
    watcher?.close();
    watcher = undefined;
    if (closed || retry !== undefined) return;
    retry = setTimeout(() => arm(true), retryMs);
    changed();
  };
  const arm = (announce: boolean) => {
    retry = undefined;
    if (closed) return;
    try {
      watcher = watch(dir, { persistent: false }, (event, filename) => {
        // Some platforms omit the name; then any change in the directory counts.
        if (filename === null || filename === name) changed();
        // On Linux a removed directory ends the watch with a 'rename' event and no error.
        if (event === 'rename' && !existsSync(dir)) lost();
      });
    } catch {
      retry = setTimeout(() => arm(true), retryMs);
      return;
    }
    // Typically the directory was removed. Look again when it is back.
    watcher.on('error', lost);
    if (announce) changed();
  };
  arm(false);

  return {
    close() {
      closed = true;
      watcher?.close();
      if (quiet !== undefined) clearTimeout(quiet);
      if (retry !== undefined) clearTimeout(retry);
    },
  };
}

/**
 * The default `${bundled:PACKAGE}` resolver: the absolute path of the bin script of `PACKAGE` as
 * installed with Gatehouse (resolved from this module's location, not from the user's projects).
 * A package with several bins must have one named like the package (without its scope).
 */
export function resolveBundledBin(packageName: string, from: string | URL = import.meta.url): string {
  if (!/^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/.test(packageName)) {
    throw new Error(`"${packageName}" is not an npm package name`);
  }
  const require = createRequire(from);
  let manifestPath: string | undefined;
  try {
    manifestPath = require.resolve(`${packageName}/package.json`);
  } catch (error) {
    // A package whose "exports" hides package.json: look for it along the same search path.
    if ((error as NodeJS.ErrnoException).code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') {
      for (const dir of require.resolve.paths(packageName) ?? []) {
        const candidate = path.join(dir, packageName, 'package.json');
        if (isFile(candidate)) {
          manifestPath = candidate;
          break;
        }
      }
    }
  }
  if (manifestPath === undefined) throw new Error(`package "${packageName}" is not installed with Gatehouse`);

  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read ${manifestPath}: ${errorMessage(error)}`);
  }
  const bin = isPlainObject(manifest) ? manifest['bin'] : undefined;
  let relative: string | undefined;
  if (typeof bin === 'string') {
    relative = bin;
  } else if (isPlainObject(bin)) {
    const entries = Object.entries(bin).filter((e): e is [string, string] => typeof e[1] === 'string');
    const own = packageName.replace(/^@[^/]+\//, '');
    relative = entries.length === 1 ? entries[0]?.[1] : entries.find(([key]) => key === own)?.[1];
    if (relative === undefined && entries.length > 1) {
      throw new Error(`package "${packageName}" has several bin scripts (${entries.map(([k]) => k).join(', ')}) and none is named "${own}"`);
    }
  }
  if (relative === undefined) throw new Error(`package "${packageName}" has no bin script`);
  const script = path.resolve(path.dirname(manifestPath), relative);
  if (!isFile(script)) throw new Error(`the bin script of package "${packageName}" is missing: ${script}`);
  return script;
}

// ---------------------------------------------------------------------------------------------
// Reading and JSON syntax

async function readConfigText(file: string): Promise<{ ok: true; text: string } | { ok: false; error: string }> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, error: `${file}: the file does not exist` };
    if (code === 'EISDIR') return { ok: false, error: `${file}: is a directory, not a file` };
    return { ok: false, error: `${file}: cannot read the file: ${errorMessage(error)}` };
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) return { ok: false, error: `${file}: is not a regular file` };
    if (info.size > MAX_CONFIG_BYTES) {
      return { ok: false, error: `${file}: the file is ${info.size} bytes; a config file may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)` };
    }
    // Read one byte more than allowed, in case the file grew after the stat.
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_CONFIG_BYTES) {
        return { ok: false, error: `${file}: the file is larger than ${MAX_CONFIG_BYTES} bytes (1 MiB), the most a config file may be` };
      }
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length));
    } catch {
      return { ok: false, error: `${file}: the file is not valid UTF-8 text` };
    }
    // Some Windows editors start UTF-8 files with a byte order mark, which JSON does not allow.
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return { ok: true, text };
  } catch (error) {
    return { ok: false, error: `${file}: cannot read the file: ${errorMessage(error)}` };
  } finally {
    await handle.close();
  }
}

function parseJsonText(file: string, text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const problem = scanJson(text);
  if (problem !== undefined) {
    const { line, column } = lineAndColumn(text, problem.offset);
    return { ok: false, error: `${file}:${line}:${column}: ${problem.message}` };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    // The scanner accepts exactly JSON, so this is not expected; still, never throw on user input.
    return { ok: false, error: `${file}: ${errorMessage(error)}` };
  }
}

/** 1-based line and column (in characters) of an offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const MAX_DEPTH = 256;

/**
 * Checks that `text` is exactly one JSON value, and that no object repeats a key (JSON.parse would
 * silently keep the last one, hiding, say, a second server of the same name). Returns the first
 * problem with its offset, or undefined. JSON.parse does the actual parsing afterwards.
 */
export function scanJson(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  const fail = (message: string, at = i): never => {
    throw new JsonSyntaxProblem(at, message);
  };
  const describeHere = (): string => {
    if (i >= text.length) return 'the end of the file';
    const code = text.charCodeAt(i);
    return code < 0x20 ? `a control character (U+${code.toString(16).padStart(4, '0')})` : `'${text[i]}'`;
  };
  const skipSpace = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else if (c === 0x2f && (text[i + 1] === '/' || text[i + 1] === '*')) fail('comments are not allowed in JSON');
      else return;
    }
  };
  const string = (): string => {
    const start = i;
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return out;
      }
      if (c < 0x20) fail(c === 0x0a ? 'unterminated string (a string cannot span lines)' : 'a control character inside a string must be escaped');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          out += JSON.parse(`"\\${e}"`) as string;
          i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else {
          fail('invalid escape sequence in a string');
        }
      } else {
        out += text[i];
        i++;
      }
    }
  };
  const number = () => {
    const match = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (match === null || match[0] === '-') fail('invalid number');
    i += match![0].length;
    if (/[0-9A-Za-z.]/.test(text[i] ?? '')) fail('invalid number');
  };
  const value = (depth: number) => {
    if (depth > MAX_DEPTH) fail(`the JSON is nested more than ${MAX_DEPTH} levels deep`);
    skipSpace();
    const c = text[i];
    if (c === '{') return object(depth);
    if (c === '[') return array(depth);
    if (c === '"') return void string();
    if (c === "'") return fail('strings must be in double quotes');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        if (/[A-Za-z0-9_]/.test(text[i] ?? '')) fail(`unexpected ${describeHere()}`);
        return;
      }
    }
    if (c === undefined) return fail('unexpected end of file, expected a value');
    return fail(`unexpected ${describeHere()}, expected a value`);
  };
  const object = (depth: number) => {
    i++; // {
    const seen = new Set<string>();
    skipSpace();
    if (text[i] === '}') {
      i++;
      return;
    }
    for (;;) {
      skipSpace();
      if (text[i] === '}') fail("trailing comma before '}'");
      if (text[i] === "'") fail('property names must be in double quotes');
      if (text[i] !== '"') fail(`expected a property name in double quotes, found ${describeHere()}`);
      const keyAt = i;
      const key = string();
      if (seen.has(key)) fail(`duplicate key "${key}"`, keyAt);
      seen.add(key);
      skipSpace();
      if (text[i] !== ':') fail(`expected ':' after the property name "${key}", found ${describeHere()}`);
      i++;
      value(depth + 1);
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return;
      }
      fail(`expected ',' or '}' after the value of "${key}", found ${describeHere()}`);
    }
  };
  const array = (depth: number) => {
    i++; // [
    skipSpace();
    if (text[i] === ']') {
      i++;
      return;
    }
    for (;;) {
      skipSpace();
      if (text[i] === ']') fail("trailing comma before ']'");
      value(depth + 1);
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return;
      }
      fail(`expected ',' or ']' in a list, found ${describeHere()}`);
    }
  };

  try {
    skipSpace();
    if (i >= text.length) fail('the file is empty; it must hold a JSON object');
    value(0);
    skipSpace();
    if (i < text.length) fail(`unexpected ${describeHere()} after the end of the JSON value`);
    return undefined;
  } catch (error) {
    if (error instanceof JsonSyntaxProblem) return { offset: error.offset, message: error.message };
    throw error;
  }
}

class JsonSyntaxProblem extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Variables and validation

interface ExpandContext {
  bundledResolve: BundledResolver;
  dataDir: string;
  configDir: string;
}

/** Names a `${secret:NAME}` reference may use. */
const SECRET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const VARIABLES_HELP = 'the variables are ${bundled:PACKAGE}, ${dataDir}, ${configDir} and ${secret:NAME}; write $$ for a literal $';

/**
 * Expands the variables in every string field that takes them, then validates with the schema.
 * Fields of the wrong type are left for the schema to report.
 */
function validateRaw(raw: unknown, context: ExpandContext): { ok: true; config: GatehouseConfig } | { ok: false; problems: ConfigProblem[] } {
  if (!isPlainObject(raw)) {
    return { ok: false, problems: [{ path: '(root)', message: `the top level must be a JSON object, found ${jsonKind(raw)}` }] };
  }
  const problems: ConfigProblem[] = [];
  const expanded = structuredClone(raw);
  const cache = new Map<string, string>();
  const resolve: BundledResolver = (name) => {
    let hit = cache.get(name);
    if (hit === undefined) {
      hit = context.bundledResolve(name);
      cache.set(name, hit);
    }
    return hit;
  };
  const ctx = { ...context, bundledResolve: resolve };

  const servers = expanded['servers'];
  if (isPlainObject(servers)) {
    for (const [name, server] of Object.entries(servers)) {
      if (!isPlainObject(server)) continue;
      const at = (...rest: (string | number)[]) => ['servers', name, ...rest];
      const field = (key: string, secrets: boolean) => {
        const v = server[key];
        if (typeof v === 'string') server[key] = expandString(v, at(key), secrets, ctx, problems);
      };
      const list = (key: string) => {
        const v = server[key];
        if (Array.isArray(v)) {
          v.forEach((item, index) => {
            if (typeof item === 'string') v[index] = expandString(item, at(key, index), false, ctx, problems);
          });
        }
      };
      const map = (key: string) => {
        const v = server[key];
        if (isPlainObject(v)) {
          for (const [k, item] of Object.entries(v)) {
            if (typeof item === 'string') v[k] = expandString(item, at(key, k), true, ctx, problems);
          }
        }
      };
      if (server['type'] === 'stdio') {
        field('command', false);
        list('args');
        list('roots');
        field('cwd', false);
        map('env');
        const sandbox = server['sandbox'];
        if (isPlainObject(sandbox)) {
          for (const key of ['read', 'write']) {
            const v = sandbox[key];
            if (Array.isArray(v)) {
              v.forEach((item, index) => {
                if (typeof item === 'string') v[index] = expandString(item, at('sandbox', key, index), false, ctx, problems);
              });
            }
          }
        }
      } else if (server['type'] === 'http') {
        field('url', false);
        map('headers');
      }
    }
  }

  // Telemetry headers may carry secrets (an API key) as servers' headers do; the endpoint, like a URL, may not.
  const telemetry = expanded['telemetry'];
  if (isPlainObject(telemetry)) {
    if (typeof telemetry['endpoint'] === 'string') telemetry['endpoint'] = expandString(telemetry['endpoint'], ['telemetry', 'endpoint'], false, ctx, problems);
    const headers = telemetry['headers'];
    if (isPlainObject(headers)) {
      for (const [k, item] of Object.entries(headers)) {
        if (typeof item === 'string') headers[k] = expandString(item, ['telemetry', 'headers', k], true, ctx, problems);
      }
    }
  }

  const parsed = parseConfig(expanded);
  if (!parsed.ok) return { ok: false, problems: [...problems, ...parsed.problems] };
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config: parsed.config };
}

/**
 * `$$` → `$`; `${bundled:P}`, `${dataDir}`, `${configDir}` → their values; `${secret:NAME}` is kept
 * as written where `secretsAllowed` (env values, headers) and refused elsewhere: a secret in a
 * command line shows in every process list, and a URL ends up in logs.
 */
function expandString(value: string, fieldPath: (string | number)[], secretsAllowed: boolean, ctx: ExpandContext, problems: ConfigProblem[]): string {
  if (!value.includes('$')) return value;
  const where = formatPath(fieldPath);
  const problemsBefore = problems.length;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const at = value.indexOf('$', i);
    if (at === -1) {
      out += value.slice(i);
      break;
    }
    out += value.slice(i, at);
    const next = value[at + 1];
    if (next === '$') {
      if (secretsAllowed && value.startsWith('{secret:', at + 2)) {
        problems.push({
          path: where,
          message: 'a literal "${secret:" cannot be written here, it would be read as a secret reference',
        });
      }
      out += '$';
      i = at + 2;
      continue;
    }
    if (next !== '{') {
      out += '$';
      i = at + 1;
      continue;
    }
    const close = value.indexOf('}', at + 2);
    if (close === -1) {
      problems.push({ path: where, message: `"\${" without a closing "}"; ${VARIABLES_HELP}` });
      break;
    }
    const body = value.slice(at + 2, close);
    const token = value.slice(at, close + 1);
    i = close + 1;
    if (body === 'dataDir') {
      out += ctx.dataDir;
    } else if (body === 'configDir') {
      out += ctx.configDir;
    } else if (body.startsWith('bundled:')) {
      try {
        out += ctx.bundledResolve(body.slice('bundled:'.length));
      } catch (error) {
        problems.push({ path: where, message: `${token}: ${errorMessage(error)}` });
      }
    } else if (body.startsWith('secret:')) {
      const name = body.slice('secret:'.length);
      if (!secretsAllowed) {
        problems.push({
          path: where,
          message: `${token}: secrets may be used only in env values and http headers, where they do not show in process lists or logs`,
        });
      } else if (!SECRET_NAME.test(name)) {
        problems.push({
          path: where,
          message: `${token}: a secret name is 1-128 letters, digits, underscores, dots and hyphens, starting with a letter, digit or underscore`,
        });
      }
      out += token;
    } else {
      problems.push({ path: where, message: `unknown variable ${token}; ${VARIABLES_HELP}` });
    }
  }
  // A field that failed keeps its text, so that the schema does not add a second, misleading problem.
  return problems.length > problemsBefore ? value : out;
}

function formatProblems(file: string, problems: ConfigProblem[]): string {
  const lines = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `${file}: ${p.path}: ${p.message}`);
  if (problems.length > MAX_LISTED_PROBLEMS) lines.push(`${file}: and ${problems.length - MAX_LISTED_PROBLEMS} more problems`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  return typeof value;
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function ignoreMissing(error: unknown): undefined {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw error;
}

/** Temp file in the same directory (so rename stays on one file system), mode 0600, fsync, rename. */
async function writeAtomic(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await renameWithRetry(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** On Windows a rename onto a file another process holds open fails briefly; try a few times. */
async function renameWithRetry(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(from, to);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (process.platform !== 'win32' || attempt >= 9 || (code !== 'EPERM' && code !== 'EACCES' && code !== 'EBUSY')) throw error;
      await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
    }
  }
}
