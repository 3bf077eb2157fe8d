#!/usr/bin/env node
/**
 * `npm run desktop:install`: fetches the Electron binary that `npm ci` leaves out, so that
 * `npm start` opens the desktop app. package.json's `allowScripts` keeps electron's own install
 * script from running during `npm ci` on every machine (the CI machines cannot reach GitHub, where
 * the binary is downloaded from); this runs that same script on purpose, on a machine that can.
 * ELECTRON_MIRROR and the other @electron/get variables apply as usual.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const electronDir = dirname(require.resolve('electron/package.json'));
const env = { ...process.env };
// The variable that skipped the download during `npm ci` must not skip it now.
delete env.ELECTRON_SKIP_BINARY_DOWNLOAD;
const run = spawnSync(process.execPath, [join(electronDir, 'install.js')], {
  env,
  stdio: ['ignore', 'inherit', 'pipe'],
  encoding: 'utf8',
  timeout: 10 * 60_000,
});
const pathFile = join(electronDir, 'path.txt');
if (run.status === 0 && existsSync(pathFile)) {
  process.stdout.write(`desktop:install: the Electron binary is installed (${join(electronDir, 'dist')}); \`npm start\` now opens the desktop app.\n`);
  process.exit(0);
}
const reason = (run.stderr || run.error?.message || `exit status ${run.status}`).trim().split('\n').filter(Boolean).at(-1);
process.stderr.write(
  `desktop:install: could not download the Electron binary: ${reason}\n` +
    'It comes from GitHub releases (or ELECTRON_MIRROR); run this on a machine that can reach them. ' +
    'Without it, `npm start` runs Gatehouse headless with its console in the browser.\n',
);
process.exit(1);
