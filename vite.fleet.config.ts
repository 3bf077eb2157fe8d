/**
 * Builds the hub's fleet view (renderer/fleet/) into dist/fleet/, which `gatehouse hub` serves at
 * /fleet/. The console's settings (vite.config.ts: no remote resources, everything bundled, no
 * data: URLs), with the fleet page as the root. `npm run build` runs it after the console.
 */
import { fileURLToPath } from 'node:url';
import { mergeConfig } from 'vite';
import consoleConfig from './vite.config.js';

export default mergeConfig(consoleConfig, {
  root: fileURLToPath(new URL('./renderer/fleet/', import.meta.url)),
  build: { outDir: fileURLToPath(new URL('./dist/fleet/', import.meta.url)) },
});
