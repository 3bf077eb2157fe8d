/** Digests and shapes of call arguments and results: what the audit log may hold without values. */
import { createHash } from 'node:crypto';

/** JSON with object keys sorted, so equal values always hash the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'null';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

export function digest(value: unknown): string {
  return 'sha256:' + createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/** The structure of a value with every leaf replaced by its type: `{ path: 'string', n: 'number' }`. */
export function shapeOf(value: unknown, depth = 0): unknown {
  if (depth > 8) return '…';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? [] : [shapeOf(value[0], depth + 1), ...(value.length > 1 ? [`×${value.length}`] : [])];
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const keys = Object.keys(value);
    for (const key of keys.slice(0, 64)) out[key] = shapeOf((value as Record<string, unknown>)[key], depth + 1);
    if (keys.length > 64) out['…'] = `${keys.length - 64} more keys`;
    return out;
  }
  return typeof value;
}
