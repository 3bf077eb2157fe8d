/**
 * Builds the console (renderer/) into dist/renderer/, for the Electron window and for the
 * loopback console of `gatehouse daemon --ui`. Assets are referenced by relative paths (the
 * window loads the files from the app bundle, not from a server root) and everything is bundled:
 * the CSP in main/security.ts allows scripts and styles from the app itself only.
 *
 * Tests do not use this file: vitest.config.ts is separate.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const rootDir = fileURLToPath(new URL('./renderer/', import.meta.url));
const outDir = fileURLToPath(new URL('./dist/renderer/', import.meta.url));

/** A `src` or `href` that leaves the app: `https://cdn...`, `http://...` or protocol-relative `//...`. */
const REMOTE_REFERENCE = /\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i;

/** Fails the build (and the dev server) when index.html pulls anything from another origin. */
function noRemoteResources(): Plugin {
  return {
    name: 'gatehouse:no-remote-resources',
    transformIndexHtml: {
      order: 'post',
      handler(html, context) {
        const match = REMOTE_REFERENCE.exec(html);
        if (match) {
          throw new Error(`${context.filename} loads from another origin (${match[0]}…): bundle it instead; the CSP allows only the app's own files.`);
        }
        return html;
      },
    },
  };
}

export default defineConfig({
  root: rootDir,
  base: './',
  plugins: [noRemoteResources()],
  // React's automatic JSX runtime, compiled by esbuild (no Babel plugin needed).
  esbuild: { jsx: 'automatic' },
  build: {
    outDir,
    emptyOutDir: true,
    sourcemap: true,
    // No data: URLs for fonts, scripts or styles: the CSP allows data: for images only.
    assetsInlineLimit: 0,
    // One bundle, read from disk by the app or from loopback headless: its size (React, uPlot, TanStack) is no download cost.
    chunkSizeWarningLimit: 900,
    // Nothing is left external: a bare import that is not bundled would be fetched from nowhere.
    rollupOptions: {
      external: [],
      onwarn(warning, warn) {
        // zod's sources carry comments Rollup cannot place; they change nothing in the bundle.
        if (warning.code === 'INVALID_ANNOTATION' && warning.id?.includes('/node_modules/')) return;
        // TanStack Table marks modules "use client" for React Server Components; a plain client bundle has no use for it.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE' && warning.id?.includes('/node_modules/')) return;
        warn(warning);
      },
    },
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
  },
  preview: {
    host: '127.0.0.1',
    port: 4173,
    strictPort: true,
  },
});
