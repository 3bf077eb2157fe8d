/**
 * The desktop app's packaging (issue 17), checked by loading electron-builder.yml: the full build
 * (`npm run dist`, `electron-builder --dir`) needs the Electron binary, which these machines cannot
 * download, so the configuration it would use is asserted here: the installers IT deploys, the
 * fuses, what goes into the archive, the icon set, notarisation and the hardened runtime's
 * entitlements, the gatehouse:// scheme, and where updates are published.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
interface Target {
  target?: (string | { target: string })[];
  icon?: string;
  [key: string]: unknown;
}
const config = load(readFileSync(join(ROOT, 'electron-builder.yml'), 'utf8')) as Record<string, unknown> & { mac: Target; win: Target; linux: Target };
const targets = (t: Target) => (t.target ?? []).map((x) => (typeof x === 'string' ? x : x.target));
const png = (file: string) => {
  const data = readFileSync(file);
  expect(data.subarray(1, 4).toString('ascii'), file).toBe('PNG');
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
};

describe('electron-builder.yml', () => {
  it('builds the installers IT deploys next to the interactive ones: pkg and dmg, msi and nsis, deb, rpm and AppImage', () => {
    expect(targets(config.mac).sort()).toEqual(['dmg', 'pkg']);
    expect(targets(config.win).sort()).toEqual(['msi', 'nsis']);
    expect(targets(config.linux).sort()).toEqual(['AppImage', 'deb', 'rpm']);
    expect(config.pkg).toMatchObject({ installLocation: '/Applications', isRelocatable: false, allowCurrentUserHome: false });
    expect(config.msi).toMatchObject({ perMachine: true, runAfterFinish: false });
    expect((config.msi as { upgradeCode: string }).upgradeCode).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it('flips every fuse that lets code into the signed app (run-as-node, NODE_OPTIONS, inspector, loose app folders, file:// privileges)', () => {
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      enableCookieEncryption: true,
      grantFileProtocolExtraPrivileges: false,
    });
  });

  it('packs the built app and its resources, never tests, sources or build caches, and rebuilds native modules for Electron', () => {
    expect(config.files).toEqual(['package.json', 'dist/**/*', '!dist/.tsbuild/**', '!dist/bench/**', '!**/*.d.ts', '!**/*.tsbuildinfo', 'resources/**/*']);
    expect(config.asar).toBe(true);
    expect(config.asarUnpack).toEqual(['**/*.node']);
    expect(config.npmRebuild).toBe(true);
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).main).toBe('dist/main/main.js');
  });

  it('has an icon set for every platform: a 1024 px master, Linux sizes, an .ico and an .icns', () => {
    expect(png(join(ROOT, 'resources/icons/icon.png'))).toEqual({ width: 1024, height: 1024 });
    const sizes = readdirSync(join(ROOT, config.linux.icon!)).sort();
    expect(sizes).toEqual(expect.arrayContaining(['16x16.png', '32x32.png', '48x48.png', '128x128.png', '256x256.png', '512x512.png']));
    for (const name of sizes) {
      const n = Number(name.split('x')[0]);
      expect(png(join(ROOT, config.linux.icon!, name))).toEqual({ width: n, height: n });
    }
    const ico = readFileSync(join(ROOT, config.win.icon!));
    expect([ico.readUInt16LE(0), ico.readUInt16LE(2)]).toEqual([0, 1]);
    expect(ico.readUInt16LE(4)).toBeGreaterThanOrEqual(5);
    const icns = readFileSync(join(ROOT, config.mac.icon!));
    expect(icns.subarray(0, 4).toString('ascii')).toBe('icns');
    expect(icns.readUInt32BE(4)).toBe(statSync(join(ROOT, config.mac.icon!)).size);
    expect(icns.includes(Buffer.from('ic10'))).toBe(true);
  });

  it('signs for the hardened runtime with only the JIT exception, and notarizes', () => {
    expect(config.mac).toMatchObject({
      hardenedRuntime: true,
      notarize: true,
      entitlements: 'packaging/entitlements.mac.plist',
      entitlementsInherit: 'packaging/entitlements.mac.inherit.plist',
    });
    for (const file of [config.mac.entitlements as string, config.mac.entitlementsInherit as string]) {
      const plist = readFileSync(join(ROOT, file), 'utf8');
      const keys = [...plist.matchAll(/<key>([^<]+)<\/key>\s*<(true|false)\/>/g)].map((m) => [m[1], m[2]]);
      expect(keys, file).toEqual([['com.apple.security.cs.allow-jit', 'true']]);
    }
  });

  it('registers the gatehouse:// scheme and publishes a generic update feed (the app itself reads only its managed one)', () => {
    expect(config.protocols).toEqual([{ name: 'Gatehouse', schemes: ['gatehouse'] }]);
    expect(config.publish).toEqual([{ provider: 'generic', url: expect.stringMatching(/^https:\/\//), channel: 'latest' }]);
  });
});
