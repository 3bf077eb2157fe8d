/**
 * Issue 14: the catalogue's pure decisions: what an entry installs, what lint refuses, which
 * servers people add as `npx` can be pinned, what a shadow server report may show, and where the
 * fleet's devices disagree.
 */
import { describe, expect, it } from 'vitest';
import { CatalogExtensionSchema, ServerJsonSchema } from '../../src/common/catalog.js';
import { baselines, promotion } from '../../src/core/catalog/baselines.js';
import { installSource, launchOfInstall, type CatalogEntry } from '../../src/core/catalog/entry.js';
import { lintEntry } from '../../src/core/catalog/lint.js';
import { parseNpx } from '../../src/core/catalog/npx.js';
import { redactArgs, shadowServers } from '../../src/core/catalog/shadow.js';

const SRI = `sha512-${'A'.repeat(86)}==`;
function entry(pkg: Record<string, unknown>, ext: Record<string, unknown> = {}): CatalogEntry {
  return { name: 'weather', server: ServerJsonSchema.parse({ name: 'com.acme/weather', packages: [pkg] }), ext: CatalogExtensionSchema.parse(ext) };
}

describe('catalogue entries', () => {
  it('installs an npm package only at an exact version with its signed integrity', () => {
    expect(installSource(entry({ registryType: 'npm', identifier: 'w', version: '1.2.3' }, { integrity: { npm: SRI } }))).toEqual({
      ok: true,
      registryType: 'npm',
      identifier: 'w',
      version: '1.2.3',
      integrity: SRI,
    });
    expect(installSource(entry({ registryType: 'npm', identifier: 'w', version: '^1.2.3' }, { integrity: { npm: SRI } }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('no exact version'),
    });
    expect(installSource(entry({ registryType: 'npm', identifier: 'w', version: '1.2.3' }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('no integrity'),
    });
    expect(installSource(entry({ registryType: 'pypi', identifier: 'w', version: '1.2.3' }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('pypi packages cannot be installed by this Gatehouse yet'),
    });
  });

  it("starts an install with Node from its own directory, the entry's arguments, environment and profile, ${dataDir} expanded", () => {
    const e = entry(
      { registryType: 'npm', identifier: 'w', version: '1.2.3' },
      { integrity: { npm: SRI }, args: ['--dir', '${dataDir}/w'], env: { KEY: '${secret:k}' }, secrets: [{ name: 'k' }], sandbox: { write: ['${dataDir}/w'] } },
    );
    const launch = launchOfInstall(e, '/pkgs/w/server.js', '/data', {
      env: { EXTRA: '1', KEY: 'mine' },
      enabled: true,
      restart: undefined as never,
      health: undefined as never,
      startupTimeoutMs: 1000,
      requestTimeoutMs: 1000,
    });
    expect(launch).toMatchObject({
      type: 'stdio',
      command: 'node',
      args: ['/pkgs/w/server.js', '--dir', '/data/w'],
      env: { EXTRA: '1', KEY: '${secret:k}' },
      sandbox: { write: ['/data/w'] },
    });
  });

  it('refuses by lint: a range, a missing integrity, an undeclared or unused secret, a secret in arguments, an unset secret variable', () => {
    const findings = lintEntry(
      entry(
        { registryType: 'npm', identifier: 'w', version: 'latest', environmentVariables: [{ name: 'API_KEY', isSecret: true }] },
        { env: { TOKEN: '${secret:token}' }, secrets: [{ name: 'unused' }], args: ['${secret:token}'] },
      ),
      0,
    );
    expect(findings.filter((f) => f.level === 'error').map((f) => f.message)).toEqual([
      expect.stringContaining('version "latest" is not exact'),
      expect.stringContaining('no integrity'),
      'env refers to ${secret:token}, which the entry does not declare in secrets',
      expect.stringContaining('args contain a secret reference'),
      expect.stringContaining('API_KEY is a secret of w'),
    ]);
    expect(findings.filter((f) => f.level === 'warning').map((f) => f.message)).toEqual([
      expect.stringContaining('"unused" is declared'),
      expect.stringContaining('no tool is pinned'),
    ]);
    expect(lintEntry(entry({ registryType: 'oci', identifier: 'ghcr.io/acme/w:1' }), 1)).toEqual([
      expect.objectContaining({ level: 'error', message: expect.stringContaining('a tag can move') }),
    ]);
  });
});

describe('npx servers', () => {
  it("recognises npx and npm exec lines, with the package, the spec and the server's own arguments", () => {
    expect(parseNpx({ type: 'stdio', command: 'npx', args: ['-y', '@acme/w@1.2.3', '--port', '1'] } as never)).toEqual({
      package: '@acme/w',
      spec: '1.2.3',
      args: ['--port', '1'],
    });
    expect(parseNpx({ type: 'stdio', command: '/usr/bin/npm', args: ['exec', '--yes', '--', 'w'] } as never)).toEqual({
      package: 'w',
      spec: 'latest',
      args: [],
    });
    expect(parseNpx({ type: 'stdio', command: 'node', args: ['w.js'] } as never)).toBeUndefined();
    expect(parseNpx({ type: 'stdio', command: 'npx', args: ['-y', '../evil'] } as never)).toBeUndefined();
  });
});

describe('shadow servers', () => {
  it('never reports a credential: flag values, key=value forms and key-like strings are replaced', () => {
    expect(redactArgs(['--api-key', 'abc', '--token=xyz', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc', 'https://x.test/?api_key=1', '--port', '8080'])).toEqual([
      '--api-key',
      '…',
      '--token=…',
      '…',
      'https://x.test/?api_key=…',
      '--port',
      '8080',
    ]);
  });

  it("lists every enabled server but Gatehouse's own entry, and names the catalogue entry that offers the same package", () => {
    const e = entry({ registryType: 'npm', identifier: '@acme/w', version: '1.0.0' });
    const found = shadowServers(
      [
        { client: 'cursor', file: 'f', name: 'w', type: 'stdio', command: 'npx', args: ['-y', '@acme/w'], envKeys: ['K'], disabled: false, gatehouse: false },
        { client: 'cursor', file: 'f', name: 'gatehouse', type: 'stdio', command: 'node', args: [], envKeys: [], disabled: false, gatehouse: true },
        { client: 'zed', file: 'g', name: 'off', type: 'stdio', command: 'x', envKeys: [], disabled: true, gatehouse: false },
      ],
      [e],
    );
    expect(found).toEqual([{ client: 'cursor', file: 'f', name: 'w', type: 'stdio', target: 'npx -y @acme/w', envKeys: ['K'], inCatalog: 'weather' }]);
  });
});

describe('fleet baselines', () => {
  const rows = [
    { server: 'w', version: '1', tool: 'a', sha256: '1'.repeat(64), devices: 9, lastSeen: 't' },
    { server: 'w', version: '1', tool: 'a', sha256: '2'.repeat(64), devices: 1, lastSeen: 't' },
    { server: 'w', version: '1', tool: 'b', sha256: '3'.repeat(64), devices: 10, lastSeen: 't' },
  ];

  it('puts a tool whose devices see different definitions at one version first, as a warning', () => {
    const all = baselines(rows);
    expect(all.map((b) => [b.tool, b.disagree, b.hashes.map((h) => h.devices)])).toEqual([
      ['a', true, [9, 1]],
      ['b', false, [10]],
    ]);
  });

  it('promotes only what the fleet agrees on, unless the admin names the definition to keep', () => {
    const all = baselines(rows);
    expect(promotion(all, 'w', '1')).toEqual({ pins: new Map([['b', '3'.repeat(64)]]), refused: [expect.stringContaining('a: devices disagree')] });
    expect(promotion(all, 'w', '1', new Map([['a', '1'.repeat(64)]])).pins.get('a')).toBe('1'.repeat(64));
    expect(promotion(all, 'w', '1', new Map([['a', '4'.repeat(64)]])).refused).toEqual([expect.stringContaining('no device saw the definition')]);
  });
});
