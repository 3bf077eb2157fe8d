/**
 * The preload of every Gatehouse window. It runs sandboxed (no Node), so it is bundled into one
 * CommonJS file (main/vite.preload.config.ts → dist/main/preload.cjs) with the channel list from
 * src/common, and puts only the declared channels on `window.gatehouse` (see bridge.ts).
 */
import { contextBridge, ipcRenderer } from 'electron';
import { buildBridge } from './bridge.js';

contextBridge.exposeInMainWorld('gatehouse', buildBridge(ipcRenderer));
