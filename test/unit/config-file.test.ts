import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigSchema, type StdioServerConfig } from '../../src/common/config.js';
import { editConfigFile, ensureConfigFile, loadConfigFile, MAX_CONFIG_BYTES, resolveBundledBin, watchConfigFile } from '../../src/node/config-file.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const defaultConfig = path.join(root, 'resources', 'default-config.json');
const committedSchema = path.join(root, 'resources', 'config.schema.json');
const onUnix = process.platform !== 'win32';

/** The real path of the memory server's bin script, found independently of the code under test. */
function memoryBin(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('@modelcontextprotocol/server-memory/package.json');
  return path.join(path.dirname(manifest), 'dist', 'index.js');
}

let dir: string;
let file: string;
const dataDir = '/data/gatehouse';

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gh-config-'));
  file = path.join(dir, 'config.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(content: string | object) {
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return loadConfigFile(file, { dataDir });
}

async function loadError(content: string | object): Promise<string> {
  const result = await load(content);
  if (result.ok) throw new Error('expected the config to be refused');
  return result.error;
}

function stdio(extra: Record<string, unknown> = {}) {
  return { type: 'stdio', command: 'node', ...extra };
}

describe('loadConfigFile: reading', () => {
  it('says the file does not exist, naming it', async () => {
    const result = await loadConfigFile(file, { dataDir });
    expect(result).toEqual({ ok: false, error: `${file}: the file does not exist` });
  });

  it('refuses a file over 1 MiB without parsing it', async () => {
    const error = await loadError(`{"servers":{}}${' '.repeat(MAX_CONFIG_BYTES)}`);
    expect(error).toMatch(new RegExp(`^${escape(file)}: the file is \\d+ bytes; a config file may be at most 1048576 bytes`));
  });

  it('accepts a file of exactly 1 MiB', async () => {
    const body = '{"servers":{}}';
    const result = await load(body + ' '.repeat(MAX_CONFIG_BYTES - body.length));
    expect(result.ok).toBe(true);
  });

  it('refuses a top level that is not an object, saying what it found', async () => {
    expect(await loadError('[]')).toBe(`${file}: (root): the top level must be a JSON object, found an array`);
    expect(await loadError('"x"')).toBe(`${file}: (root): the top level must be a JSON object, found a string`);
  });

  it('accepts a UTF-8 byte order mark', async () => {
    const result = await load('\uFEFF{"servers":{}}');
    expect(result.ok).toBe(true);
  });

  it('refuses bytes that are not UTF-8', async () => {
    await writeFile(file, Buffer.from([0x7b, 0xff, 0x7d]));
    const result = await loadConfigFile(file, { dataDir });
    expect(result).toEqual({ ok: false, error: `${file}: the file is not valid UTF-8 text` });
  });

  it('refuses a directory in place of the file', async () => {
    await mkdir(file);
    const result = await loadConfigFile(file, { dataDir });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/config\.json: is (a directory, not a file|not a regular file)/);
  });
});

describe('loadConfigFile: JSON syntax', () => {
  it('gives the line and column of a missing comma', async () => {
    const error = await loadError('{\n  "servers": {\n    "a": {}\n    "b": {}\n  }\n}');
    expect(error).toBe(`${file}:4:5: expected ',' or '}' after the value of "a", found '"'`);
  });

  it('gives the line and column of a trailing comma', async () => {
    const error = await loadError('{\n  "servers": {},\n}');
    expect(error).toBe(`${file}:3:1: trailing comma before '}'`);
  });

  it('says comments are not JSON', async () => {
    expect(await loadError('{\n  // my servers\n  "servers": {}\n}')).toBe(`${file}:2:3: comments are not allowed in JSON`);
  });

  it('points at the start of an unterminated string', async () => {
    expect(await loadError('{"servers": {"a": {"type": "stdio, "command": "x"}}}')).toMatch(new RegExp(`^${escape(file)}:1:\\d+: `));
  });

  it('says an empty file is empty', async () => {
    expect(await loadError('  \n')).toBe(`${file}:2:1: the file is empty; it must hold a JSON object`);
  });

  it('points at content after the end of the value', async () => {
    expect(await loadError('{}\n}')).toBe(`${file}:2:1: unexpected '}' after the end of the JSON value`);
  });

  it('refuses a key given twice instead of silently keeping the last', async () => {
    const error = await loadError('{"servers": {\n"a": {"type": "stdio", "command": "x"},\n"a": {"type": "stdio", "command": "y"}}}');
    expect(error).toBe(`${file}:3:1: duplicate key "a"`);
  });

  it('refuses single-quoted strings', async () => {
    expect(await loadError("{'servers': {}}")).toBe(`${file}:1:2: property names must be in double quotes`);
  });
});

