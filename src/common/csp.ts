/**
 * The Content-Security-Policy of every page Gatehouse shows: the Electron windows (main/security.ts
 * re-exports this function, and every window's protocol handler sends it) and the headless console
 * of `gatehouse daemon --ui` (src/node/console/server.ts sends it as a header). A pure function,
 * unit-tested in test/unit/electron-security.test.ts.
 */

/** WHATWG URL, present in Node, Electron and browsers alike (src/common has no DOM or Node types). */
interface URL {
  protocol: string;
  hostname: string;
  origin: string;
}
declare const URL: new (input: string) => URL;

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
