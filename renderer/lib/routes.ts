/**
 * Hash routes (`#/servers/memory`): the console is one page, loaded from a file in the desktop app
 * and from the loopback server headless, so routing never asks a server for a path.
 */
import { useEffect, useState } from 'react';

export const SCREENS = [
  { id: 'overview', title: 'Overview' },
  { id: 'approvals', title: 'Approvals' },
  { id: 'servers', title: 'Servers' },
  { id: 'tools', title: 'Tools' },
  { id: 'catalog', title: 'Catalog' },
  { id: 'audit', title: 'Audit' },
  { id: 'secrets', title: 'Secrets' },
  { id: 'identity', title: 'Identity' },
  { id: 'policy', title: 'Policy' },
  { id: 'clients', title: 'Clients' },
] as const;
export type ScreenId = (typeof SCREENS)[number]['id'] | 'question';

export interface Route {
  screen: ScreenId;
  /** What follows the screen: `#/servers/memory` → ['memory']. */
  rest: string[];
}

export function parseRoute(hash: string): Route {
  const parts = hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter(Boolean)
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  const screen = parts[0] ?? 'overview';
  const known = screen === 'question' || SCREENS.some((s) => s.id === screen);
  return { screen: known ? (screen as ScreenId) : 'overview', rest: known ? parts.slice(1) : [] };
}

export function href(screen: ScreenId, ...rest: string[]): string {
  return `#/${[screen, ...rest].map(encodeURIComponent).join('/')}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