describe('loadConfigFile: schema', () => {
  it('names the file, the field and the problem when a server arg is not a string', async () => {
    const error = await loadError({ servers: { memory: stdio({ args: ['a', 'b', 3] }) } });
    expect(error).toBe(`${file}: servers.memory.args[2]: expected string, received number`);
  });

  it('names a field of the wrong type', async () => {
    const error = await loadError({ servers: { memory: stdio({ enabled: 'yes' }) } });
    expect(error).toBe(`${file}: servers.memory.enabled: expected boolean, received string`);
  });

  it('refuses an unknown field, naming it and where it is', async () => {
    expect(await loadError({ servers: { memory: stdio({ comand: 'x' }) } })).toBe(`${file}: servers.memory: Unrecognized key: "comand"`);
    expect(await loadError({ serverz: {} })).toBe(`${file}: (root): Unrecognized key: "serverz"`);
  });

  it('refuses a server name outside the naming rule', async () => {
    const error = await loadError({ servers: { My_Server: stdio() } });
    expect(error).toBe(
      `${file}: servers.My_Server: a server name is 1-32 characters of lower-case letters, digits and hyphens, and starts and ends with a letter or digit`,
    );
  });

  it('refuses an environment variable name the shell could not use, with the rule rather than "invalid key"', async () => {
    const error = await loadError({ servers: { memory: stdio({ env: { 'A-B': 'x' } }) } });
    expect(error).toBe(`${file}: servers.memory.env.A-B: an environment variable name is letters, digits and underscores`);
  });

  it("takes an http server's sign-in settings, with a client secret only as a reference and a metadata document only over https", async () => {
    const http = (oauth: unknown) => ({ servers: { notes: { type: 'http', url: 'https://mcp.example.com/mcp', oauth } } });
    const ok = await load(http({ clientId: 'gatehouse', clientSecret: '${secret:notes_secret}', scopes: ['notes:read'] }));
    expect(ok.ok && ok.config.servers['notes']).toMatchObject({
      oauth: { clientId: 'gatehouse', clientSecret: '${secret:notes_secret}', scopes: ['notes:read'], redirectPort: 0 },
    });
    expect(await loadError(http({ clientSecret: 'literal-secret' }))).toBe(
      `${file}: servers.notes.oauth.clientSecret: clientSecret must be a \${secret:NAME} reference to a secret set with \`gatehouse secrets set NAME\``,
    );
    expect(await loadError(http({ clientMetadataUrl: 'http://corp.example.com/gatehouse.json' }))).toBe(
      `${file}: servers.notes.oauth.clientMetadataUrl: clientMetadataUrl must be an https:// address with a path`,
    );
    expect(await loadError(http({ scopes: ['has space'] }))).toMatch(/servers\.notes\.oauth\.scopes\[0\]: a scope is printable ASCII/);
    const off = await load(http(false));
    expect(off.ok && off.config.servers['notes']).toMatchObject({ oauth: false });
  });

  it('refuses an unknown server type', async () => {
    const error = await loadError({ servers: { memory: { type: 'sse', url: 'http://x' } } });
    expect(error).toMatch(new RegExp(`^${escape(file)}: servers\\.memory\\.type: .*'stdio' \\| 'http'`));
  });

  it('lists every problem, one per line', async () => {
    const error = await loadError({ servers: { a: stdio({ args: [1] }), b: stdio({ enabled: 1 }) } });
    expect(error.split('\n')).toEqual([
      `${file}: servers.a.args[0]: expected string, received number`,
      `${file}: servers.b.enabled: expected boolean, received number`,
    ]);
  });

  it('fills in defaults for omitted fields', async () => {
    const result = await load({ servers: { a: stdio() } });
    expect(result.ok && result.config.servers['a']).toMatchObject({ args: [], env: {}, enabled: true, restart: { mode: 'on-failure' } });
    expect(result.ok && result.config.listen.http).toEqual({
      enabled: true,
      port: 0,
      maxConnections: 1024,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      clientMetadata: { allowPrivateAddresses: false },
    });
  });
});

