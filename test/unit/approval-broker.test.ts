/**
 * The approval broker on a fake clock, with a scripted human channel standing for the person: what
 * the person is shown, each answer and each way of not answering, "for this session" and what a
 * session pattern is, the bounds on waiting requests, stopping, and recovering after a crash. The
 * SQLite journal is checked at the end; the real page and socket are in test/integration.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApprovalBroker, type ApprovalBrokerDeps } from '../../src/core/approvals/broker.js';
import { MemoryJournal, type PendingJournal, type PendingRecord } from '../../src/core/approvals/journal.js';
import { MARK, prettyArguments } from '../../src/core/approvals/question.js';
import { argumentPattern, requestDigest } from '../../src/core/approvals/request.js';
import type { GovernedCall } from '../../src/core/chain.js';
import type { ApprovalReason } from '../../src/core/governance.js';
import type { HumanAnswer, HumanChannel, HumanQuestion } from '../../src/core/human/channel.js';
import type { AuditRecord } from '../../src/core/ports.js';
import type { Principal } from '../../src/core/principal.js';
import { SessionKeys } from '../../src/core/quotas/session.js';
import { SqliteApprovalJournal } from '../../src/node/approvals/sqlite-journal.js';
import { FakeClock, flush } from './fakes/fake-clock.js';

interface Asked {
  question: HumanQuestion;
  deadline: number;
  signal: AbortSignal | undefined;
  answer(answer: HumanAnswer): void;
  /** Approve with the choice offered for `scope` (the page's radio button). */
  approve(scope: 'once' | 'session'): void;
}

/** The person, scripted: every question is kept, and answered when the test says so. */
class ScriptedChannel implements HumanChannel {
  readonly asked: Asked[] = [];
  constructor(
    private readonly clock: FakeClock,
    /** False: a broken adapter that answers whenever it likes, deadline or not. */
    private readonly keepsTime = true,
  ) {}

  ask(question: HumanQuestion, deadline: number, signal?: AbortSignal): Promise<HumanAnswer> {
    return new Promise((resolve) => {
      let open = true;
      const settle = (answer: HumanAnswer): void => {
        if (!open) return;
        open = false;
        if (timer) this.clock.clearTimeout(timer);
        resolve(answer);
      };
      const timer = this.keepsTime ? this.clock.setTimeout(() => settle({ kind: 'expired' }), deadline - this.clock.now()) : undefined;
      signal?.addEventListener('abort', () => settle({ kind: 'expired' }), { once: true });
      this.asked.push({
        question,
        deadline,
        signal,
        answer: settle,
        approve: (scope) => settle({ kind: 'approved', choice: question.choices!.find((c) => c.id.startsWith(`${scope}:`))!.id }),
      });
    });
  }

  pending(): number {
    return this.asked.length;
  }
}

const REFUND_POLICY: ApprovalReason = { kind: 'policy', policies: ['support-refund-large'], approvers: ['user'], fields: ['amount', 'currency'] };

function principal(client = 'ide'): Principal {
  return {
    user: { id: 'sam@example.com', source: 'oidc', displayName: 'Sam', groups: ['crm-support'], roles: [] },
    client: { id: `client:${client}:k1`, name: client, verified: true, transport: 'socket' },
  };
}

let callNo = 0;
function refund(
  options: {
    args?: Record<string, unknown>;
    who?: Principal;
    reasons?: ApprovalReason[];
    name?: string;
    onProgress?: GovernedCall['context']['onProgress'];
  } = {},
) {
  const controller = new AbortController();
  const call: GovernedCall = {
    id: `call-${++callNo}`,
    kind: 'tool',
    server: 'crm',
    name: options.name ?? 'refund',
    arguments: options.args ?? { contact_id: 'c-1', amount: 250, currency: 'EUR' },
    principal: options.who ?? principal(),
    context: { signal: controller.signal, ...(options.onProgress ? { onProgress: options.onProgress } : {}) },
    facts: { approvalNeeded: options.reasons ?? [REFUND_POLICY] },
  };
  return { call, cancel: () => controller.abort() };
}

