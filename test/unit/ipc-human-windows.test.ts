/**
 * The human channel in the desktop app (main/human-windows.ts), with the real desk: each question
 * opens its own window; only that window may read and answer it, and the console window's inbox
 * may list and answer what waits; every message is checked for its sender first; an answer counts
 * only if the question offered it; closing a window declines, silence expires. Issue 10.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HumanQuestion } from '../../src/core/human/channel.js';
import { checkAnswer } from '../../src/core/human/answers.js';
import { HumanDesk } from '../../src/core/human/desk.js';
import { AppSurface, humanIpcHandlers, type QuestionWindows } from '../../main/human-windows.js';
import { recordingWindows } from '../support/question-windows.js';
import { APP_ORIGIN, type IpcEventLike } from '../../main/ipc.js';

const PAIRING: HumanQuestion = {
  kind: 'pairing',
  title: 'Pair the client "cursor"?',
  facts: [{ label: 'Client', value: 'cursor' }],
  code: 'ABC-123',
  scope: { servers: [{ name: 'memory', tools: ['read_graph', 'create_entities'] }], expiryDays: [30, 7] },
};
const APPROVAL: HumanQuestion = {
  kind: 'approval',
  title: 'Allow cursor to call crm__refund?',
  facts: [{ label: 'Arguments', value: '{\n  "amount": 260\n}' }],
  choices: [
    { id: 'once:sha256:aa', label: 'Allow once' },
    { id: 'session:sha256:aa', label: 'For this session' },
  ],
};
const CHANNELS = { question: 'q', answer: 'a', inbox: 'i', inboxAnswer: 'ia' };
const CONSOLE = 1;

const windows = () => recordingWindows();

function setup(port: QuestionWindows) {
  const surface = new AppSurface(port);
  const desk = new HumanDesk({
    surfaces: [surface],
    now: Date.now,
    newId: (() => {
      let n = 0;
      return () => `question-${String(++n).padStart(7, '0')}`;
    })(),
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
  });
  const handlers = humanIpcHandlers(surface, (id) => id === CONSOLE, CHANNELS);
  const call = (channel: string, sender: number, payload?: unknown, url = `${APP_ORIGIN}/index.html`) => {
    const event: IpcEventLike = { sender: { id: sender }, senderFrame: { url, parent: null } };
    return handlers.get(channel)!(event, payload);
  };
  return { surface, desk, call };
}

afterEach(() => vi.useRealTimers());

describe("the desktop app's question windows", () => {
  it('opens a window per question, shows it only to that window, and takes an offered answer from it', async () => {
    const { port, opened } = windows();
    const { desk, call } = setup(port);
    const asked = vi.fn();
    const answer = desk.ask(PAIRING, Date.now() + 60_000, undefined, asked);
    expect(asked).toHaveBeenCalledOnce();
    const win = opened[0]!;
    expect(win.title).toBe(PAIRING.title);
    // Another window, the console (not its window), and a subframe of its own window get nothing.
    expect(call(CHANNELS.question, 999)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(call(CHANNELS.question, CONSOLE)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(call(CHANNELS.question, win.id, undefined, 'https://evil.example/')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(call(CHANNELS.question, win.id)).toMatchObject({
      ok: true,
      result: { kind: 'pairing', code: 'ABC-123', scope: { expiryDays: [30, 7] }, facts: PAIRING.facts },
    });
    expect(call(CHANNELS.answer, 999, { decision: 'decline' })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const scope = { kind: 'listed', servers: [], tools: ['memory__read_graph'], expiryDays: 7 };
    expect(call(CHANNELS.answer, win.id, { decision: 'approve', scope })).toEqual({ ok: true, result: { recorded: true } });
    expect(await answer).toEqual({ kind: 'approved', scope, via: 'desktop app' });
    expect(win.closed).toBe(true);
    expect(desk.pending()).toBe(0);
    // The window's question is gone with it.
    expect(call(CHANNELS.question, win.id)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });

  it('refuses a malformed answer and one the question did not offer, and keeps waiting', async () => {
    const { port, opened } = windows();
    const { desk, call } = setup(port);
    const answer = desk.ask(PAIRING, Date.now() + 60_000);
    const id = opened[0]!.id;
    expect(call(CHANNELS.answer, id, { decision: 'yes please' })).toMatchObject({ ok: false, error: { code: 'invalid_params' } });
    const wider = { decision: 'approve', scope: { kind: 'listed', servers: ['crm'], tools: [], expiryDays: 7 } };
    expect(call(CHANNELS.answer, id, wider)).toMatchObject({ ok: false, error: { code: 'invalid_answer', message: /not offered/ } });
    const forever = { decision: 'approve', scope: { kind: 'all', servers: [], tools: [], expiryDays: 3650 } };
    expect(call(CHANNELS.answer, id, forever)).toMatchObject({ ok: false, error: { message: /lifetimes/ } });
    expect(call(CHANNELS.answer, id, { decision: 'approve' })).toMatchObject({ ok: false, error: { message: /what the client may do/ } });
    expect(desk.pending()).toBe(1);
    expect(call(CHANNELS.answer, id, { decision: 'decline' })).toMatchObject({ ok: true });
    expect(await answer).toEqual({ kind: 'declined', via: 'desktop app' });
  });

  it("takes only an offered choice for an approval, whose id names the request's digest", async () => {
    const { port, opened } = windows();
    const { desk, call } = setup(port);
    const answer = desk.ask(APPROVAL, Date.now() + 60_000);
    const id = opened[0]!.id;
    expect(call(CHANNELS.answer, id, { decision: 'approve', choice: 'always' })).toMatchObject({ ok: false, error: { code: 'invalid_answer' } });
    expect(call(CHANNELS.answer, id, { decision: 'approve', choice: 'once:sha256:bb' })).toMatchObject({ ok: false, error: { code: 'invalid_answer' } });
    expect(call(CHANNELS.answer, id, { decision: 'approve', choice: 'once:sha256:aa' })).toMatchObject({ ok: true });
    expect(await answer).toEqual({ kind: 'approved', choice: 'once:sha256:aa', via: 'desktop app' });
  });

  it("lists what waits in the console window's inbox and takes an answer there, which closes the question's window", async () => {
    const { port, opened } = windows();
    const { desk, call } = setup(port);
    const first = desk.ask(APPROVAL, Date.now() + 60_000);
    const second = desk.ask(PAIRING, Date.now() + 60_000);
    // A question window may not read the inbox, nor answer another question.
    expect(call(CHANNELS.inbox, opened[0]!.id)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const inbox = call(CHANNELS.inbox, CONSOLE) as { ok: true; result: { id: string; title: string }[] };
    expect(inbox.result.map((q) => q.title)).toEqual([APPROVAL.title, PAIRING.title]);
    expect(call(CHANNELS.inboxAnswer, opened[0]!.id, { id: inbox.result[1]!.id, answer: { decision: 'decline' } })).toMatchObject({
      error: { code: 'forbidden' },
    });
    expect(call(CHANNELS.inboxAnswer, CONSOLE, { id: 'no-such-question', answer: { decision: 'decline' } })).toMatchObject({ error: { code: 'no_question' } });
    expect(call(CHANNELS.inboxAnswer, CONSOLE, { id: inbox.result[0]!.id, answer: { decision: 'approve', choice: 'session:sha256:aa' } })).toMatchObject({
      ok: true,
    });
    expect(await first).toEqual({ kind: 'approved', choice: 'session:sha256:aa', via: 'desktop app' });
    expect(opened[0]!.closed).toBe(true);
    expect(opened[1]!.closed).toBe(false);
    expect(call(CHANNELS.inboxAnswer, CONSOLE, { id: inbox.result[1]!.id, answer: { decision: 'decline' } })).toMatchObject({ ok: true });
    expect(await second).toEqual({ kind: 'declined', via: 'desktop app' });
  });

  it('declines when the person closes the window', async () => {
    const { port, opened } = windows();
    const { desk } = setup(port);
    const answer = desk.ask(APPROVAL, Date.now() + 60_000);
    opened[0]!.onClosed();
    expect(await answer).toEqual({ kind: 'declined', via: 'desktop app' });
    expect(desk.pending()).toBe(0);
  });

  it('expires at the deadline, closing the window, and when the asker goes away', async () => {
    vi.useFakeTimers();
    const { port, opened } = windows();
    const { desk } = setup(port);
    const expiring = desk.ask(APPROVAL, Date.now() + 1000);
    vi.advanceTimersByTime(1001);
    expect(await expiring).toEqual({ kind: 'expired' });
    expect(opened[0]!.closed).toBe(true);

    const abort = new AbortController();
    const abandoned = desk.ask(APPROVAL, Date.now() + 60_000, abort.signal);
    abort.abort();
    expect(await abandoned).toEqual({ kind: 'expired' });
    expect(desk.pending()).toBe(0);
  });

  it('keeps a question in the inbox when no window can open, and brings a window forward for its notification', async () => {
    const failing = setup({
      open: () => {
        throw new Error('no display');
      },
    });
    const waiting = failing.desk.ask(APPROVAL, Date.now() + 60_000);
    const inbox = failing.call(CHANNELS.inbox, CONSOLE) as { ok: true; result: { id: string }[] };
    expect(inbox.result).toHaveLength(1);
    failing.call(CHANNELS.inboxAnswer, CONSOLE, { id: inbox.result[0]!.id, answer: { decision: 'decline' } });
    expect(await waiting).toMatchObject({ kind: 'declined' });

    const { port, opened } = windows();
    const { desk, surface } = setup(port);
    const answer = desk.ask(PAIRING, Date.now() + 60_000);
    const id = desk.list()[0]!.id;
    expect(surface.focus(id)).toBe(true);
    expect(opened[0]!.focused).toBe(1);
    desk.close();
    expect(await answer).toEqual({ kind: 'expired' });
    expect(surface.focus(id)).toBe(false);
  });
});

describe('checkAnswer', () => {
  it('approves a question without scope or choices, and keeps a listed scope sorted and without repeats', () => {
    expect(checkAnswer({ kind: 'approval', title: 't', facts: [] }, { decision: 'approve' })).toEqual({ answer: { kind: 'approved' } });
    const checked = checkAnswer(PAIRING, {
      decision: 'approve',
      scope: { kind: 'listed', servers: ['memory', 'memory'], tools: ['memory__read_graph'], expiryDays: 30 },
    });
    expect(checked).toEqual({ answer: { kind: 'approved', scope: { kind: 'listed', servers: ['memory'], tools: ['memory__read_graph'], expiryDays: 30 } } });
    expect(checkAnswer(PAIRING, { decision: 'approve', scope: { kind: 'read-only', servers: ['memory'], tools: [], expiryDays: 30 } })).toEqual({
      answer: { kind: 'approved', scope: { kind: 'read-only', servers: [], tools: [], expiryDays: 30 } },
    });
  });
});