describe('loadConfigFile: variables', () => {
  it('resolves ${bundled:PACKAGE} to the bin script of the package installed with Gatehouse', async () => {
    const result = await load({ servers: { memory: stdio({ args: ['${bundled:@modelcontextprotocol/server-memory}'] }) } });
    expect(result.ok).toBe(true);
    const args = result.ok ? (result.config.servers['memory'] as StdioServerConfig).args : [];
    expect(args).toEqual([memoryBin()]);
    expect(path.isAbsolute(args[0]!)).toBe(true);
    expect((await stat(args[0]!)).isFile()).toBe(true);
  });

  it('refuses ${bundled:PACKAGE} for a package that is not installed, naming the field', async () => {
    const error = await loadError({ servers: { x: stdio({ args: ['${bundled:gatehouse-no-such-package}'] }) } });
    expect(error).toBe(
      `${file}: servers.x.args[0]: \${bundled:gatehouse-no-such-package}: package "gatehouse-no-such-package" is not installed with Gatehouse`,
    );
  });

  it('refuses ${bundled:PACKAGE} for a package without a bin script', async () => {
    const error = await loadError({ servers: { x: stdio({ command: '${bundled:zod}' }) } });
    expect(error).toBe(`${file}: servers.x.command: \${bundled:zod}: package "zod" has no bin script`);
  });

  it('expands ${dataDir} and ${configDir} in command, args, cwd and env, and $$ to $', async () => {
    const result = await load({
      servers: {
        x: stdio({
          command: '${configDir}/bin/run',
          args: ['${dataDir}/a', 'cost: $$5', 'lone $ sign', '$${dataDir}'],
          cwd: '${dataDir}',
          env: { HOME_DIR: '${dataDir}/home' },
        }),
      },
    });
    expect(result.ok).toBe(true);
    const x = result.ok ? (result.config.servers['x'] as StdioServerConfig) : undefined;
    expect(x?.command).toBe(`${dir}/bin/run`);
    expect(x?.args).toEqual([`${dataDir}/a`, 'cost: $5', 'lone $ sign', '${dataDir}']);
    expect(x?.cwd).toBe(dataDir);
    expect(x?.env).toEqual({ HOME_DIR: `${dataDir}/home` });
  });

  it('expands variables in an http url and headers', async () => {
    const result = await load({ servers: { h: { type: 'http', url: 'http://127.0.0.1:9/${configDir}', headers: { 'X-Dir': '${dataDir}' } } } });
    expect(result.ok && result.config.servers['h']).toMatchObject({ url: `http://127.0.0.1:9/${dir}`, headers: { 'X-Dir': dataDir } });
  });

  it('names the field holding an unknown variable', async () => {
    const error = await loadError({ servers: { x: stdio({ env: { A: '${HOME}/x' } }) } });
    expect(error).toBe(
      `${file}: servers.x.env.A: unknown variable \${HOME}; the variables are \${bundled:PACKAGE}, \${dataDir}, \${configDir} and \${secret:NAME}; write $$ for a literal $`,
    );
  });

  it('refuses a "${" that is never closed', async () => {
    expect(await loadError({ servers: { x: stdio({ args: ['${dataDir'] }) } })).toMatch(/servers\.x\.args\[0\]: "\$\{" without a closing "\}"/);
  });

  it('leaves ${secret:NAME} intact in env values and http headers for the secrets stage', async () => {
    const result = await load({
      servers: {
        x: stdio({ env: { TOKEN: '${secret:github_token}', BOTH: '${dataDir}:${secret:a.b-c}' } }),
        h: { type: 'http', url: 'https://example.com/mcp', headers: { Authorization: 'Bearer ${secret:api_key}' } },
      },
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect((result.config.servers['x'] as StdioServerConfig).env).toEqual({ TOKEN: '${secret:github_token}', BOTH: `${dataDir}:\${secret:a.b-c}` });
    expect(result.config.servers['h']).toMatchObject({ headers: { Authorization: 'Bearer ${secret:api_key}' } });
  });

  it('refuses a secret in a command line or a url, where it would show in process lists and logs', async () => {
    const error = await loadError({
      servers: {
        x: stdio({ args: ['--key=${secret:k}'] }),
        h: { type: 'http', url: 'https://example.com/mcp?key=${secret:k}' },
      },
    });
    expect(error.split('\n')).toEqual([
      `${file}: servers.x.args[0]: \${secret:k}: secrets may be used only in env values and http headers, where they do not show in process lists or logs`,
      `${file}: servers.h.url: \${secret:k}: secrets may be used only in env values and http headers, where they do not show in process lists or logs`,
    ]);
  });

  it('refuses a malformed secret name', async () => {
    expect(await loadError({ servers: { x: stdio({ env: { A: '${secret:}' } }) } })).toMatch(/servers\.x\.env\.A: \$\{secret:\}: a secret name is/);
  });

  it('refuses an escaped "$${secret:" in a field where secrets are resolved, since it would read as a reference', async () => {
    expect(await loadError({ servers: { x: stdio({ env: { A: '$${secret:k}' } }) } })).toMatch(
      /servers\.x\.env\.A: a literal "\$\{secret:" cannot be written here/,
    );
  });
});

describe('the default config', () => {
  it('loads, with both bundled servers resolved against the installed packages', async () => {
    const result = await loadConfigFile(defaultConfig, { dataDir });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const memory = result.config.servers['memory'] as StdioServerConfig;
    const files = result.config.servers['files'] as StdioServerConfig;
    expect(memory).toMatchObject({ type: 'stdio', command: 'node', args: [memoryBin()], env: { MEMORY_FILE_PATH: `${dataDir}/memory/memory.jsonl` } });
    expect(files.command).toBe('node');
    expect(files.args).toEqual([resolveBundledBin('@modelcontextprotocol/server-filesystem'), `${dataDir}/demo`]);
  });

  it('gives each default server a sandbox that may write its own folder of the data directory and nothing else (issue 15)', async () => {
    const result = await loadConfigFile(defaultConfig, { dataDir });
    if (!result.ok) throw new Error(result.error);
    const memory = result.config.servers['memory'] as StdioServerConfig;
    const files = result.config.servers['files'] as StdioServerConfig;
    expect(memory.sandbox).toMatchObject({ read: [], write: [`${dataDir}/memory`], network: 'none' });
    expect(files.sandbox).toMatchObject({ read: [], write: [`${dataDir}/demo`], network: 'none' });
    expect(result.config.$schema).toBe('./config.schema.json');
  });
});

describe('config.schema.json', () => {
  it('equals what z.toJSONSchema makes of ConfigSchema today (regenerate with scripts/gen-config-schema.mjs)', async () => {
    const committed = JSON.parse(await readFile(committedSchema, 'utf8')) as unknown;
    expect(committed).toStrictEqual(z.toJSONSchema(ConfigSchema, { io: 'input' }));
  });
});

describe('ensureConfigFile', () => {
  it.skipIf(!onUnix)('writes the default with mode 0600 in a 0700 directory when there is no file', async () => {
    const target = path.join(dir, 'fresh', 'config.json');
    expect(await ensureConfigFile(target, defaultConfig)).toEqual({ created: true });
    expect(await readFile(target, 'utf8')).toBe(await readFile(defaultConfig, 'utf8'));
    expect((await stat(target)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(target))).mode & 0o777).toBe(0o700);
  });

  it('puts the schema beside the config, so that "$schema" resolves', async () => {
    const target = path.join(dir, 'fresh', 'config.json');
    await ensureConfigFile(target, defaultConfig);
    expect(await readFile(path.join(dir, 'fresh', 'config.schema.json'), 'utf8')).toBe(await readFile(committedSchema, 'utf8'));
  });

  it('leaves an existing file alone', async () => {
    await writeFile(file, '{"servers": {}}');
    expect(await ensureConfigFile(file, defaultConfig)).toEqual({ created: false });
    expect(await readFile(file, 'utf8')).toBe('{"servers": {}}');
  });
});

describe('editConfigFile', () => {
  it.skipIf(!onUnix)('applies the change and writes the file with mode 0600', async () => {
    await writeFile(file, JSON.stringify({ servers: { a: stdio() } }), { mode: 0o644 });
    const result = await editConfigFile(file, (raw) => {
      (raw['servers'] as Record<string, unknown>)['b'] = stdio({ args: ['${dataDir}/b'] });
    });
    expect(result).toEqual({ ok: true });
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ servers: { a: stdio(), b: stdio({ args: ['${dataDir}/b'] }) } });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['config.json']);
  });

  it('refuses to write a result the schema rejects, and leaves the file byte for byte as it was', async () => {
    const before = '{ "servers": { "a": { "type": "stdio", "command": "x" } } }';
    await writeFile(file, before);
    const result = await editConfigFile(file, (raw) => {
      (raw['servers'] as Record<string, Record<string, unknown>>)['a']!['args'] = [42];
    });
    expect(result).toEqual({ ok: false, error: `the edit was not saved: ${file}: servers.a.args[0]: expected string, received number` });
    expect(await readFile(file, 'utf8')).toBe(before);
    expect(await readdir(dir)).toEqual(['config.json']);
  });

  it('refuses to write a result with an unknown variable', async () => {
    await writeFile(file, '{}');
    const result = await editConfigFile(file, (raw) => {
      raw['servers'] = { a: stdio({ args: ['${nope}'] }) };
    });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toContain('servers.a.args[0]: unknown variable ${nope}');
    expect(await readFile(file, 'utf8')).toBe('{}');
  });

  it('refuses to edit a file that is not valid JSON, saying where', async () => {
    await writeFile(file, '{\n  "servers": {,\n}');
    const result = await editConfigFile(file, () => undefined);
    expect(result).toEqual({ ok: false, error: `${file}:2:15: expected a property name in double quotes, found ','` });
  });

  it('refuses to edit a missing file', async () => {
    expect(await editConfigFile(file, () => undefined)).toEqual({ ok: false, error: `${file}: the file does not exist` });
  });

  it.skipIf(!onUnix)('edits the target of a symbolic link and keeps the link', async () => {
    const real = path.join(dir, 'real.json');
    await writeFile(real, '{}');
    await symlink(real, file);
    expect(await editConfigFile(file, (raw) => void (raw['servers'] = {}))).toEqual({ ok: true });
    expect((await import('node:fs')).lstatSync(file).isSymbolicLink()).toBe(true);
    expect(JSON.parse(await readFile(real, 'utf8'))).toEqual({ servers: {} });
  });

  it('lets the mutation throw through without writing', async () => {
    await writeFile(file, '{}');
    await expect(
      editConfigFile(file, () => {
        throw new Error('server "a" already exists');
      }),
    ).rejects.toThrow('already exists');
    expect(await readFile(file, 'utf8')).toBe('{}');
  });
});

