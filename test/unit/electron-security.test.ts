/**
 * The Electron security defaults (main/security.ts). They run under plain Node: the module imports
 * electron for types only (checked below), so these tests need no Electron binary.
 */
import { readFileSync } from 'node:fs';
import type { WebContents, WebPreferences } from 'electron';
import { describe, expect, it } from 'vitest';

// test/tsconfig.json does not reference the main/ project yet, and a static import of
// main/security.ts from here fails `tsc -b` (TS6307) until it does. Meanwhile the module is loaded
// at run time and its shape declared here; once the reference is added, this becomes
// `import { contentSecurityPolicy, refuseNavigation, secureWebPreferences } from '../../main/security.js'`.
interface SecurityModule {
  secureWebPreferences(preloadPath: string): WebPreferences;
  contentSecurityPolicy(options?: { loopbackOrigin?: string }): string;
  refuseNavigation(contents: WebContents): void;
}
const SECURITY_MODULE: string = '../../main/security.js';
const { contentSecurityPolicy, refuseNavigation, secureWebPreferences } = (await import(SECURITY_MODULE)) as SecurityModule;

const PRELOAD = '/opt/Gatehouse/resources/app.asar/dist/main/preload.js';

/** `a b; c d e` → Map { a → [b], c → [d, e] }, failing on a repeated directive. */
function directives(csp: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const part of csp.split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name === undefined || name === '') continue;
    expect(map.has(name), `directive ${name} appears twice`).toBe(false);
    map.set(name, values);
  }
  return map;
}

