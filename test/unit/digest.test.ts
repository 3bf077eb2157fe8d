/**
 * The canonical digest commits to exactly what the upstream receives (issue 12, finding 1). The
 * properties run on JSON values built the way the wire builds them (`JSON.parse`), with the keys an
 * attacker would pick (`__proto__`, `constructor`, `toJSON`, ...), lone surrogates and `-0`, under a
 * fixed seed that fast-check prints with any counterexample.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { argumentPattern, requestDigest } from '../../src/core/approvals/request.js';
import type { GovernedCall } from '../../src/core/chain.js';
import { canonicalJson, digest, shapeOf } from '../../src/core/digest.js';

/** Fixed, so that a failure is reproducible; fast-check prints it (and the shrink path) with the counterexample. */
const SEED = 0x12f1;
const RUNS = { seed: SEED, numRuns: 400 };

/** What a peer gets: the value as JSON text, parsed again (JSON.parse makes "__proto__" an own member). */
const wire = (value: unknown): unknown => JSON.parse(JSON.stringify(value) ?? 'null');

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toJSON', 'toString', 'valueOf', 'hasOwnProperty', '', '\ud800', 'a'];
const key = fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ unit: 'binary', maxLength: 6 }));
const leaf = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom('\ud800', '\udc00x', '😀', '"', '\\', '\u0000'),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e21, 5e-324, Number.MAX_SAFE_INTEGER),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
);
/** Objects are built from entries as JSON.parse builds them: every key an own data member, "__proto__" too. */
const { json } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.array(fc.tuple(key, tie('json')), { maxLength: 5 }).map((entries) => Object.fromEntries(entries)),
  ),
}));

/** The same value with every object's members in another order. */
function reordered(value: unknown, flip: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => reordered(v, !flip));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([k, v]) => [k, reordered(v, !flip)] as const);
    return Object.fromEntries(flip ? entries.reverse() : [...entries.slice(1), ...entries.slice(0, 1)]);
  }
  return value;
}

/** Every object inside a value, the value itself included, in a fixed order; with `arrays` false, none inside an array. */
function objectsIn(value: unknown, arrays = true, into: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (Array.isArray(value)) {
    if (arrays) for (const v of value) objectsIn(v, arrays, into);
  } else if (value !== null && typeof value === 'object') {
    into.push(value as Record<string, unknown>);
    for (const v of Object.values(value)) objectsIn(v, arrays, into);
  }
  return into;
}

describe('the canonical form of a JSON value', () => {
  it('decodes to exactly the value the upstream receives, so equal digests mean equal requests', () => {
    fc.assert(
      fc.property(json, (value) => {
        expect(isDeepStrictEqual(JSON.parse(canonicalJson(value)), wire(value))).toBe(true);
      }),
      RUNS,
    );
  });

  it('gives two values the same digest only when the upstream would receive the same value', () => {
    // Pairs that are often equal (a value and a reordered copy) and often nearly equal (one member more).
    const pair = fc.oneof(
      fc.tuple(json, json),
      json.map((v) => [v, reordered(v, true)] as const),
      fc.tuple(json, key, leaf).map(([v, k, extra]) => {
        const copy = wire(v);
        const target = objectsIn(copy)[0];
        if (target) Object.defineProperty(target, k, { value: extra, enumerable: true, configurable: true, writable: true });
        return [v, copy] as const;
      }),
    );
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const same = isDeepStrictEqual(wire(a), wire(b));
        expect(digest(a) === digest(b)).toBe(same);
      }),
      RUNS,
    );
  });

  it('does not depend on the order of members, nor on what the wire cannot carry', () => {
    fc.assert(
      fc.property(json, fc.boolean(), (value, flip) => {
        expect(canonicalJson(reordered(value, flip))).toBe(canonicalJson(value));
        expect(canonicalJson(wire(value))).toBe(canonicalJson(value));
      }),
      RUNS,
    );
  });

  it('counts a nested "__proto__" member as the member it is (the upstream receives it)', () => {
    const plain = JSON.parse('{"opts":{"to":"DE00 own account"}}') as Record<string, unknown>;
    const smuggled = JSON.parse('{"opts":{"to":"DE00 own account","__proto__":{"to":"attacker-iban"}}}') as Record<string, unknown>;
    expect(JSON.stringify(smuggled)).toContain('attacker-iban');
    expect(canonicalJson(smuggled)).toBe('{"opts":{"__proto__":{"to":"attacker-iban"},"to":"DE00 own account"}}');
    expect(digest(smuggled)).not.toBe(digest(plain));
    expect(JSON.stringify(shapeOf(smuggled))).toBe('{"opts":{"to":"string","__proto__":{"to":"string"}}}');
  });

  it('writes lone surrogates escaped and -0 as 0, exactly as JSON.stringify sends them', () => {
    expect(canonicalJson({ b: '\ud800', a: -0, c: [undefined, () => 1], d: undefined })).toBe('{"a":0,"b":"\\ud800","c":[null,null]}');
    expect(canonicalJson({ ['\ud800']: 1, ['\udc00']: 2 })).toBe(JSON.stringify({ ['\ud800']: 1, ['\udc00']: 2 }));
    expect(canonicalJson(undefined)).toBe('null');
  });

  it('keeps the form of existing records: plain data is written as sorted JSON.stringify always was', () => {
    const sorted = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(sorted)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.keys(v)
                .sort()
                .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
            )
          : v;
    const noProto = json.filter((v) => !JSON.stringify(v ?? null).includes('"__proto__"'));
    fc.assert(
      fc.property(noProto, (value) => {
        expect(canonicalJson(value)).toBe(JSON.stringify(sorted(value)) ?? 'null');
      }),
      RUNS,
    );
  });
});