// Each case has its own directory, so the cases run at the same time and the file stays fast.
describe.concurrent('watchConfigFile', () => {
  const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Waits until `calls()` reaches `count` (or 2 s pass), then a little longer to catch extra calls. */
  const expectCalls = async (calls: () => number, count: number) => {
    const until = Date.now() + 2000;
    while (calls() < count && Date.now() < until) await settle(10);
    await settle(150);
    expect(calls()).toBe(count);
  };
  async function watched(
    run: (file: string, calls: () => number, watchDir: string) => Promise<void>,
    retryMs?: number,
    timing: { debounceMs?: number; maxWaitMs?: number } = {},
  ) {
    const watchDir = await mkdtemp(path.join(tmpdir(), 'gh-watch-'));
    const target = path.join(watchDir, 'conf', 'config.json');
    await mkdir(path.dirname(target));
    await writeFile(target, '{}');
    let count = 0;
    const watcher = watchConfigFile(target, () => count++, { ...timing, ...(retryMs === undefined ? {} : { retryMs }) });
    try {
      await settle(30);
      await run(target, () => count, watchDir);
    } finally {
      watcher.close();
      await rm(watchDir, { recursive: true, force: true });
    }
  }

  it('calls back once for a burst of writes', async () => {
    // A quiet time well above the gaps between the writes, so that a busy machine's slow timers do not split the burst.
    await watched(
      async (target, calls) => {
        for (let i = 0; i < 5; i++) {
          await writeFile(target, JSON.stringify({ servers: {}, n: i }));
          await settle(10);
        }
        await expectCalls(calls, 1);
      },
      undefined,
      { debounceMs: 600, maxWaitMs: 5000 },
    );
  });

  it('ignores other files in the same directory', async () => {
    await watched(async (target, calls) => {
      await writeFile(path.join(path.dirname(target), 'other.json'), '{}');
      await settle(250);
      expect(calls()).toBe(0);
    });
  });

  it('calls back after the file is deleted and recreated, and keeps watching', async () => {
    await watched(async (target, calls) => {
      await unlink(target);
      await expectCalls(calls, 1);
      await writeFile(target, '{"servers": {}}');
      await expectCalls(calls, 2);
      await writeFile(target, '{"servers": {"a": {"type": "stdio", "command": "x"}}}');
      await expectCalls(calls, 3);
    });
  });

  it('sees an atomic replace by editConfigFile', async () => {
    await watched(async (target, calls) => {
      expect(await editConfigFile(target, (raw) => void (raw['servers'] = {}))).toEqual({ ok: true });
      await expectCalls(calls, 1);
    });
  });

  it('re-arms when the directory is removed and created again', async () => {
    await watched(async (target, calls) => {
      await rm(path.dirname(target), { recursive: true });
      await expectCalls(calls, 1);
      await mkdir(path.dirname(target));
      await settle(100); // the watcher looks again every 50 ms
      const before = calls();
      await writeFile(target, '{"servers": {}}');
      const until = Date.now() + 2000;
      while (calls() <= before && Date.now() < until) await settle(10);
      expect(calls()).toBeGreaterThan(before);
    }, 50);
  });

  it('stops calling back once closed', async () => {
    const watchDir = await mkdtemp(path.join(tmpdir(), 'gh-watch-'));
    const target = path.join(watchDir, 'config.json');
    await writeFile(target, '{}');
    let calls = 0;
    const watcher = watchConfigFile(target, () => calls++);
    await settle(30);
    await writeFile(target, '{"servers": {}}');
    watcher.close();
    await settle(250);
    expect(calls).toBe(0);
    await rm(watchDir, { recursive: true, force: true });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
