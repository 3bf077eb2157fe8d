/**
 * Issue 14: the npm installer against a registry on loopback, with the real `npm` client: the
 * approved bytes install and run from Gatehouse's own directory; other bytes for the same version
 * are refused with the reason before anything is unpacked; an install edited afterwards fails its
 * check before a start.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NpmInstaller } from '../../src/node/catalog/npm.js';
import { startRegistry, type TestRegistry } from '../support/npm-registry.js';

let registry: TestRegistry;
let root: string;
let installer: NpmInstaller;
beforeAll(async () => {
  registry = await startRegistry();
  root = mkdtempSync(join(tmpdir(), 'gh-packages-'));
  installer = new NpmInstaller({ root, env: { PATH: process.env.PATH, HOME: root } });
});
afterAll(async () => {
  await registry.close();
  rmSync(root, { recursive: true, force: true });
});

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
});

describe('installing an npm package the catalogue approved (issue 14)', () => {
  it('installs the approved bytes into its own directory, and the program runs from there', async () => {
    const integrity = registry.publish({ name: '@acme/weather-mcp', version: '1.0.0' });
    const { dir, program, record } = await installer.install({ identifier: '@acme/weather-mcp', version: '1.0.0', integrity, registry: registry.url });
    expect(dir.startsWith(root)).toBe(true);
    expect(record).toMatchObject({ identifier: '@acme/weather-mcp', version: '1.0.0', integrity });
    const out = execFileSync(process.execPath, [program], { input: initialize + '\n', encoding: 'utf8' });
    expect(JSON.parse(out.split('\n')[0]!).result.serverInfo).toEqual({ name: '@acme/weather-mcp', version: '1.0.0' });
    await expect(installer.verify(dir, { identifier: '@acme/weather-mcp', version: '1.0.0', integrity })).resolves.toMatchObject({ program });
  });

  it('refuses a tampered tarball (same version, other bytes), says why, and leaves nothing installed', async () => {
    const approved = registry.publish({ name: 'tampered-mcp', version: '2.0.0' });
    registry.tamper({ name: 'tampered-mcp', version: '2.0.0', marker: 'evil' });
    const attempt = installer.install({ identifier: 'tampered-mcp', version: '2.0.0', integrity: approved, registry: registry.url });
    await expect(attempt).rejects.toThrow(
      /^refused tampered-mcp@2\.0\.0: the registry served other bytes than the catalogue approved \(expected sha512-.{13}…, got sha512-.{13}…\); nothing was installed$/,
    );
    expect(existsSync(installer.dirOf('tampered-mcp', '2.0.0'))).toBe(false);
    expect(readdirSync(root).filter((n) => n.startsWith('.install-'))).toEqual([]);
  });

  it('refuses to start an install whose files were changed after it was verified', async () => {
    const integrity = registry.publish({ name: 'edited-mcp', version: '1.0.0' });
    const { dir, program } = await installer.install({ identifier: 'edited-mcp', version: '1.0.0', integrity, registry: registry.url });
    appendFileSync(program, '\n// an agent was here\n');
    await expect(installer.verify(dir, { identifier: 'edited-mcp', version: '1.0.0', integrity })).rejects.toThrow(
      /installed files of edited-mcp@1\.0\.0 changed after they were verified/,
    );
  });

  it('resolves a spec to the exact version and integrity the registry names today', async () => {
    const integrity = registry.publish({ name: 'resolved-mcp', version: '3.1.4' });
    await expect(installer.resolve('resolved-mcp', 'latest', registry.url)).resolves.toMatchObject({ version: '3.1.4', integrity });
  });
});
