/**
 * Bundles the preload (main/preload.ts) into dist/main/preload.cjs: a sandboxed preload can
 * require nothing but `electron`, so the channel list it imports from src/common is bundled in.
 * `npm run build` runs it after tsc (see docs/console.md).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    outDir: fileURLToPath(new URL('../dist/main/', import.meta.url)),
    emptyOutDir: false,
    minify: false,
    sourcemap: true,
    lib: {
      entry: fileURLToPath(new URL('./preload.ts', import.meta.url)),
      formats: ['cjs'],
      fileName: () => 'preload.cjs',
    },
    rollupOptions: {
      external: ['electron'],
      // Only the channel names reach the preload; the schemas beside them are left out.
      treeshake: { moduleSideEffects: false },
    },
  },
});
