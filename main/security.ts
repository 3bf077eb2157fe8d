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

export interface CspOptions {
  /**
   * A loopback origin the page may also fetch from, such as the daemon's HTTP listener in
   * `gatehouse daemon --ui` (`http://127.0.0.1:4312`). Exactly an origin: scheme, host and port.
   */
  loopbackOrigin?: string;
}

/** Hosts that are loopback by address, not by name: `localhost` can be resolved elsewhere. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]']);

/**
 * The Content-Security-Policy of every page Gatehouse shows. Scripts and styles come only from the
 * app itself (no inline code, no eval, no CDN); images also from `data:` URLs; the page may talk
 * only to itself and, when given, one loopback origin; nothing may frame it, change its base URL
 * or submit a form anywhere.
 */
export function contentSecurityPolicy(options: CspOptions = {}): string {
  const connect = ["'self'"];
  if (options.loopbackOrigin !== undefined) connect.push(checkedLoopbackOrigin(options.loopbackOrigin));
  const directives: [string, ...string[]][] = [
    ['default-src', "'none'"],
    ['script-src', "'self'"],
    ['style-src', "'self'"],
    ['img-src', "'self'", 'data:'],
    ['connect-src', ...connect],
    ['frame-ancestors', "'none'"],
    ['base-uri', "'none'"],
    ['form-action', "'none'"],
  ];
  return directives.map((parts) => parts.join(' ')).join('; ');
}

/** Refuses anything but an exact http(s) origin on a loopback address; the result goes verbatim into a header. */
function checkedLoopbackOrigin(origin: string): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new TypeError(`not a URL: ${JSON.stringify(origin)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`the loopback origin must be http or https, got ${JSON.stringify(origin)}`);
  }
  if (!LOOPBACK_HOSTS.has(url.hostname)) {
    throw new TypeError(`the origin must be on 127.0.0.1 or [::1], got ${JSON.stringify(origin)}`);
  }
  // URL.origin drops paths, queries, fragments and credentials: an input that differs from it carried one of them.
  if (url.origin !== origin) {
    throw new TypeError(`expected exactly an origin such as http://127.0.0.1:4312, got ${JSON.stringify(origin)}`);
  }
  return url.origin;
}

/**
 * Pins a web contents to the page it was opened on: no new windows (refused, not handed to the
 * system browser: the main process alone decides which URLs to open there), no navigation the page
 * starts itself (the main process's own `loadURL` is unaffected), no <webview>. Applied to every
 * web contents the app creates, from `app.on('web-contents-created')`.
 */
export function refuseNavigation(contents: WebContents): void {
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
}