describe('the order of members', () => {
  it('is the code-unit order of sort(), for objects of a few members and of many, index-like keys included', () => {
    const keyOf = fc.oneof(fc.string({ unit: 'binary', maxLength: 4 }), fc.nat(200).map(String), fc.constantFrom('__proto__', 'a', 'B', 'é', '\ud800'));
    const flat = fc.array(fc.tuple(keyOf, fc.integer()), { maxLength: 40 }).map((entries) => Object.fromEntries(entries));
    fc.assert(
      fc.property(flat, (object) => {
        const sorted = Object.keys(object).sort();
        expect(Object.keys(JSON.parse(canonicalJson(object)) as object).length).toBe(sorted.length);
        expect(canonicalJson(object)).toBe('{' + sorted.map((k) => `${JSON.stringify(k)}:${JSON.stringify(object[k])}`).join(',') + '}');
      }),
      RUNS,
    );
  });
});

describe('what an approval binds to', () => {
  const call = (args: Record<string, unknown>): GovernedCall =>
    ({
      id: 'c',
      kind: 'tool',
      server: 'bank',
      name: 'transfer',
      arguments: args,
      principal: {
        user: { id: 'u', source: 'oidc', displayName: 'u', groups: [], roles: [] },
        client: { id: 'k', name: 'ide', verified: true, transport: 'socket' },
      },
      context: { signal: new AbortController().signal },
      facts: {},
    }) as GovernedCall;

  it('binds the request digest and the session pattern to hidden members too', () => {
    const plain = JSON.parse('{"amount":5,"opts":{}}') as Record<string, unknown>;
    const smuggled = JSON.parse('{"amount":5,"opts":{"__proto__":{"to":"attacker-iban"}}}') as Record<string, unknown>;
    expect(requestDigest(call(smuggled))).not.toBe(requestDigest(call(plain)));
    expect(argumentPattern(smuggled, ['amount'])).not.toBe(argumentPattern(plain, ['amount']));
  });

  // The pattern describes an array by the set of its elements' shapes (docs/approvals.md), so members are added outside arrays.
  it('gives a call with one member more (any name, at any depth) another digest and another session pattern', () => {
    const args = json.filter((v): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v));
    fc.assert(
      fc.property(args, key, leaf, fc.nat(), (value, k, extra, pick) => {
        const copy = wire(value) as Record<string, unknown>;
        const objects = objectsIn(copy, false);
        const target = objects[pick % objects.length]!;
        fc.pre(!Object.hasOwn(target, k));
        Object.defineProperty(target, k, { value: extra, enumerable: true, configurable: true, writable: true });
        expect(requestDigest(call(copy))).not.toBe(requestDigest(call(value)));
        expect(argumentPattern(copy, [])).not.toBe(argumentPattern(value, []));
      }),
      RUNS,
    );
  });
});