function setup(overrides: Partial<ApprovalBrokerDeps> & { keepsTime?: boolean } = {}) {
  const clock = new FakeClock(Date.UTC(2026, 10, 26, 9, 0, 0));
  const channel = new ScriptedChannel(clock, overrides.keepsTime ?? true);
  const journal = (overrides.journal as MemoryJournal | undefined) ?? new MemoryJournal();
  const audit: AuditRecord[] = [];
  const sessions = new SessionKeys(() => clock.now());
  const broker = new ApprovalBroker({
    channel,
    clock,
    journal,
    sessions,
    audit: (r) => void audit.push(r),
    logger: { log: () => undefined },
    tool: (_server, name) => (name === 'delete_contact' ? { readOnly: false, destructive: true } : { readOnly: false, destructive: false }),
    timeoutMs: 60_000,
    ...overrides,
  });
  /** Starts a review and waits until the person has been asked (or the review ended). */
  const review = async (c: { call: GovernedCall }) => {
    const before = channel.asked.length;
    let done = false;
    const result = broker.review(c.call, c.call.context.signal).finally(() => (done = true));
    for (let i = 0; i < 20 && channel.asked.length === before && !done; i++) await flush();
    return { result, asked: channel.asked[before] };
  };
  return { clock, channel, journal, audit, broker, review, sessions };
}

describe('a call that needs no approval', () => {
  it('passes at once, and nobody is asked', async () => {
    const { broker, channel, audit } = setup();
    const { call } = refund({ reasons: [] });
    expect(await broker.review(call, call.context.signal)).toEqual({ ok: true });
    expect(channel.asked).toEqual([]);
    expect(audit).toEqual([]);
  });
});

describe('what the person is asked', () => {
  it('shows who asks, which tool on which server, why, the arguments with the fields the policy read marked, and until when', async () => {
    const { review } = setup();
    const c = refund();
    const { asked } = await review(c);
    const q = asked!.question;
    expect(q.kind).toBe('approval');
    expect(q.title).toBe('Allow ide to call crm__refund?');
    const facts = Object.fromEntries(q.facts.map((f) => [f.label, f.value]));
    expect(facts['Client']).toBe('ide (paired, over socket)');
    expect(facts['Acting for']).toBe('Sam (sam@example.com)');
    expect(facts['Tool']).toBe('refund on server crm (writes)');
    expect(facts['Why you are asked']).toBe('This call needs approval (user) under policy support-refund-large');
    expect(facts['What the policy looked at']).toBe('amount = 250, currency = "EUR"');
    expect(facts['Arguments']).toBe(['{', `  "contact_id": "c-1",`, `  "amount": 250,   ${MARK}`, `  "currency": "EUR"   ${MARK}`, '}'].join('\n'));
    expect(facts['Answer by']).toMatch(/ \(60 s after it was asked\); unanswered, the call is refused$/);
    expect(facts['Request']).toContain(requestDigest(c.call));
    expect(asked!.deadline).toBe(Date.UTC(2026, 10, 26, 9, 1, 0));
  });

  it('offers "once" and "for this session", each naming the request digest, and never "always"', async () => {
    const { review } = setup();
    const c = refund();
    const { asked } = await review(c);
    const digest = requestDigest(c.call);
    expect(asked!.question.choices).toEqual([
      { id: `once:${digest}`, label: 'Allow once: this call only' },
      {
        id: `session:${digest}`,
        label: 'Allow for this session of ide: later calls to refund, with the same amount, currency and arguments of the same shape, until it disconnects',
      },
    ]);
    expect(JSON.stringify(asked!.question)).not.toMatch(/always/i);
  });

  it('offers only "once" for a destructive tool', async () => {
    const { review } = setup();
    const { asked } = await review(refund({ name: 'delete_contact', args: { id: 'c-1' } }));
    expect(asked!.question.choices!.map((c) => c.id.split(':')[0])).toEqual(['once']);
    expect(asked!.question.facts.find((f) => f.label === 'Tool')!.value).toBe('delete_contact on server crm (destructive)');
  });

  it('names every reason: the policy and a quota past its threshold', async () => {
    const { review } = setup();
    const quota: ApprovalReason = { kind: 'quota', quota: 'writes-per-day', window: 'day', used: 41, approvalAfter: 40, limit: 50 };
    const { asked } = await review(refund({ reasons: [REFUND_POLICY, quota] }));
    expect(asked!.question.facts.find((f) => f.label === 'Why you are asked')!.value).toBe(
      'This call needs approval (user) under policy support-refund-large; and it needs approval under quota writes-per-day: call 41 of 50 today, and each call after 40 needs approval',
    );
  });

  it('pretty-prints nested arguments, marks nested fields the policy reads, and shortens what is too long to show', () => {
    const { text, shortened } = prettyArguments({ price: { net: 10, tax: 2 }, items: [{ sku: 'a' }], note: 'x'.repeat(300) }, ['price.net', 'items.sku']);
    expect(text.split('\n')).toEqual([
      '{',
      '  "price": {',
      `    "net": 10,   ${MARK}`,
      '    "tax": 2',
      '  },',
      '  "items": [',
      '    {',
      `      "sku": "a"   ${MARK}`,
      '    }',
      '  ],',
      `  "note": ${JSON.stringify('x'.repeat(240))}… (60 more characters)`,
      '}',
    ]);
    expect(shortened).toBe(true);
  });
});

