/**
 * The sealer's writer specialised to the audit event's known members (`eventBody`) must write the
 * very bytes `canonicalJson` writes, whatever a record holds: the chain's hashes, `gatehouse audit
 * verify` and verifiers without Gatehouse all recompute the body with the generic canonical form.
 * The properties run under a fixed seed on records with hostile members and values: `__proto__`
 * and `toJSON` members at the top and nested, lone surrogates, `-0`, NaN, `undefined`, dates.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, openSealedEvent, RecordSealer, sealEvent, type AuditEvent } from '../../src/core/audit/event.js';
import { canonicalJson } from '../../src/core/digest.js';
import type { AuditRecord } from '../../src/core/ports.js';
import { SqliteAuditStore } from '../../src/node/audit/sqlite-store.js';
import { verifyAuditFile } from '../../src/node/audit/verify-file.js';

const RUNS = { seed: 0x13a9, numRuns: 500 };
const LINK = { seq: 7, id: '6b1a2c3d-0000-4000-8000-000000000007', device: 'dev_aaaaaaaaaaaaaaaaaaaaaaaaaa', prev: GENESIS_HASH };

/** Every member an event may carry, and members it may not (which the generic writer must handle). */
const KNOWN = [
  'type',
  'at',
  'callId',
  'user',
  'client',
  'clientVerified',
  'server',
  'kind',
  'name',
  'policyMode',
  'policyVersion',
  'policyIds',
  'decision',
  'stage',
  'code',
  'reason',
  'latencyMs',
  'argsShape',
  'argsDigest',
  'resultDigest',
  'resultShape',
  'argsValues',
  'approval',
  'quota',
  'upstream',
  'detail',
  'v',
  'seq',
  'id',
  'device',
  'prev',
];
const UNKNOWN = ['__proto__', 'constructor', 'toJSON', 'extra', '', '\ud800', 'Type', 'a\u0000'];

const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 10 }), fc.constantFrom('\ud800', '\udc00x', '😀', '"', '\\', '\u0000', '\u2028'));
const leaf = fc.oneof(
  text,
  fc.double(),
  fc.constantFrom(0, -0, 1e21, 5e-324, Number.NaN, Number.POSITIVE_INFINITY),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.constant(new Date(Date.UTC(2026, 11, 2))),
);
/** Objects built as JSON.parse builds them: every key an own data member, "__proto__" too. */
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(fc.tuple(fc.oneof(fc.constantFrom(...UNKNOWN, ...KNOWN), text), tie('value')), { maxLength: 5 }).map(ownMembers),
  ),
}));

function ownMembers(entries: [string, unknown][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, configurable: true, writable: true });
  return out;
}

/** A handful of shapes (keys in a fixed order), as a writer sees them again and again; one carries the chain's own names. */
const SHAPES_SEEN: string[][] = [
  ['type', 'at', 'callId', 'user', 'client', 'clientVerified', 'server', 'kind', 'name', 'argsShape', 'argsDigest'],
  ['type', 'at', 'callId', 'user', 'decision', 'latencyMs', 'resultShape', 'detail'],
  ['at', 'type', 'server', 'detail'],
  ['type', 'at', 'seq', 'prev', 'approval', 'quota', 'upstream', 'policyIds'],
];

/** A record: some known members (in any order) with any values, sometimes a member outside the list. */
const record = fc
  .tuple(
    fc.shuffledSubarray(KNOWN, { minLength: 0 }),
    fc.array(value, { minLength: KNOWN.length, maxLength: KNOWN.length }),
    fc.option(
      fc.tuple(
        fc.constantFrom(...UNKNOWN),
        fc.oneof(
          value,
          fc.constant(() => 'from toJSON'),
        ),
      ),
      { freq: 3 },
    ),
  )
  .map(([keys, values, extra]) => ownMembers([...keys.map((k, i) => [k, values[i]] as [string, unknown]), ...(extra ? [extra] : [])]));

