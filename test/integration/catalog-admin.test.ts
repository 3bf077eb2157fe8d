/**
 * Issue 14, the admin's side of the catalogue on the command line: `gatehouse policy catalog import`
 * turns an MCP Registry server.json into an entry of a bundle directory, with the exact version and
 * integrity the package registry serves (a registry on loopback, asked by the real `npm`); a hostile
 * or broken file is refused with a clear error and the bundle directory is left as it was.
 * `gatehouse policy catalog lint` flags an entry whose package does not resolve to its signed bytes.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CATALOG_META_KEY } from '../../src/common/catalog.js';
import { SAMPLE_DIR } from '../support/policy.js';
import { startRegistry, type TestRegistry } from '../support/npm-registry.js';
import { runGatehouse } from './support/clients.js';

let registry: TestRegistry;
let work: string;
let env: Record<string, string>;
const integrity: Record<string, string> = {};
beforeAll(async () => {
  registry = await startRegistry();
  integrity['1.0.0'] = registry.publish({ name: '@acme/weather-mcp', version: '1.0.0' });
  integrity['1.1.0'] = registry.publish({ name: '@acme/weather-mcp', version: '1.1.0' });
  work = mkdtempSync(join(tmpdir(), 'gh-catalog-admin-'));
  // An admin's shell as a newcomer has it: nothing configured but a home.
  env = { PATH: process.env.PATH!, HOME: work, USER: 'admin' };
});
afterAll(async () => {
  await registry.close();
  rmSync(work, { recursive: true, force: true });
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(work, 'bundle-'));
  cpSync(SAMPLE_DIR, dir, { recursive: true });
});

const weatherJson = (over: Record<string, unknown> = {}) => ({
  $schema: 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json',
  name: 'com.acme/weather',
  title: 'Weather',
  description: 'Forecasts for any city',
  version: '1.0.0',
  packages: [
    {
      registryType: 'npm',
      identifier: '@acme/weather-mcp',
      version: '1.0.0',
      transport: { type: 'stdio' },
      environmentVariables: [
        { name: 'WEATHER_API_KEY', description: 'Your key for the weather service', isSecret: true },
        { name: 'UNITS', default: 'metric' },
      ],
    },
  ],
  ...over,
});

function writeSource(name: string, content: string | Buffer): string {
  const file = join(work, name);
  writeFileSync(file, content);
  return file;
}

const catalogText = () => readFileSync(join(dir, 'catalog.json'), 'utf8');
const importFile = (file: string, ...more: string[]) =>
  runGatehouse(['policy', 'catalog', 'import', file, '--dir', dir, '--registry', registry.url, ...more], env, 60_000);

describe('gatehouse policy catalog import (issue 14)', () => {
  it('adds a server.json as an entry with the exact version and integrity the registry serves, its secrets declared, and keeps the other entries', async () => {
    const before = JSON.parse(catalogText()) as { servers: Record<string, unknown> };
    const run = await importFile(writeSource('weather.json', JSON.stringify(weatherJson())));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`@acme/weather-mcp@1.0.0: ${integrity['1.0.0']}`);
    const after = JSON.parse(catalogText()) as { servers: Record<string, { server: { _meta: Record<string, unknown> }; tools: unknown }> };
    for (const name of Object.keys(before.servers)) expect(after.servers[name]).toEqual(before.servers[name]);
    const entry = after.servers['weather']!;
    expect(entry.tools).toEqual({});
    expect(entry.server).toMatchObject({
      name: 'com.acme/weather',
      packages: [{ identifier: '@acme/weather-mcp', version: '1.0.0', registryBaseUrl: registry.url }],
    });
    expect(entry.server._meta[CATALOG_META_KEY]).toEqual({
      integrity: { npm: integrity['1.0.0'] },
      secrets: [{ name: 'weather_weather_api_key', description: 'Your key for the weather service' }],
      env: { WEATHER_API_KEY: '${secret:weather_weather_api_key}', UNITS: 'metric' },
    });
  });

  it('pins a package given without a version to the exact version the registry names today', async () => {
    const pkg = { registryType: 'npm', identifier: '@acme/weather-mcp', transport: { type: 'stdio' } };
    const run = await importFile(writeSource('latest.json', JSON.stringify(weatherJson({ packages: [pkg] }))), '--name', 'forecasts');
    expect(run.code, run.stderr).toBe(0);
    const entry = (
      JSON.parse(catalogText()) as { servers: Record<string, { server: { packages: { version: string }[]; _meta: Record<string, { integrity: unknown }> } }> }
    ).servers['forecasts']!;
    expect(entry.server.packages[0]!.version).toBe('1.1.0');
    expect(entry.server._meta[CATALOG_META_KEY]!.integrity).toEqual({ npm: integrity['1.1.0'] });
  });

  it('refuses a package the registry does not have, and writes nothing', async () => {
    const before = catalogText();
    const pkg = { registryType: 'npm', identifier: '@acme/no-such-mcp', version: '1.0.0', transport: { type: 'stdio' } };
    const run = await importFile(writeSource('missing.json', JSON.stringify(weatherJson({ packages: [pkg] }))));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^gatehouse policy: .*@acme\/no-such-mcp/);
    expect(catalogText()).toBe(before);
  });

  const hostile: [string, string | Buffer, RegExp][] = [
    ['an oversized file', JSON.stringify(weatherJson({ description: 'x'.repeat(2_000_000) })), /larger than 1048576 bytes/],
    ['a file that is not JSON', '{"name": "com.acme/weather", "packages": [', /not JSON/],
    ['JSON that is not a server.json', JSON.stringify({ name: 'com.acme/weather', packages: { npm: '@acme/weather-mcp' } }), /packages: .*array/i],
    ['a server.json whose name is missing', JSON.stringify({ packages: [] }), /name: /],
    ['a "__proto__" member', JSON.stringify(weatherJson()).replace('"title"', '"__proto__": {"isAdmin": true}, "title"'), /"__proto__"/],
    [
      'a "__proto__" member inside the extension',
      JSON.stringify(weatherJson({ _meta: { [CATALOG_META_KEY]: JSON.parse('{"__proto__": {"env": {"NODE_OPTIONS": "--require /tmp/x.js"}}}') } })),
      /"__proto__"/,
    ],
    [
      "an extension that is not Gatehouse's",
      JSON.stringify(weatherJson({ _meta: { [CATALOG_META_KEY]: { env: { NODE_OPTIONS: 42 } } } })),
      /env\.NODE_OPTIONS/,
    ],
  ];
  for (const [what, content, message] of hostile) {
    it(`refuses ${what} with a clear error and leaves catalog.json as it was`, async () => {
      const before = catalogText();
      const run = await importFile(writeSource('hostile.json', content));
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^gatehouse policy: .*hostile\.json/);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/at .*\.js:\d+/);
      expect(catalogText()).toBe(before);
    });
  }

  it('refuses to write into a catalog.json it cannot read, rather than replace it', async () => {
    writeFileSync(join(dir, 'catalog.json'), '{"servers": {"crm": ');
    const run = await importFile(writeSource('weather.json', JSON.stringify(weatherJson())));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/catalog\.json/);
    expect(catalogText()).toBe('{"servers": {"crm": ');
  });

  it('refuses to replace a server the bundle launches itself with an imported entry', async () => {
    const before = catalogText();
    const run = await importFile(writeSource('weather.json', JSON.stringify(weatherJson())), '--name', 'crm');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/"crm" is already .*launch/);
    expect(catalogText()).toBe(before);
  });
});

describe('gatehouse policy catalog lint (issue 14)', () => {
  it('passes an imported entry whose version resolves to the signed integrity', async () => {
    expect((await importFile(writeSource('weather.json', JSON.stringify(weatherJson())))).code).toBe(0);
    const run = await runGatehouse(['policy', 'catalog', 'lint', dir], env, 60_000);
    expect(run.stdout).not.toMatch(/: error: /);
    expect(run.stdout).toMatch(/^1 entries, 0 errors$/m);
    expect(run.code, run.stdout).toBe(0);
  });

  /** Edits the weather entry of catalog.json. */
  function edit(change: (entry: { packages: Record<string, unknown>[]; _meta: Record<string, { integrity: Record<string, string> }> }) => void): void {
    const raw = JSON.parse(catalogText()) as { servers: Record<string, { server: never }> };
    change(raw.servers['weather']!.server);
    writeFileSync(join(dir, 'catalog.json'), JSON.stringify(raw, null, 2));
  }

  it('flags an entry whose signed integrity is not what the registry serves for that version', async () => {
    expect((await importFile(writeSource('weather.json', JSON.stringify(weatherJson())))).code).toBe(0);
    edit((s) => (s._meta[CATALOG_META_KEY]!.integrity.npm = integrity['1.1.0']!));
    const run = await runGatehouse(['policy', 'catalog', 'lint', dir], env, 60_000);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^weather: error: @acme\/weather-mcp@1\.0\.0: the registry serves sha512-.{13}…, not the signed sha512-.{13}…$/m);
    expect(run.stdout).toMatch(/^1 entries, 1 errors$/m);
  });

  it('flags an entry whose version the registry does not have', async () => {
    expect((await importFile(writeSource('weather.json', JSON.stringify(weatherJson())))).code).toBe(0);
    edit((s) => (s.packages[0]!.version = '9.9.9'));
    const run = await runGatehouse(['policy', 'catalog', 'lint', dir], env, 60_000);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^weather: error: @acme\/weather-mcp@9\.9\.9 cannot be resolved: /m);
  });

  it('with --offline checks the text only, so an unresolvable version passes there', async () => {
    expect((await importFile(writeSource('weather.json', JSON.stringify(weatherJson())))).code).toBe(0);
    edit((s) => (s.packages[0]!.version = '9.9.9'));
    const run = await runGatehouse(['policy', 'catalog', 'lint', dir, '--offline'], env, 60_000);
    expect(run.stdout).toMatch(/^1 entries, 0 errors$/m);
    expect(run.code).toBe(0);
  });
});
