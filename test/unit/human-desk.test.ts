/**
 * The human channel's desk (src/core/human/desk.ts): a question is shown on every surface that can
 * reach the person, the first answer it offered wins and every other surface is told, anything it
 * did not offer leaves it waiting, silence or the asker leaving ends it, and with no surface nobody
 * is asked at all. Notifications say what waits and where, never how to answer. Issue 10.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AnswerSurface, QuestionAnswer } from '../../src/common/questions.js';
import type { HumanQuestion } from '../../src/core/human/channel.js';
import { HumanDesk, type DeskQuestion, type HumanSurface, type QuestionOutcome, type Respond } from '../../src/core/human/desk.js';
import { noticeText } from '../../src/core/human/notice.js';

const APPROVAL: HumanQuestion = {
  kind: 'approval',
  title: 'Allow ide to call crm__refund?',
  facts: [{ label: 'Arguments', value: '{ "amount": 260 }' }],
  choices: [{ id: 'once:sha256:aa', label: 'Allow once' }],
};

class FakeSurface implements HumanSurface {
  shown: { entry: DeskQuestion; respond: Respond }[] = [];
  withdrawn: { id: string; outcome: QuestionOutcome }[] = [];
  constructor(
    readonly name: AnswerSurface,
    private readonly reaches = true,
  ) {}
  show(entry: DeskQuestion, respond: Respond): boolean {
    if (!this.reaches) return false;
    this.shown.push({ entry, respond });
    return true;
  }
  withdraw(id: string, outcome: QuestionOutcome): void {
    this.withdrawn.push({ id, outcome });
  }
  answer(input: QuestionAnswer, via?: AnswerSurface) {
    return this.shown.at(-1)!.respond(input, via);
  }
}

function desk(surfaces: HumanSurface[], notice = { notify: vi.fn(), withdraw: vi.fn() }) {
  let n = 0;
  const log = vi.fn();
  const d = new HumanDesk({
    surfaces,
    notice,
    now: Date.now,
    newId: () => `q${++n}`,
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
    log,
  });
  return { d, notice, log };
}

afterEach(() => vi.useRealTimers());

describe('the desk of the human channel', () => {
  it('shows a question on every surface that reaches the person, and the first offered answer wins everywhere', async () => {
    const terminal = new FakeSurface('terminal');
    const app = new FakeSurface('desktop app');
    const { d, notice } = desk([terminal, app]);
    const asked = vi.fn();
    const answer = d.ask(APPROVAL, Date.now() + 60_000, undefined, asked);
    expect(asked).toHaveBeenCalledOnce();
    expect(terminal.shown).toHaveLength(1);
    expect(app.shown).toHaveLength(1);
    expect(notice.notify).toHaveBeenCalledWith(expect.objectContaining({ id: 'q1' }), ['terminal', 'desktop app']);
    expect(app.answer({ decision: 'approve', choice: 'once:sha256:aa' })).toEqual({ ok: true });
    expect(await answer).toEqual({ kind: 'approved', choice: 'once:sha256:aa', via: 'desktop app' });
    expect(terminal.withdrawn).toEqual([{ id: 'q1', outcome: { kind: 'approved', via: 'desktop app' } }]);
    expect(notice.withdraw).toHaveBeenCalledWith('q1');
    // A late answer on the other surface counts for nothing.
    expect(terminal.answer({ decision: 'decline' })).toMatchObject({ ok: false, code: 'no_question' });
    expect(d.pending()).toBe(0);
  });

  it('leaves the question waiting when an answer was not offered, and names the surface an answer came through', async () => {
    const terminal = new FakeSurface('terminal');
    const { d } = desk([terminal]);
    const answer = d.ask(APPROVAL, Date.now() + 60_000);
    expect(terminal.answer({ decision: 'approve', choice: 'always' })).toMatchObject({ ok: false, code: 'invalid_answer' });
    expect(d.pending()).toBe(1);
    expect(terminal.answer({ decision: 'decline' }, 'question page')).toEqual({ ok: true });
    expect(await answer).toEqual({ kind: 'declined', via: 'question page' });
  });

  it('ends a question at its deadline and when its asker goes away, telling every surface', async () => {
    vi.useFakeTimers();
    const terminal = new FakeSurface('terminal');
    const { d } = desk([terminal]);
    const late = d.ask(APPROVAL, Date.now() + 1000);
    vi.advanceTimersByTime(1001);
    expect(await late).toEqual({ kind: 'expired' });
    const abort = new AbortController();
    const left = d.ask(APPROVAL, Date.now() + 60_000, abort.signal);
    abort.abort();
    expect(await left).toEqual({ kind: 'expired' });
    expect(terminal.withdrawn.map((w) => w.outcome.kind)).toEqual(['expired', 'expired']);
  });

  it('asks nobody when no surface reaches a person, and says how one could be reached', async () => {
    const { d, notice } = desk([new FakeSurface('terminal', false)]);
    const answer = await d.ask(APPROVAL, Date.now() + 60_000);
    expect(answer).toMatchObject({ kind: 'unavailable', reason: expect.stringMatching(/desktop app.*terminal/) });
    expect(notice.notify).not.toHaveBeenCalled();
  });

  it('keeps asking on the other surfaces when one throws', async () => {
    const broken: HumanSurface = {
      name: 'desktop app',
      show: () => {
        throw new Error('no display');
      },
      withdraw: () => {
        throw new Error('no display');
      },
    };
    const terminal = new FakeSurface('terminal');
    const { d } = desk([broken, terminal]);
    const answer = d.ask(APPROVAL, Date.now() + 60_000);
    terminal.answer({ decision: 'decline' });
    expect(await answer).toEqual({ kind: 'declined', via: 'terminal' });
  });

  it('refuses every waiting question when it closes', async () => {
    const { d } = desk([new FakeSurface('terminal')]);
    const answer = d.ask(APPROVAL, Date.now() + 60_000);
    d.close();
    expect(await answer).toEqual({ kind: 'expired' });
  });

  it('logs each question and how it ended, with nothing in the log that answers it', async () => {
    const terminal = new FakeSurface('terminal');
    const { d, log } = desk([terminal]);
    const answer = d.ask(APPROVAL, Date.now() + 60_000);
    terminal.answer({ decision: 'decline' });
    await answer;
    expect(log.mock.calls.map((c) => c[0])).toEqual(['human.asked', 'human.ended']);
    expect(log.mock.calls[0]![1]).toMatchObject({ id: 'q1', shownOn: ['terminal'] });
    expect(log.mock.calls[1]![1]).toMatchObject({ id: 'q1', outcome: 'declined', via: 'terminal' });
  });
});

describe('a notification about a question', () => {
  it("says what is asked, the client's own code and where to answer, and carries no link", () => {
    const entry: DeskQuestion = { id: 'q1', question: { ...APPROVAL, code: 'ABC-123' }, askedAt: 0, deadline: Date.UTC(2026, 0, 1, 12, 0, 0) };
    const text = noticeText(entry, ['terminal', 'question page']);
    expect(text.title).toBe('Gatehouse: Allow ide to call crm__refund?');
    expect(text.body).toContain('The client shows the code ABC-123.');
    expect(text.body).toContain('Answer in the terminal where Gatehouse runs before');
    expect(text.body).not.toMatch(/http|amount|260/);
  });
});