describe('the audit event sealer', () => {
  it('writes the same bytes as the generic canonical form of the event, for any record, hostile members included', () => {
    fc.assert(
      fc.property(record, (r) => {
        const canonical = canonicalJson({ ...r, v: 1, ...LINK });
        expect(sealEvent(r as unknown as AuditRecord, LINK).body).toBe(canonical);
        expect(new RecordSealer().seal(r as unknown as AuditRecord, LINK).body).toBe(canonical);
      }),
      RUNS,
    );
  });

  it("seals each shape of record the same way the first time and every time after (a writer's sealer remembers shapes)", () => {
    const sealer = new RecordSealer();
    // Few shapes, each seen many times: the members present vary, and so do their values.
    const shaped = fc.tuple(fc.constantFrom(...SHAPES_SEEN), fc.array(value, { minLength: 11, maxLength: 11 }));
    fc.assert(
      fc.property(fc.array(shaped, { minLength: 1, maxLength: 6 }), (records) => {
        for (const [keys, values] of records) {
          const r = ownMembers(keys.map((k, i) => [k, values[i]] as [string, unknown]));
          const reference = sealEvent(r as unknown as AuditRecord, LINK);
          expect(reference.body).toBe(canonicalJson({ ...r, v: 1, ...LINK }));
          expect(sealer.seal(r as unknown as AuditRecord, LINK)).toEqual({ seq: reference.seq, hash: reference.hash, body: reference.body });
        }
      }),
      RUNS,
    );
  });

  it('takes the generic writer for a record of a shape it does not know, however often it comes', () => {
    const sealer = new RecordSealer();
    for (let i = 0; i < 3; i++) {
      const r = JSON.parse(`{"type":"call.attempt","at":"2026-12-02T07:00:0${i}.000Z","__proto__":{"n":${i}},"extra":[-0]}`) as AuditRecord;
      expect(sealer.seal(r, LINK).body).toBe(canonicalJson({ ...r, v: 1, ...LINK }));
      expect(sealer.seal(r, LINK).body).toContain(`"__proto__":{"n":${i}}`);
    }
  });

  it("lets the chain's own members win over a record's members of the same name", () => {
    const r = { type: 'call.attempt', at: '2026-12-02T07:00:00.000Z', seq: 1, id: 'forged', prev: 'f'.repeat(64), v: 2 } as unknown as AuditRecord;
    const body = JSON.parse(new RecordSealer().seal(r, LINK).body) as AuditEvent;
    expect([body.seq, body.id, body.prev, body.v, body.device]).toEqual([LINK.seq, LINK.id, LINK.prev, 1, LINK.device]);
  });

  it('stores the record as it was when appended: a caller changing it afterwards changes neither its body nor its columns', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-audit-body-'));
    try {
      const file = join(dir, 'audit.db');
      const store = new SqliteAuditStore({ file });
      const r: AuditRecord = { type: 'call.outcome', at: '2026-12-02T07:00:00.000Z', user: 'os:sam', server: 'crm', name: 'refund', decision: 'ok' };
      store.append(r);
      Object.assign(r, { user: 'os:mallory', decision: 'denied', server: 'other' });
      store.close();
      expect(verifyAuditFile(file).ok).toBe(true);
      const again = new SqliteAuditStore({ file });
      const [event] = again.query({ user: 'os:sam', decision: 'ok', server: 'crm', limit: 10 });
      again.close();
      expect(event?.event.user).toBe('os:sam');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a top-level "__proto__" member in the body (the generic writer takes such an event)', () => {
    const r = JSON.parse('{"type":"call.attempt","at":"2026-12-02T07:00:00.000Z","__proto__":{"decision":"ok"},"user":"os:sam"}') as AuditRecord;
    const sealed = sealEvent(r, LINK);
    expect(sealed.body).toContain('"__proto__":{"decision":"ok"}');
    expect(sealed.body).toBe(canonicalJson(sealed.event));
  });

  it('follows a toJSON every object inherits as the generic writer does (a polluted prototype cannot make the two disagree)', () => {
    const r: AuditRecord = { type: 'call.attempt', at: '2026-12-02T07:00:00.000Z' };
    const sealer = new RecordSealer();
    sealer.seal(r, LINK);
    Object.defineProperty(Object.prototype, 'toJSON', { value: () => ({ replaced: true }), configurable: true, writable: true });
    try {
      expect(new RecordSealer().seal(r, LINK).body).toBe('{"replaced":true}');
      expect(sealer.seal(r, LINK).body).toBe('{"replaced":true}');
    } finally {
      delete (Object.prototype as { toJSON?: unknown }).toJSON;
    }
    expect(sealer.seal(r, LINK).body).toBe(canonicalJson({ ...r, v: 1, ...LINK }));
  });

  it('writes a call record in canonical order with undefined members left out, and it opens as a canonical event', () => {
    const r: AuditRecord = {
      user: 'os:sam',
      type: 'call.outcome',
      at: '2026-12-02T07:00:00.000Z',
      decision: 'ok',
      latencyMs: -0,
      reason: undefined,
      detail: { z: '\ud800', a: [1, undefined, Number.NaN], when: new Date(Date.UTC(2026, 0, 1)) },
      argsShape: { path: 'string', limit: 'number' },
    };
    const sealed = sealEvent(r, LINK);
    expect(sealed.body).toBe(
      '{"argsShape":{"limit":"number","path":"string"},"at":"2026-12-02T07:00:00.000Z","decision":"ok",' +
        '"detail":{"a":[1,null,null],"when":"2026-01-01T00:00:00.000Z","z":"\\ud800"},"device":"dev_aaaaaaaaaaaaaaaaaaaaaaaaaa",' +
        `"id":"${LINK.id}","latencyMs":0,"prev":"${GENESIS_HASH}","seq":7,"type":"call.outcome","user":"os:sam","v":1}`,
    );
    expect(openSealedEvent(sealed).ok).toBe(true);
  });
});
