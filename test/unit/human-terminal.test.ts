/**
 * The daemon's terminal as a surface of the human channel (src/node/human/terminal.ts): every fact
 * of a question, the letters that answer it, and the question page's address and code beside it;
 * answers typed there, one question or several; what happened to each question afterwards. Issue 10.
 */
import { describe, expect, it } from 'vitest';
import type { HumanQuestion } from '../../src/core/human/channel.js';
import { HumanDesk } from '../../src/core/human/desk.js';
import { TerminalSurface } from '../../src/node/human/terminal.js';
import { Screen } from '../support/screen.js';

const APPROVAL: HumanQuestion = {
  kind: 'approval',
  title: 'Allow ide to call crm__refund?',
  facts: [
    { label: 'Client', value: 'ide (paired, over socket)' },
    { label: 'Arguments', value: '{\n  "amount": 260\n}' },
  ],
  choices: [
    { id: 'once:sha256:aa', label: 'Allow once: this call only' },
    { id: 'session:sha256:aa', label: 'Allow for this session' },
  ],
};
const PAIRING: HumanQuestion = {
  kind: 'pairing',
  title: 'Pair the client "cursor"?',
  facts: [{ label: 'Client', value: 'cursor' }],
  code: 'ABC-123',
  scope: { servers: [{ name: 'memory', tools: ['read_graph'] }], expiryDays: [90, 30, 7, 1] },
};

function terminal(readsInput = true) {
  const screen = new Screen(readsInput);
  const surface = new TerminalSurface({ io: screen });
  let n = 0;
  const desk = new HumanDesk({
    surfaces: [surface],
    now: Date.now,
    newId: () => `q${++n}`,
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
  });
  return { screen, desk };
}

describe("the daemon's terminal", () => {
  it('shows every fact of a question with the letters that answer it, and takes the answer typed there', async () => {
    const { screen, desk } = terminal();
    const answer = desk.ask(APPROVAL, Date.now() + 60_000);
    const [shown] = screen.questions();
    expect(shown!.title).toBe('Allow ide to call crm__refund?');
    expect(shown!.text).toContain('  Client: ide (paired, over socket)');
    expect(shown!.text).toContain('      "amount": 260');
    expect(shown!.text).toContain('d = decline');
    expect(shown!.text).toContain('o = Allow once: this call only');
    expect(shown!.text).toContain('s = Allow for this session');
    screen.type('s');
    expect(await answer).toEqual({ kind: 'approved', choice: 'session:sha256:aa', via: 'terminal' });
    expect(screen.text).toContain('question [1] (Allow ide to call crm__refund?) was approved in this terminal');
  });

  it('pairs read-only or with all tools, for a lifetime from the offered ones', async () => {
    const { screen, desk } = terminal();
    const answer = desk.ask(PAIRING, Date.now() + 60_000);
    expect(screen.questions()[0]!.clientCode).toBe('ABC-123');
    screen.type('r 45');
    expect(screen.text).toContain('not answered: choose one of the offered lifetimes');
    screen.type('r 7');
    expect(await answer).toEqual({ kind: 'approved', scope: { kind: 'read-only', servers: [], tools: [], expiryDays: 7 }, via: 'terminal' });
  });

  it("asks for the question's number when several wait, and ignores what answers none", async () => {
    const { screen, desk } = terminal();
    const first = desk.ask(APPROVAL, Date.now() + 60_000);
    const second = desk.ask(PAIRING, Date.now() + 60_000);
    screen.type('d');
    expect(screen.text).toContain('several questions wait ([1] Allow ide to call crm__refund?, [2] Pair the client "cursor"?)');
    screen.type('3 d');
    expect(screen.text).toContain('no question [3] is waiting');
    screen.type('2 x');
    expect(screen.text).toContain('for question [2] type one of: d, r, a');
    screen.type('2 a');
    expect(await second).toMatchObject({ kind: 'approved', scope: { kind: 'all', expiryDays: 90 } });
    screen.type('1 d');
    expect(await first).toEqual({ kind: 'declined', via: 'terminal' });
  });

  it('says when a question ended elsewhere or expired', async () => {
    const { screen, desk } = terminal();
    const abort = new AbortController();
    const answer = desk.ask(APPROVAL, Date.now() + 60_000, abort.signal);
    abort.abort();
    await answer;
    expect(screen.text).toContain('question [1] (Allow ide to call crm__refund?) was no longer waiting');
  });

  it('does not claim to reach a person when it can neither read answers nor show a page', async () => {
    const { desk } = terminal(false);
    expect(await desk.ask(APPROVAL, Date.now() + 60_000)).toMatchObject({ kind: 'unavailable' });
  });
});
