/**
 * What a config reload changes: the daemon starts the added servers, stops the removed ones,
 * restarts the changed ones and leaves the rest running untouched.
 */
import type { ServerConfig } from '../common/config.js';

export interface ServerDiff {
  /** Each list holds server names in sorted order. */
  added: string[];
  removed: string[];
  /** Present in both with a different configuration (any field, `enabled` included). */
  changed: string[];
  unchanged: string[];
}

export function diffServers(previous: Readonly<Record<string, ServerConfig>>, next: Readonly<Record<string, ServerConfig>>): ServerDiff {
  const diff: ServerDiff = { added: [], removed: [], changed: [], unchanged: [] };
  for (const name of Object.keys(previous)) {
    if (!Object.hasOwn(next, name)) diff.removed.push(name);
  }
  for (const name of Object.keys(next)) {
    if (!Object.hasOwn(previous, name)) diff.added.push(name);
    else if (deepEqual(previous[name], next[name])) diff.unchanged.push(name);
    else diff.changed.push(name);
  }
  diff.added.sort();
  diff.removed.sort();
  diff.changed.sort();
  diff.unchanged.sort();
  return diff;
}

/**
 * Structural equality of JSON-like values: objects compare by their keys whatever the order
 * (a key holding `undefined` counts as absent), arrays element by element.
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, index) => deepEqual(item, b[index]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const leftKeys = Object.keys(left).filter((k) => left[k] !== undefined);
  const rightKeys = Object.keys(right).filter((k) => right[k] !== undefined);
  if (leftKeys.length !== rightKeys.length) return false;
  return leftKeys.every((k) => Object.hasOwn(right, k) && deepEqual(left[k], right[k]));
}
