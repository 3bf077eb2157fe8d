/**
 * A call's arguments as Cedar sees them (`context.args`). The rule, also in docs/policy.md:
 *
 * - Only the arguments the bundle's schema declares (in `ToolArgs` / `PromptArgs`) are passed;
 *   a policy cannot name any other, so leaving them out changes no decision.
 * - Each one must have the declared type, or the call is refused: a `Long` takes a whole number,
 *   a `String` a string, a `Bool` a boolean, a `Set<T>` an array of T, a record an object.
 *   Nothing is coerced (`"100"` is not a `Long`).
 * - Cedar has no fractions. A fractional number is accepted only for an argument the catalog
 *   gives a `scale` (decimal places): it is passed as an integer in those units, exactly
 *   (`12.34` with scale 2 becomes `1234`; `12.345` with scale 2 is refused, never rounded).
 * - `null` counts as absent. A required attribute that is absent refuses the call.
 * - Integers beyond ±(2^53 − 1), where JSON numbers stop being exact, are refused.
 */
import type { ArgType, CedarValue } from './model.js';

export type ArgsResult = { ok: true; value: Record<string, CedarValue> } | { ok: false; reason: string };

type Converted = { ok: true; value: CedarValue | undefined } | { ok: false; reason: string };

export function argumentsToCedar(args: Record<string, unknown> | undefined, type: ArgType, scale: Readonly<Record<string, number>>): ArgsResult {
  const converted = convert(args ?? {}, type, '', scale);
  if (!converted.ok) return converted;
  const value = converted.value;
  if (value === undefined || typeof value !== 'object' || Array.isArray(value)) return { ok: true, value: {} };
  return { ok: true, value };
}

function convert(value: unknown, type: ArgType, path: string, scale: Readonly<Record<string, number>>): Converted {
  const where = path === '' ? 'the arguments' : `argument "${path}"`;
  if (value === null || value === undefined) return { ok: true, value: undefined };
  switch (type.kind) {
    case 'string':
      return typeof value === 'string' ? { ok: true, value } : mismatch(where, 'a string', value);
    case 'bool':
      return typeof value === 'boolean' ? { ok: true, value } : mismatch(where, 'true or false', value);
    case 'long': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return mismatch(where, 'a number', value);
      const places = scale[path.replace(/\[\d+\]/g, '')];
      if (places !== undefined) {
        const scaled = toScaledInteger(value, places);
        if (scaled === undefined) {
          return { ok: false, reason: `${where} is ${value}: it has more than ${places} decimal places, or is too large to pass to the policy exactly` };
        }
        return { ok: true, value: scaled };
      }
      if (!Number.isInteger(value)) {
        return {
          ok: false,
          reason: `${where} is ${value}, a fraction; the policy compares whole numbers only, and the catalog declares no scale for this argument`,
        };
      }
      if (!Number.isSafeInteger(value)) return { ok: false, reason: `${where} is too large to pass to the policy exactly` };
      return { ok: true, value };
    }
    case 'set': {
      if (!Array.isArray(value)) return mismatch(where, 'an array', value);
      const out: CedarValue[] = [];
      for (let i = 0; i < value.length; i++) {
        const item = convert(value[i], type.element, `${path}[${i}]`, scale);
        if (!item.ok) return item;
        if (item.value === undefined) return { ok: false, reason: `argument "${path}[${i}]" is null; a set cannot hold null` };
        out.push(item.value);
      }
      return { ok: true, value: out };
    }
    case 'record': {
      if (typeof value !== 'object' || Array.isArray(value)) return mismatch(where, 'an object', value);
      const source = value as Record<string, unknown>;
      const out: Record<string, CedarValue> = {};
      for (const [name, attribute] of type.attributes) {
        const childPath = path === '' ? name : `${path}.${name}`;
        const present = Object.hasOwn(source, name) ? source[name] : undefined;
        const child = convert(present, attribute.type, childPath, scale);
        if (!child.ok) return child;
        if (child.value === undefined) {
          if (attribute.required) return { ok: false, reason: `argument "${childPath}" is missing; the policy schema requires it` };
          continue;
        }
        out[name] = child.value;
      }
      return { ok: true, value: out };
    }
  }
}

function mismatch(where: string, expected: string, value: unknown): Converted {
  const got = Array.isArray(value)
    ? 'an array'
    : value === null
      ? 'null'
      : typeof value === 'object'
        ? 'an object'
        : `${typeof value} ${JSON.stringify(value)}`;
  return { ok: false, reason: `${where} must be ${expected} (the policy schema says so), got ${got.length > 80 ? got.slice(0, 77) + '...' : got}` };
}

/**
 * `value × 10^places` as an exact integer, computed on the number's decimal digits (so 0.1 × 100 is
 * 10, not 10.000000000000002). Undefined when that is not a whole number or not a safe integer.
 */
export function toScaledInteger(value: number, places: number): number | undefined {
  if (!Number.isFinite(value) || !Number.isInteger(places) || places < 0 || places > 15) return undefined;
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(value));
  if (!match) return undefined;
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  let digits = whole! + fraction;
  // The position of the decimal point, counted from the right end of `digits`, after scaling.
  const shift = Number(exponent) - fraction.length + places;
  if (shift >= 0) {
    digits += '0'.repeat(shift);
  } else {
    const cut = digits.length + shift;
    const dropped = cut > 0 ? digits.slice(cut) : digits.padStart(-shift, '0');
    if (/[^0]/.test(dropped)) return undefined;
    digits = cut > 0 ? digits.slice(0, cut) : '0';
  }
  const result = Number(sign + digits);
  return Number.isSafeInteger(result) ? result + 0 : undefined;
}
