/**
 * The desktop app from a checkout (issue 17): the one command that fetches Electron's binary, and
 * the end-to-end smoke check that needs it. These machines cannot download the binary, so here the
 * smoke check must say exactly that and fail, and the install command must fail with the reason.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO } from './support/gatehouse.js';

const run = (script: string, env: NodeJS.ProcessEnv = {}) =>
  promisify(execFile)(process.execPath, [join(REPO, 'scripts', script)], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    timeout: 120_000,
  }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe('the desktop app from a checkout', () => {
  it('names both commands in package.json', () => {
    const scripts = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).scripts as Record<string, string>;
    expect(scripts['desktop:install']).toBe('node scripts/desktop-install.mjs');
    expect(scripts['smoke:desktop']).toBe('node scripts/smoke-desktop.mjs');
  });

  it('smoke:desktop says exactly that Electron cannot run here, and fails', async () => {
    expect(existsSync(join(REPO, 'node_modules', 'electron', 'path.txt'))).toBe(false);
    const result = await run('smoke-desktop.mjs');
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'smoke:desktop: Electron cannot run on this machine: the Electron binary is not installed ' +
        '(npm ci skips its download; run `npm run desktop:install` on a machine that can reach GitHub releases). Nothing was tested.\n',
    );
  });

  it("desktop:install runs electron's own download, even with the variable that skipped it during npm ci, and says why it failed", async () => {
    // A mirror on loopback that has nothing: the download fails at once, as it does here against GitHub.
    const asked: string[] = [];
    const mirror = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve));
    try {
      const port = (mirror.address() as AddressInfo).port;
      const result = await run('desktop-install.mjs', {
        ELECTRON_SKIP_BINARY_DOWNLOAD: '1',
        ELECTRON_MIRROR: `http://127.0.0.1:${port}/`,
        electron_config_cache: join(REPO, 'dist', '.electron-cache-test'),
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('desktop:install: could not download the Electron binary');
      expect(result.stderr).toContain('run this on a machine that can reach them');
      // It did try: electron's install script asked the mirror for this version's files.
      const version = JSON.parse(readFileSync(join(REPO, 'node_modules', 'electron', 'package.json'), 'utf8')).version as string;
      expect(asked.some((url) => url.includes(version))).toBe(true);
      expect(existsSync(join(REPO, 'node_modules', 'electron', 'path.txt'))).toBe(false);
    } finally {
      await new Promise<void>((resolve) => mirror.close(() => resolve()));
    }
  });
});