describe('the answers', () => {
  it('"allow once" lets this call through, audits the request and the answer, and the next identical call asks again', async () => {
    const { review, audit, journal, channel } = setup();
    const c = refund();
    const first = await review(c);
    expect(journal.records.size).toBe(1);
    first.asked!.approve('once');
    expect(await first.result).toEqual({ ok: true });
    expect(c.call.facts.approval).toMatchObject({ required: true, decision: 'approved', scope: 'once', by: 'user' });
    expect(journal.records.size).toBe(0);
    expect(audit.map((r) => [r.type, r.decision])).toEqual([
      ['approval.requested', undefined],
      ['approval.decided', 'allowed'],
    ]);
    expect(audit[0]).toMatchObject({
      callId: c.call.id,
      user: 'sam@example.com',
      client: 'ide',
      server: 'crm',
      name: 'refund',
      argsDigest: requestDigest(c.call),
      argsValues: { amount: 250, currency: 'EUR' },
      approval: { required: true },
    });
    expect(audit[1]).toMatchObject({ approval: { decision: 'approved', scope: 'once' } });
    const again = await review(refund());
    expect(channel.asked).toHaveLength(2);
    again.asked!.answer({ kind: 'declined' });
    await again.result;
  });

  it('"deny" refuses the call with approval_required, says the person declined, and audits it', async () => {
    const { review, audit } = setup();
    const c = refund();
    const { result, asked } = await review(c);
    asked!.answer({ kind: 'declined' });
    expect(await result).toMatchObject({
      ok: false,
      code: 'approval_required',
      reason: 'crm__refund needs approval (user) under policy support-refund-large; the person at this computer declined',
      data: { approval: 'declined' },
    });
    expect(audit[1]).toMatchObject({
      type: 'approval.decided',
      decision: 'denied',
      approval: { decision: 'denied', by: 'user' },
      detail: { refusal: 'declined' },
    });
  });

  it('no answer before the deadline is a denial', async () => {
    const { review, clock, audit } = setup();
    const { result } = await review(refund());
    await clock.advance(59_999);
    let settled = false;
    void result.then(() => (settled = true));
    await flush();
    expect(settled).toBe(false);
    await clock.advance(1);
    expect(await result).toMatchObject({
      ok: false,
      code: 'approval_required',
      data: { approval: 'timeout' },
      reason: expect.stringContaining('nobody answered within 60 s'),
    });
    expect(audit[1]).toMatchObject({ approval: { decision: 'timeout' } });
  });

  it('a client that cancels its call withdraws the request: the question is taken back and the withdrawal audited', async () => {
    const { review, audit, journal } = setup();
    const c = refund();
    const { result, asked } = await review(c);
    c.cancel();
    expect(await result).toMatchObject({ ok: false, data: { approval: 'withdrawn' } });
    expect(asked!.signal!.aborted).toBe(true);
    expect(audit[1]).toMatchObject({ approval: { decision: 'withdrawn' } });
    expect(journal.records.size).toBe(0);
  });

  it('refuses an approval that arrives after the deadline (from an adapter that does not keep time)', async () => {
    const { review, clock } = setup({ keepsTime: false });
    const { result, asked } = await review(refund());
    await clock.advance(60_001);
    asked!.approve('once');
    expect(await result).toMatchObject({ ok: false, data: { approval: 'timeout' }, reason: expect.stringContaining('after the deadline') });
  });

  it('refuses an approval that names another request digest', async () => {
    const { review, audit } = setup();
    const { result, asked } = await review(refund());
    const other = requestDigest(refund({ args: { contact_id: 'c-1', amount: 9999, currency: 'EUR' } }).call);
    asked!.answer({ kind: 'approved', choice: `once:${other}` });
    expect(await result).toMatchObject({ ok: false, data: { approval: 'mismatch' }, reason: expect.stringContaining('approves another request') });
    expect(audit[1]).toMatchObject({ decision: 'denied', detail: { refusal: 'mismatch' } });
  });

  it('refuses an approval without a choice it offered, and "for this session" where only "once" was offered', async () => {
    const { review } = setup();
    const plain = await review(refund());
    plain.asked!.answer({ kind: 'approved' });
    expect(await plain.result).toMatchObject({ ok: false, data: { approval: 'mismatch' } });
    const c = refund({ name: 'delete_contact', args: { id: 'c-1' } });
    const destructive = await review(c);
    destructive.asked!.answer({ kind: 'approved', choice: `session:${requestDigest(c.call)}` });
    expect(await destructive.result).toMatchObject({ ok: false, data: { approval: 'mismatch' }, reason: expect.stringContaining('was not offered') });
  });

  it('refuses when no person can be asked, or when the channel breaks', async () => {
    const { review } = setup();
    const { result, asked } = await review(refund());
    asked!.answer({ kind: 'unavailable', reason: 'no terminal and no notifications' });
    expect(await result).toMatchObject({
      ok: false,
      data: { approval: 'unavailable' },
      reason: expect.stringContaining('no person can be asked: no terminal and no notifications'),
    });
    const broken = setup({ channel: { ask: () => Promise.reject(new Error('window crashed')), pending: () => 0 } });
    const { call } = refund();
    expect(await broken.broker.review(call, call.context.signal)).toMatchObject({
      ok: false,
      data: { approval: 'unavailable' },
      reason: expect.stringContaining('window crashed'),
    });
  });

  it('tells a caller that asked for progress that its call waits, and until when, until it is answered', async () => {
    const { review, clock } = setup({ progressEveryMs: 10_000 });
    const heard: { progress: number; message?: string }[] = [];
    const { result, asked } = await review(refund({ onProgress: (p) => heard.push(p) }));
    await clock.advance(25_000);
    asked!.approve('once');
    await result;
    await clock.advance(30_000);
    expect(heard.map((p) => p.progress)).toEqual([0, 1, 2]);
    expect(heard[0]!.message).toBe('waiting for the person at this computer to approve crm__refund (until 2026-11-26T09:01:00.000Z)');
  });
});

