/**
 * Electron security defaults, in one place.
 *
 * Every BrowserWindow Gatehouse opens (the console, approval popups, pairing consent) takes its
 * `webPreferences` from `secureWebPreferences`, every page it loads carries the policy from
 * `contentSecurityPolicy`, and every web contents is passed through `refuseNavigation`.
 *
 * This module imports electron for types only, so unit tests load it under plain Node
 * (test/unit/electron-security.test.ts); keep it that way.
 */
import { isAbsolute } from 'node:path';
import type { WebContents, WebPreferences } from 'electron';

/**
 * The web preferences of every window. There is deliberately no way to pass overrides: a window
 * that needs a weaker setting needs a change here, with its reason, and a changed test.
 *
 * `preloadPath` must be absolute (Electron resolves nothing else reliably, and a relative path
 * would depend on the working directory the app was started from).
 */
export function secureWebPreferences(preloadPath: string): WebPreferences {
  if (!isAbsolute(preloadPath)) {
    throw new TypeError(`the preload script path must be absolute, got ${JSON.stringify(preloadPath)}`);
  }
  // A fresh object each call: BrowserWindow keeps a reference, and no window may change another's.
  return {
    preload: preloadPath,
    // The renderer is a sandboxed Chromium process: no Node, no require, even in the preload.
    sandbox: true,
    // The preload's world is separate from the page's, so the page cannot reach what it exposes except through contextBridge.
    contextIsolation: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    // Same-origin policy stays on, and an https page may not load http content.
    webSecurity: true,
    allowRunningInsecureContent: false,
    // No <webview>, no experimental Blink features, no navigation by dropping a file on the window.
    webviewTag: false,
    experimentalFeatures: false,
    navigateOnDragDrop: false,
    // A page that opens dialogs in a loop can be silenced.
    safeDialogs: true,
    // The spellchecker downloads dictionaries from a Google CDN; nothing Gatehouse shows needs it.
    spellcheck: false,
  };
}

// The CSP is a pure function in src/common, so that the headless console server (src/node/console)
// sends the very same policy as a header; it is re-exported here, where every window takes it from.
export { contentSecurityPolicy, type CspOptions } from '../src/common/csp.js';

/**
 * Pins a web contents to the page it was opened on: no new windows, no navigation the page starts
 * itself (the main process's own `loadURL` is unaffected), no <webview>. Applied to every web
 * contents the app creates, from `app.on('web-contents-created')`.
 *
 * A link the page asks to open in a new window (`target="_blank"`, such as the documentation or
 * the identity provider's sign-in page) is never opened inside the app; with `openExternal`, an
 * http(s) link is handed to it (the system browser) and anything else is dropped.
 */
export function refuseNavigation(contents: WebContents, openExternal?: (url: string) => void): void {
  contents.setWindowOpenHandler((details?: { url?: string }) => {
    const url = details?.url;
    if (openExternal && typeof url === 'string' && isWebLink(url)) openExternal(url);
    return { action: 'deny' };
  });
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

/** An http(s) URL without credentials: the only kind of link handed to the system browser. */
export function isWebLink(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return (parsed.protocol === 'https:' || parsed.protocol === 'http:') && parsed.username === '' && parsed.password === '';
}
