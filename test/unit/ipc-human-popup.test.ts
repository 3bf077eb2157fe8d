/**
 * The human channel's desktop adapter (main/human-popup.ts): each question gets its own window;
 * only that window may read it and answer it; an answer counts only if the question offered it;
 * closing the window declines, silence expires.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HumanQuestion } from '../../src/core/identity/human-channel.js';
import { PopupHumanChannel, checkAnswer, type PopupWindows } from '../../main/human-popup.js';

const PAIRING: HumanQuestion = {
  kind: 'pairing',
  title: 'Pair the client "cursor"?',
  facts: [{ label: 'Client', value: 'cursor' }],
  code: 'ABCD-1234',
  scope: { servers: [{ name: 'memory', tools: ['read_graph', 'create_entities'] }], expiryDays: [30, 7] },
};
const APPROVAL: HumanQuestion = {
  kind: 'approval',
  title: 'Allow crm__refund?',
  facts: [{ label: 'Amount', value: 'EUR 120.00' }],
  choices: [
    { id: 'once', label: 'Once' },
    { id: 'session', label: 'For this session' },
  ],
};

function windows() {
  let next = 100;
  const opened: { id: number; title: string; closed: boolean; onClosed: () => void }[] = [];
  const port: PopupWindows = {
    open(title, onClosed) {
      const w = { id: next++, title, closed: false, onClosed };
      opened.push(w);
      return {
        webContentsId: w.id,
        close: () => {
          if (w.closed) return;
          w.closed = true;
          onClosed();
        },
      };
    },
  };
  return { port, opened };
}

afterEach(() => vi.useRealTimers());

describe('PopupHumanChannel', () => {
  it('opens a window per question, shows it only to that window, and takes an offered answer from it', async () => {
    const { port, opened } = windows();
    const channel = new PopupHumanChannel(port);
    const asked = vi.fn();
    const answer = channel.ask(PAIRING, Date.now() + 60_000, undefined, asked);
    expect(asked).toHaveBeenCalledOnce();
    expect(channel.pending()).toBe(1);
    const win = opened[0]!;
    expect(win.title).toBe(PAIRING.title);

    expect(channel.questionFor(999)).toMatchObject({ ok: false, error: { code: 'no_question' } });
    const shown = channel.questionFor(win.id);
    expect(shown).toMatchObject({ ok: true, result: { kind: 'pairing', code: 'ABCD-1234', scope: { expiryDays: [30, 7] } } });

    expect(channel.answer(999, { decision: 'decline' })).toMatchObject({ ok: false, error: { code: 'no_question' } });
    expect(channel.answer(win.id, { decision: 'approve', scope: { kind: 'listed', servers: [], tools: ['memory__read_graph'], expiryDays: 7 } })).toEqual({ ok: true, result: { recorded: true } });
    expect(await answer).toEqual({ kind: 'approved', scope: { kind: 'listed', servers: [], tools: ['memory__read_graph'], expiryDays: 7 } });
    expect(win.closed).toBe(true);
    expect(channel.pending()).toBe(0);
  });

  it('refuses a malformed answer and one the question did not offer, and keeps waiting', async () => {
    const { port, opened } = windows();
    const channel = new PopupHumanChannel(port);
    const answer = channel.ask(PAIRING, Date.now() + 60_000);
    const id = opened[0]!.id;
    expect(channel.answer(id, { decision: 'yes please' })).toMatchObject({ ok: false, error: { code: 'invalid_params' } });
    expect(channel.answer(id, { decision: 'approve', scope: { kind: 'listed', servers: ['crm'], tools: [], expiryDays: 7 } })).toMatchObject({ ok: false, error: { code: 'invalid_answer', message: /not offered/ } });
    expect(channel.answer(id, { decision: 'approve', scope: { kind: 'all', servers: [], tools: [], expiryDays: 3650 } })).toMatchObject({ ok: false, error: { message: /lifetimes/ } });
    expect(channel.answer(id, { decision: 'approve' })).toMatchObject({ ok: false, error: { message: /what the client may do/ } });
    expect(channel.pending()).toBe(1);
    expect(channel.answer(id, { decision: 'decline' })).toMatchObject({ ok: true });
    expect(await answer).toEqual({ kind: 'declined' });
  });

  it('takes only an offered choice for an approval', async () => {
    const { port, opened } = windows();
    const channel = new PopupHumanChannel(port);
    const answer = channel.ask(APPROVAL, Date.now() + 60_000);
    const id = opened[0]!.id;
    expect(channel.answer(id, { decision: 'approve', choice: 'always' })).toMatchObject({ ok: false, error: { code: 'invalid_answer' } });
    expect(channel.answer(id, { decision: 'approve', choice: 'once' })).toMatchObject({ ok: true });
    expect(await answer).toEqual({ kind: 'approved', choice: 'once' });
  });

  it('declines when the person closes the window', async () => {
    const { port, opened } = windows();
    const channel = new PopupHumanChannel(port);
    const answer = channel.ask(APPROVAL, Date.now() + 60_000);
    opened[0]!.onClosed();
    expect(await answer).toEqual({ kind: 'declined' });
    expect(channel.pending()).toBe(0);
  });

  it('expires at the deadline, closing the window, and when the asker goes away', async () => {
    vi.useFakeTimers();
    const { port, opened } = windows();
    const channel = new PopupHumanChannel(port);
    const expiring = channel.ask(APPROVAL, Date.now() + 1000);
    vi.advanceTimersByTime(1001);
    expect(await expiring).toEqual({ kind: 'expired' });
    expect(opened[0]!.closed).toBe(true);

    const abort = new AbortController();
    const abandoned = channel.ask(APPROVAL, Date.now() + 60_000, abort.signal);
    abort.abort();
    expect(await abandoned).toEqual({ kind: 'expired' });
    expect(channel.pending()).toBe(0);
  });

  it('says no person can be asked when no window opens, and refuses every open question when quitting', async () => {
    const channel = new PopupHumanChannel({ open: () => { throw new Error('no display'); } });
    expect(await channel.ask(APPROVAL, Date.now() + 60_000)).toMatchObject({ kind: 'unavailable', reason: /no display/ });
    const { port } = windows();
    const quitting = new PopupHumanChannel(port);
    const answer = quitting.ask(PAIRING, Date.now() + 60_000);
    quitting.closeAll();
    expect(await answer).toEqual({ kind: 'expired' });
  });
});

describe('checkAnswer', () => {
  it('approves a question without scope or choices, and keeps a listed scope sorted and without repeats', () => {
    expect(checkAnswer({ kind: 'approval', title: 't', facts: [] }, { decision: 'approve' })).toEqual({ answer: { kind: 'approved' } });
    const checked = checkAnswer(PAIRING, { decision: 'approve', scope: { kind: 'listed', servers: ['memory', 'memory'], tools: ['memory__read_graph'], expiryDays: 30 } });
    expect(checked).toEqual({ answer: { kind: 'approved', scope: { kind: 'listed', servers: ['memory'], tools: ['memory__read_graph'], expiryDays: 30 } } });
    expect(checkAnswer(PAIRING, { decision: 'approve', scope: { kind: 'read-only', servers: ['memory'], tools: [], expiryDays: 30 } })).toEqual({
      answer: { kind: 'approved', scope: { kind: 'read-only', servers: [], tools: [], expiryDays: 30 } },
    });
  });
});