describe('"allow for this session"', () => {
  it('lets later calls of the same session, tool and argument pattern through without asking, and asks again for any other', async () => {
    const { review, channel, broker } = setup();
    const who = principal('ide');
    const first = await review(refund({ who }));
    first.asked!.approve('session');
    expect(await first.result).toEqual({ ok: true });

    // Same amount and currency (the fields the policy reads), another contact: the same pattern.
    const same = refund({ who, args: { contact_id: 'c-2', amount: 250, currency: 'EUR' } });
    expect(await broker.review(same.call, same.call.context.signal)).toEqual({ ok: true });
    expect(same.call.facts.approval).toMatchObject({ decision: 'approved', scope: 'session' });
    expect(channel.asked).toHaveLength(1);

    // Another amount, another shape, another session, another tool: each asks.
    const asks = [
      refund({ who, args: { contact_id: 'c-2', amount: 251, currency: 'EUR' } }),
      refund({ who, args: { contact_id: 'c-2', amount: 250, currency: 'EUR', note: 'extra' } }),
      refund({ who: principal('ide'), args: { contact_id: 'c-1', amount: 250, currency: 'EUR' } }),
      refund({ who, name: 'refund_fees' }),
    ];
    for (const c of asks) {
      const { result, asked } = await review(c);
      expect(asked).toBeDefined();
      asked!.answer({ kind: 'declined' });
      await result;
    }
    expect(channel.asked).toHaveLength(5);
  });

  it('covers only the reasons it was given for: a quota threshold reached later asks again', async () => {
    const { review, broker, channel } = setup();
    const who = principal();
    const first = await review(refund({ who }));
    first.asked!.approve('session');
    await first.result;
    const quota: ApprovalReason = { kind: 'quota', quota: 'writes-per-day', window: 'day', used: 41, approvalAfter: 40, limit: 50 };
    const c = refund({ who, reasons: [REFUND_POLICY, quota] });
    void broker.review(c.call, c.call.context.signal);
    await flush();
    expect(channel.asked).toHaveLength(2);
  });

  it('ends when the policy bundle or the user changes', async () => {
    const { review, broker, channel } = setup();
    const who = principal();
    const first = await review(refund({ who }));
    first.asked!.approve('session');
    await first.result;
    expect(broker.status().sessionGrants).toBe(1);
    broker.revokeSessionGrants();
    expect(broker.status().sessionGrants).toBe(0);
    const c = refund({ who });
    void broker.review(c.call, c.call.context.signal);
    await flush();
    expect(channel.asked).toHaveLength(2);
  });

  it('defines the argument pattern: same shape, same values of the fields the policy reads; other values and array lengths may differ', () => {
    const fields = ['amount', 'currency'];
    const base = argumentPattern({ contact_id: 'c-1', amount: 250, currency: 'EUR', tags: ['a'] }, fields);
    expect(argumentPattern({ currency: 'EUR', amount: 250, contact_id: 'c-9', tags: ['b', 'c'] }, fields)).toBe(base);
    expect(argumentPattern({ contact_id: 'c-1', amount: 250.5, currency: 'EUR', tags: ['a'] }, fields)).not.toBe(base);
    expect(argumentPattern({ contact_id: 7, amount: 250, currency: 'EUR', tags: ['a'] }, fields)).not.toBe(base);
    expect(argumentPattern({ contact_id: 'c-1', amount: 250, currency: 'EUR' }, fields)).not.toBe(base);
    expect(argumentPattern({ contact_id: 'c-1', amount: 250, currency: 'EUR', tags: [1] }, fields)).not.toBe(base);
    // Without fields (a quota threshold), the shape alone.
    expect(argumentPattern({ contact_id: 'c-1', amount: 1 }, [])).toBe(argumentPattern({ contact_id: 'c-2', amount: 2 }, []));
  });
});

