/**
 * Digests and shapes of call arguments and results: what the audit log may hold without values.
 *
 * The canonical form is what a peer receives, written one way: `JSON.stringify`'s encoding (what
 * the SDK puts on the wire) with the members of every object in sorted key order. It is written in
 * one pass, straight from the value, never through an intermediate object: a copy built by
 * assigning `out[key]` turns a `"__proto__"` member into a prototype, which drops it from the
 * digest while the upstream still receives it (issue 12, finding 1). So every member counts,
 * `"__proto__"` and `"constructor"` included, lone surrogates are escaped as `JSON.stringify`
 * escapes them, and `-0` is written `0`, as it is sent.
 */
import { createHash } from 'node:crypto';

/** JSON with object keys sorted, so equal values always hash the same, and different ones never. */
export function canonicalJson(value: unknown): string {
  return write(value, '') ?? 'null';
}

/**
 * One value in canonical form, or undefined where `JSON.stringify` leaves it out (undefined,
 * functions, symbols: dropped from objects, `null` in arrays). `key` is passed to `toJSON`, as
 * `JSON.stringify` does. Exported for writers specialised to one known shape of object (the audit
 * event's sealer), which write the members in their sorted order themselves and each member's
 * value through this, so that their output is the same bytes as `canonicalJson`'s.
 */
export function canonicalMember(value: unknown, key: string | number): string | undefined {
  return write(value, key);
}

function write(value: unknown, key: string | number): string | undefined {
  if (typeof value === 'object' && value !== null && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON(key: string): unknown }).toJSON(String(key));
  }
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      // NaN and the infinities become null, -0 becomes 0: exactly what the wire carries.
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('a BigInt has no JSON form');
    case 'object':
      if (value === null) return 'null';
      return Array.isArray(value) ? writeArray(value) : writeObject(value as Record<string, unknown>);
    default:
      return undefined;
  }
}

function writeArray(items: readonly unknown[]): string {
  let out = '[';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += ',';
    out += write(items[i], i) ?? 'null';
  }
  return out + ']';
}

function writeObject(object: Record<string, unknown>): string {
  // Own enumerable string keys, as JSON.stringify sees them; a "__proto__" member read this way is the member, never the prototype.
  const keys = sortedKeys(object);
  let out = '{';
  let first = true;
  for (const key of keys) {
    const member = write(object[key], key);
    if (member === undefined) continue;
    out += (first ? '' : ',') + quote(key) + ':' + member;
    first = false;
  }
  return out + '}';
}

/** Up to this many keys are sorted in place, by insertion: `Array.prototype.sort` copies the array into a scratch one on every call. */
const SMALL_OBJECT = 16;

/**
 * An object's own enumerable keys in the order `sort()` gives them (UTF-16 code units). The objects
 * a call's arguments and results are made of mostly have a handful of keys, often already in order;
 * sorting those in place spares an allocation per object, on every call.
 */
function sortedKeys(object: Record<string, unknown>): string[] {
  const keys = Object.keys(object);
  if (keys.length > SMALL_OBJECT) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/** Characters JSON.stringify escapes (quote, backslash, controls) or may (surrogates: it escapes lone ones). */
// eslint-disable-next-line no-control-regex -- the control characters are exactly what must be found
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON.stringify writes it; most need no escaping and skip the native call. */
function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : '"' + text + '"';
}

export function digest(value: unknown): string {
  return 'sha256:' + createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/**
 * An object to build by key without surprises: with no prototype, `out['__proto__'] = v` adds a
 * member like any other key (on a plain object it would replace the prototype and vanish).
 */
export function memberMap<T = unknown>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** The structure of a value with every leaf replaced by its type: `{ path: 'string', n: 'number' }`. */
export function shapeOf(value: unknown, depth = 0): unknown {
  if (depth > 8) return '…';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? [] : [shapeOf(value[0], depth + 1), ...(value.length > 1 ? [`×${value.length}`] : [])];
  if (typeof value === 'object') {
    const out = memberMap();
    const keys = Object.keys(value);
    for (const key of keys.slice(0, 64)) out[key] = shapeOf((value as Record<string, unknown>)[key], depth + 1);
    if (keys.length > 64) out['…'] = `${keys.length - 64} more keys`;
    return out;
  }
  return typeof value;
}
