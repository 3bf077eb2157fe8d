/**
 * `app://console/…`: how the desktop app serves the built console (dist/renderer) to its windows.
 * A custom, privileged-as-secure scheme instead of `file://`, so the pages get an origin of their
 * own (`app://console`, what the IPC sender check and the CSP's 'self' name) and no access to
 * other files. Every response carries the CSP from src/common/csp.ts.
 *
 * `resolveAppRequest` is pure and unit-tested; main.ts wraps it in `protocol.handle`.
 */
import { extname, join, normalize, resolve, sep } from 'node:path';
import { contentSecurityPolicy } from '../src/common/csp.js';

export const APP_SCHEME = 'app';
export const APP_HOST = 'console';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

export type AppResolution = { ok: true; file: string; headers: Record<string, string> } | { ok: false; status: 404 | 403 };

/** The file an `app://console/...` URL names under `root`, with its headers; nothing outside `root`, nothing but known types. */
export function resolveAppRequest(requestUrl: string, root: string): AppResolution {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return { ok: false, status: 404 };
  }
  if (url.protocol !== `${APP_SCHEME}:` || url.host !== APP_HOST) return { ok: false, status: 403 };
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return { ok: false, status: 404 };
  }
  if (path.includes('\0')) return { ok: false, status: 404 };
  const base = resolve(root);
  const file = resolve(join(base, normalize(path === '/' || path === '' ? '/index.html' : path)));
  if (!file.startsWith(base + sep)) return { ok: false, status: 403 };
  const type = TYPES[extname(file)];
  if (!type) return { ok: false, status: 404 };
  return {
    ok: true,
    file,
    headers: {
      'content-type': type,
      'content-security-policy': contentSecurityPolicy(),
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
    },
  };
}

/** The address of a page of the console: the console itself, or a question popup. */
export function appUrl(route = ''): string {
  return `${APP_SCHEME}://${APP_HOST}/index.html${route ? `#/${route}` : ''}`;
}