describe('waiting requests', () => {
  it('wait side by side, each with its own question, listed oldest first in status; none is lost while another is answered', async () => {
    const { review, broker, clock } = setup();
    const a = await review(refund({ who: principal('ide') }));
    await clock.advance(1000);
    const b = await review(refund({ who: principal('agent') }));
    expect(broker.status().pending.map((p) => [p.client, p.name, p.reasons])).toEqual([
      ['ide', 'refund', ['policy support-refund-large']],
      ['agent', 'refund', ['policy support-refund-large']],
    ]);
    b.asked!.approve('once');
    expect(await b.result).toEqual({ ok: true });
    expect(broker.status().pending.map((p) => p.client)).toEqual(['ide']);
    a.asked!.answer({ kind: 'declined' });
    expect(await a.result).toMatchObject({ ok: false });
    expect(broker.status()).toEqual({ pending: [], timeoutSeconds: 60, sessionGrants: 0 });
  });

  it('bounds how many wait per session and in all, refusing more without asking anyone', async () => {
    const { review, channel } = setup({ maxPendingPerSession: 2, maxPending: 3 });
    const who = principal('ide');
    await review(refund({ who }));
    await review(refund({ who }));
    const third = await review(refund({ who }));
    expect(third.asked).toBeUndefined();
    expect(await third.result).toMatchObject({
      ok: false,
      data: { approval: 'busy' },
      reason: expect.stringContaining('2 calls of this session already wait'),
    });
    await review(refund({ who: principal('other') }));
    const fourth = await review(refund({ who: principal('third') }));
    expect(await fourth.result).toMatchObject({ ok: false, data: { approval: 'busy' } });
    expect(channel.asked).toHaveLength(3);
  });

  it('refuses every waiting request when Gatehouse stops, audits each, and refuses new ones', async () => {
    const { review, broker, audit, journal } = setup();
    const a = await review(refund());
    const b = await review(refund({ who: principal('agent') }));
    await broker.close();
    expect(await a.result).toMatchObject({ ok: false, data: { approval: 'stopping' } });
    expect(await b.result).toMatchObject({ ok: false, data: { approval: 'stopping' } });
    expect(audit.filter((r) => r.type === 'approval.decided').map((r) => (r.detail as { refusal: string }).refusal)).toEqual(['stopping', 'stopping']);
    expect(journal.records.size).toBe(0);
    const late = refund();
    expect(await broker.review(late.call, late.call.context.signal)).toMatchObject({ ok: false, data: { approval: 'stopping' } });
  });

  it('refuses the call, and asks nobody, when the request cannot be journalled', async () => {
    const failing: PendingJournal = {
      add: () => {
        throw new Error('disk full');
      },
      remove: () => undefined,
      leftovers: () => [],
    };
    const { broker, channel } = setup({ journal: failing });
    const { call } = refund();
    await expect(broker.review(call, call.context.signal)).rejects.toThrow('disk full');
    expect(channel.asked).toEqual([]);
  });
});

