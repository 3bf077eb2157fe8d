/**
 * POSIX path arithmetic for sandbox plans, without `node:path` (the core stays free of Node's
 * modules). Sandboxes exist on Linux and macOS only, so every path here is a POSIX path.
 */

/** `/a//b/./c/` → `/a/b/c`. Callers have already refused `..` segments and relative paths. */
export function normalize(path: string): string {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  return '/' + parts.join('/');
}

/** True when `path` is `parent` or lies under it. */
export function isWithin(path: string, parent: string): boolean {
  if (parent === '/') return true;
  return path === parent || path.startsWith(parent + '/');
}

export function dirname(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Number of segments: `/` is 0, `/a/b` is 2. Parents always sort before their children by depth. */
export function depth(path: string): number {
  return path === '/' ? 0 : path.split('/').length - 1;
}

/** `~` and `~/x` against the home directory; other paths unchanged. Undefined when `~` is used without a home. */
export function expandHome(path: string, home: string | undefined): string | undefined {
  if (path !== '~' && !path.startsWith('~/')) return normalize(path);
  if (home === undefined || !home.startsWith('/')) return undefined;
  return normalize(home + path.slice(1));
}

/** Parents before children, then by name: the order in which mounts stack correctly. */
export function byDepth(a: string, b: string): number {
  return depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0);
}
