// Ambient declarations of the console (renderer/): what the preload puts on `window` in the
// desktop app, and the stylesheet imports Vite bundles.
import type { ConsoleBridge } from '../src/common/console-api.js';

declare global {
  interface Window {
    /** Present only in the desktop app: the preload's declared IPC channels (main/preload.ts). */
    readonly gatehouse?: ConsoleBridge;
  }
}

declare module '*.css' {
  const stylesheet: string;
  export default stylesheet;
}