describe('after a crash', () => {
  const leftover: PendingRecord = {
    id: 'req-1',
    callId: 'call-x',
    digest: 'sha256:' + 'a'.repeat(64),
    user: 'sam@example.com',
    client: 'ide',
    server: 'crm',
    kind: 'tool',
    name: 'refund',
    reasons: ['policy support-refund-large'],
    askedAt: Date.UTC(2026, 10, 26, 8, 0, 0),
    deadline: Date.UTC(2026, 10, 26, 8, 2, 0),
  };

  it('refuses and audits every request an earlier run left waiting, once, and never approves it', () => {
    const journal = new MemoryJournal([leftover]);
    const { broker, audit } = setup({ journal });
    expect(broker.recover()).toBe(1);
    expect(audit).toEqual([
      expect.objectContaining({
        type: 'approval.decided',
        callId: 'call-x',
        user: 'sam@example.com',
        client: 'ide',
        name: 'refund',
        decision: 'denied',
        approval: expect.objectContaining({ decision: 'denied' }),
        reason: expect.stringContaining('Gatehouse stopped while this request waited for approval'),
        detail: expect.objectContaining({ request: 'req-1', refusal: 'stopping' }),
      }),
    ]);
    expect(broker.recover()).toBe(0);
  });
});

describe('the SQLite journal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-approvals-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('hands the requests a previous run left to the next one, and forgets the decided ones', () => {
    const file = join(dir, 'approvals.db');
    const first = new SqliteApprovalJournal(file);
    expect(first.leftovers()).toEqual([]);
    first.add(leftover());
    first.add({ ...leftover(), id: 'req-2' });
    first.remove('req-2');
    // The process dies here: nothing else is written.
    first.close();
    const second = new SqliteApprovalJournal(file);
    expect(second.leftovers()).toEqual([leftover()]);
    expect(second.leftovers()).toEqual([]);
    second.remove('req-1');
    second.close();
    const third = new SqliteApprovalJournal(file);
    expect(third.leftovers()).toEqual([]);
    third.close();
  });

  function leftover(): PendingRecord {
    return {
      id: 'req-1',
      callId: 'c',
      digest: 'sha256:' + 'b'.repeat(64),
      user: 'u',
      client: 'ide',
      server: 'crm',
      kind: 'tool',
      name: 'refund',
      reasons: ['r'],
      askedAt: 1,
      deadline: 2,
    };
  }
});