describe('main/security.ts', () => {
  it('imports electron for types only, so that it loads without Electron', () => {
    const source = readFileSync(new URL('../../main/security.ts', import.meta.url), 'utf8');
    const electronImports = source.match(/^\s*(import|export)\b[^;]*?from\s*['"]electron(\/[^'"]*)?['"]/gm) ?? [];
    expect(electronImports.length).toBeGreaterThan(0);
    for (const statement of electronImports) expect(statement).toMatch(/^\s*import type\b/);
    expect(source).not.toMatch(/\b(require|import)\s*\(\s*['"]electron/);
  });
});

describe('secureWebPreferences', () => {
  it('sandboxes the renderer and isolates the preload from the page', () => {
    const prefs = secureWebPreferences(PRELOAD);
    expect(prefs.sandbox).toBe(true);
    expect(prefs.contextIsolation).toBe(true);
  });

  it('gives the page, its workers and its frames no Node integration', () => {
    const prefs = secureWebPreferences(PRELOAD);
    expect(prefs.nodeIntegration).toBe(false);
    expect(prefs.nodeIntegrationInWorker).toBe(false);
    expect(prefs.nodeIntegrationInSubFrames).toBe(false);
  });

  it('keeps web security on and refuses insecure content', () => {
    const prefs = secureWebPreferences(PRELOAD);
    expect(prefs.webSecurity).toBe(true);
    expect(prefs.allowRunningInsecureContent).toBe(false);
  });

  it('turns off the spellchecker, webview tags and experimental features', () => {
    const prefs = secureWebPreferences(PRELOAD);
    expect(prefs.spellcheck).toBe(false);
    expect(prefs.webviewTag).toBe(false);
    expect(prefs.experimentalFeatures).toBe(false);
    expect(prefs.navigateOnDragDrop).toBe(false);
  });

  it('loads the preload script it is given', () => {
    expect(secureWebPreferences(PRELOAD).preload).toBe(PRELOAD);
  });

  it('sets nothing that weakens a default, such as enableBlinkFeatures or a shared session', () => {
    const allowed = [
      'preload',
      'sandbox',
      'contextIsolation',
      'nodeIntegration',
      'nodeIntegrationInWorker',
      'nodeIntegrationInSubFrames',
      'webSecurity',
      'allowRunningInsecureContent',
      'webviewTag',
      'experimentalFeatures',
      'navigateOnDragDrop',
      'safeDialogs',
      'spellcheck',
    ];
    expect(Object.keys(secureWebPreferences(PRELOAD)).sort()).toEqual([...allowed].sort());
  });

  it('refuses a relative preload path', () => {
    expect(() => secureWebPreferences('preload.js')).toThrow(/absolute/);
    expect(() => secureWebPreferences('./dist/main/preload.js')).toThrow(/absolute/);
  });

  it('returns a fresh object each time, so that no window can change another window’s preferences', () => {
    const first = secureWebPreferences(PRELOAD);
    first.nodeIntegration = true;
    expect(secureWebPreferences(PRELOAD).nodeIntegration).toBe(false);
  });
});

describe('contentSecurityPolicy', () => {
  it('denies everything by default and allows scripts and styles only from the app itself', () => {
    const csp = directives(contentSecurityPolicy());
    expect(csp.get('default-src')).toEqual(["'none'"]);
    expect(csp.get('script-src')).toEqual(["'self'"]);
    expect(csp.get('style-src')).toEqual(["'self'"]);
  });

  it('allows images from the app and from data: URLs', () => {
    expect(directives(contentSecurityPolicy()).get('img-src')).toEqual(["'self'", 'data:']);
  });

  it('lets the page connect only to itself when no loopback origin is given', () => {
    expect(directives(contentSecurityPolicy()).get('connect-src')).toEqual(["'self'"]);
  });

  it('adds the given loopback origin to connect-src and nowhere else', () => {
    const csp = directives(contentSecurityPolicy({ loopbackOrigin: 'http://127.0.0.1:4312' }));
    expect(csp.get('connect-src')).toEqual(["'self'", 'http://127.0.0.1:4312']);
    for (const [name, values] of csp) {
      if (name !== 'connect-src') expect(values, name).not.toContain('http://127.0.0.1:4312');
    }
  });

  it('accepts the IPv6 loopback address and https', () => {
    const csp = directives(contentSecurityPolicy({ loopbackOrigin: 'https://[::1]:8443' }));
    expect(csp.get('connect-src')).toEqual(["'self'", 'https://[::1]:8443']);
  });

  it('forbids framing, base URL changes and form submission', () => {
    const csp = directives(contentSecurityPolicy());
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    expect(csp.get('base-uri')).toEqual(["'none'"]);
    expect(csp.get('form-action')).toEqual(["'none'"]);
  });

  it('never allows inline code, eval, wildcards or remote hosts', () => {
    const csp = contentSecurityPolicy({ loopbackOrigin: 'http://127.0.0.1:4312' });
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|unsafe-hashes|wasm-unsafe-eval|\*/);
    const remote = [...directives(csp).values()].flat().filter((v) => /^(https?|wss?):/.test(v));
    expect(remote).toEqual(['http://127.0.0.1:4312']);
  });

  it('is a pure function: the same input gives the same policy', () => {
    expect(contentSecurityPolicy()).toBe(contentSecurityPolicy());
    expect(contentSecurityPolicy({ loopbackOrigin: 'http://127.0.0.1:1' })).toBe(contentSecurityPolicy({ loopbackOrigin: 'http://127.0.0.1:1' }));
  });

  it.each([
    ['a remote host', 'https://example.com'],
    ['a name that may not resolve to loopback', 'http://localhost:4312'],
    ['a non-http scheme', 'file://127.0.0.1'],
    ['a path', 'http://127.0.0.1:4312/ui'],
    ['a trailing slash', 'http://127.0.0.1:4312/'],
    ['credentials', 'http://user:pw@127.0.0.1:4312'],
    ['an injected directive', "http://127.0.0.1:4312; script-src 'unsafe-inline'"],
    ['a wildcard', 'http://*:4312'],
    ['something that is not a URL', 'not a url'],
  ])('refuses a loopback origin with %s', (_what, origin) => {
    expect(() => contentSecurityPolicy({ loopbackOrigin: origin })).toThrow(TypeError);
  });
});

describe('refuseNavigation', () => {
  /** A stand-in for WebContents that records what refuseNavigation installs. */
  function fakeContents() {
    const listeners = new Map<string, (event: { preventDefault(): void }) => void>();
    let openHandler: (() => { action: string }) | undefined;
    const contents = {
      setWindowOpenHandler(handler: () => { action: string }) {
        openHandler = handler;
      },
      on(name: string, listener: (event: { preventDefault(): void }) => void) {
        listeners.set(name, listener);
        return contents;
      },
    };
    /** Emits `name` and reports whether a listener prevented its default. */
    const emit = (name: string): boolean => {
      let prevented = false;
      listeners.get(name)?.({ preventDefault: () => (prevented = true) });
      return prevented;
    };
    return { contents, emit, openWindow: () => openHandler?.() };
  }

  it('denies every request to open a new window', () => {
    const fake = fakeContents();
    refuseNavigation(fake.contents as unknown as WebContents);
    expect(fake.openWindow()).toEqual({ action: 'deny' });
  });

  it('prevents the page from navigating away and from attaching a webview', () => {
    const fake = fakeContents();
    refuseNavigation(fake.contents as unknown as WebContents);
    expect(fake.emit('will-navigate')).toBe(true);
    expect(fake.emit('will-attach-webview')).toBe(true);
  });
});
