/**
 * The hash chain and its verifier (src/core/audit): what an event's hash covers, how checkpoints
 * are signed, and that verification names each kind of tampering where it happened.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  GENESIS_HASH,
  ed25519Signer,
  keyIdOf,
  openSealedEvent,
  rawPublicKey,
  sealEvent,
  sha256Hex,
  signCheckpoint,
  type Checkpoint,
  type SealedEvent,
} from '../../src/core/audit/event.js';
import { parseAuditFilter } from '../../src/core/audit/filter.js';
import { parseBatch, ProtocolError } from '../../src/core/audit/protocol.js';
import { verifyChain, type StoredRow } from '../../src/core/audit/verify.js';
import { canonicalJson } from '../../src/core/digest.js';

const DEVICE = 'dev_aaaaaaaaaaaaaaaaaaaaaaaaaa';
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const sign = ed25519Signer(privateKey);
const keyId = keyIdOf(rawPublicKey(publicKey));

function chain(n: number): SealedEvent[] {
  const out: SealedEvent[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const sealed = sealEvent(
      {
        type: 'call.outcome',
        at: new Date(Date.UTC(2026, 10, 26, 9, 0, seq)).toISOString(),
        user: 'os:alice',
        server: 'memory',
        name: 'read_graph',
        decision: 'ok',
      },
      { seq, id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`, device: DEVICE, prev },
    );
    out.push({ seq: sealed.seq, hash: sealed.hash, body: sealed.body });
    prev = sealed.hash;
  }
  return out;
}

const checkpointAt = (events: SealedEvent[], seq: number): Checkpoint =>
  signCheckpoint(sign, { device: DEVICE, seq, hash: events[seq - 1]!.hash, at: '2026-11-26T09:10:00.000Z', keyId });

const rows = (events: SealedEvent[]): StoredRow[] => events.map((e) => ({ ...e }));
const verify = (r: StoredRow[], checkpoints: Checkpoint[] = [], extra = {}) => verifyChain(r, { device: DEVICE, publicKey, checkpoints, ...extra });

describe('an audit event', () => {
  it('hashes to the SHA-256 of its canonical JSON, which includes its sequence number, device and predecessor', () => {
    const [first] = chain(1);
    const event = JSON.parse(first!.body);
    expect(first!.body).toBe(canonicalJson(event));
    expect(first!.hash).toBe(sha256Hex(first!.body));
    expect(event).toMatchObject({ v: 1, seq: 1, device: DEVICE, prev: GENESIS_HASH });
    expect(Object.keys(event)).toEqual([...Object.keys(event)].sort());
  });

  it('leaves undefined fields out of the body, so a record hashes the same however it was built', () => {
    const a = sealEvent(
      { type: 'config.applied', at: '2026-11-26T00:00:00.000Z', user: undefined },
      { seq: 1, id: 'x'.repeat(36), device: DEVICE, prev: GENESIS_HASH },
    );
    const b = sealEvent({ at: '2026-11-26T00:00:00.000Z', type: 'config.applied' }, { seq: 1, id: 'x'.repeat(36), device: DEVICE, prev: GENESIS_HASH });
    expect(a.hash).toBe(b.hash);
    expect(a.body).not.toContain('user');
  });

  it('is refused when its body was edited, when it is not canonical, or when it names another device', () => {
    const [e] = chain(1);
    const edited = { ...e!, body: e!.body.replace('read_graph', 'delete_all') };
    expect(openSealedEvent(edited)).toMatchObject({ ok: false, problem: { code: 'hash_mismatch' } });
    const spaced = JSON.stringify(JSON.parse(e!.body), null, 1);
    expect(openSealedEvent({ seq: 1, hash: sha256Hex(spaced), body: spaced })).toMatchObject({ ok: false, problem: { code: 'not_canonical' } });
    expect(openSealedEvent(e!, { device: 'dev_bbbbbbbbbbbbbbbbbbbbbbbbbb' })).toMatchObject({ ok: false, problem: { code: 'malformed' } });
  });
});

describe('verifying a chain', () => {
  it('passes an intact chain and checks every checkpoint signature', () => {
    const events = chain(10);
    const report = verify(rows(events), [checkpointAt(events, 5), checkpointAt(events, 10)]);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, events: 10, firstSeq: 1, lastSeq: 10, checkpoints: { total: 2, verified: 2 } });
  });

  it('finds an edited event and says which one', () => {
    const r = rows(chain(10));
    r[3] = { ...r[3]!, body: r[3]!.body.replace('"ok"', '"denied"') };
    expect(verify(r).problems).toEqual([expect.objectContaining({ seq: 4, code: 'edited' })]);
  });

  it('finds an edited event whose hash was recomputed, at the link to the next one', () => {
    const r = rows(chain(10));
    const body = r[3]!.body.replace('"ok"', '"denied"');
    r[3] = { seq: 4, body, hash: sha256Hex(body) };
    expect(verify(r).problems).toEqual([expect.objectContaining({ seq: 5, code: 'broken_link' })]);
  });

  it('finds a re-hashed tail by the signed checkpoint that no longer matches', () => {
    const events = chain(10);
    const cp = checkpointAt(events, 10);
    // Rewrite event 4 and re-hash everything after it: the links hold, the signature does not.
    const forged: SealedEvent[] = [];
    let prev = GENESIS_HASH;
    for (const e of events) {
      const event = JSON.parse(e.body);
      if (event.seq === 4) event.decision = 'denied';
      event.prev = prev;
      const body = canonicalJson(event);
      forged.push({ seq: e.seq, body, hash: sha256Hex(body) });
      prev = sha256Hex(body);
    }
    expect(verify(rows(forged), [cp]).problems).toEqual([expect.objectContaining({ seq: 10, code: 'checkpoint_mismatch' })]);
  });

  it('finds a deleted event and names the gap', () => {
    const r = rows(chain(10)).filter((row) => row.seq !== 6);
    const problems = verify(r).problems;
    expect(problems).toEqual([expect.objectContaining({ seq: 6, code: 'missing' })]);
    expect(problems[0]!.message).toMatch(/event 6 is missing: event 5 is followed by event 7/);
  });

  it('finds reordered events', () => {
    const r = rows(chain(10));
    const [a, b] = [r[2]!, r[3]!];
    r[2] = { ...b, seq: 3 };
    r[3] = { ...a, seq: 4 };
    const problems = verify(r).problems;
    expect(problems.map((p) => [p.seq, p.code])).toEqual([
      [3, 'reordered'],
      [4, 'reordered'],
    ]);
    expect(problems[0]!.message).toMatch(/position 3 holds event 4/);
  });

  it("finds a truncated tail from the last checkpoint and from the writer's recorded head", () => {
    const events = chain(10);
    const cut = rows(events).slice(0, 7);
    expect(verify(cut, [checkpointAt(events, 10)]).problems).toEqual([expect.objectContaining({ seq: 8, code: 'truncated' })]);
    expect(verify(cut, [], { head: { seq: 10, hash: events[9]!.hash } }).problems[0]!.message).toMatch(/ends at event 7.*events 8–10 were removed/);
  });

  it('refuses a checkpoint whose signature does not verify', () => {
    const events = chain(5);
    const cp = { ...checkpointAt(events, 5), signature: checkpointAt(events, 4).signature };
    expect(verify(rows(events), [cp]).problems).toEqual([expect.objectContaining({ seq: 5, code: 'bad_signature' })]);
  });

  it('notices an indexed column that disagrees with the hashed body', () => {
    const r = rows(chain(3)).map((row) => ({ ...row, columns: { user: 'os:alice', decision: 'ok' } }));
    r[1] = { ...r[1]!, columns: { user: 'os:mallory', decision: 'ok' } };
    expect(verify(r).problems).toEqual([expect.objectContaining({ seq: 2, code: 'column_mismatch' })]);
  });

  it('verifies what remains after pruning from a signed anchor, and refuses an anchor no checkpoint vouches for', () => {
    const events = chain(10);
    const kept = rows(events).slice(6);
    const anchor = { seq: 6, hash: events[5]!.hash };
    expect(verify(kept, [checkpointAt(events, 6)], { anchor }).ok).toBe(true);
    expect(verify(kept, [], { anchor }).problems).toEqual([expect.objectContaining({ code: 'anchor' })]);
  });
});

describe('the batch a device posts', () => {
  const events = chain(3);
  it('is accepted in ascending order with its checkpoints', () => {
    const batch = parseBatch({ device: DEVICE, events, checkpoints: [checkpointAt(events, 3)] }, DEVICE);
    expect(batch.events.map((e) => e.seq)).toEqual([1, 2, 3]);
  });
  it.each([
    ['not an object', [], /JSON object/],
    ['another device', { device: 'dev_bbbbbbbbbbbbbbbbbbbbbbbbbb', events }, /names device/],
    ['empty', { device: DEVICE, events: [] }, /neither events nor checkpoints/],
    ['a bad hash', { device: DEVICE, events: [{ ...events[0], hash: 'xyz' }] }, /events\[0\]\.hash/],
    ['descending order', { device: DEVICE, events: [events[1], events[0]] }, /ascending order/],
  ])('is refused with a precise error when it is %s', (_label, value, message) => {
    expect(() => parseBatch(value, DEVICE)).toThrow(message);
  });
  it('is refused as too large above 5000 events', () => {
    const many = Array.from({ length: 5001 }, (_, i) => ({ seq: i + 1, hash: 'a'.repeat(64), body: '{}' }));
    const error = (() => {
      try {
        parseBatch({ device: DEVICE, events: many }, DEVICE);
      } catch (e) {
        return e as ProtocolError;
      }
    })();
    expect(error).toMatchObject({ status: 413, code: 'batch_too_large' });
  });
});

describe('audit filters', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');
  it('read ISO times and durations before now', () => {
    expect(parseAuditFilter({ from: '2h', to: '2026-11-26T11:30:00Z', user: 'os:alice', decision: 'denied' }, now)).toEqual({
      from: '2026-11-26T10:00:00.000Z',
      to: '2026-11-26T11:30:00.000Z',
      user: 'os:alice',
      decision: 'denied',
    });
  });
  it.each([
    [{ from: 'yesterday' }, /--from takes an ISO time/],
    [{ decision: 'maybe' }, /--decision must be one of/],
    [{ from: '1h', to: '2h' }, /must be before/],
    [{ limit: '0' }, /--limit/],
  ])('refuse %j with an error naming the filter', (input, message) => {
    expect(() => parseAuditFilter(input, now)).toThrow(message);
  });
});
