/**
 * The daemon's terminal as a surface of the human channel, for headless use: it shows each
 * question in full and takes the answer typed there (a letter, then Enter), and beside it the
 * address of the question page with the code that opens it. Nothing else shows that code.
 *
 * Only a terminal counts: the daemon's stderr when it is one, else its controlling terminal
 * (/dev/tty); answers by key need stdin to be that terminal too. A daemon with no terminal (a
 * service, a pipe) shows no questions here, and the desk says no person can be asked.
 *
 * What a same-user process can still do to a terminal is stated in SECURITY.md: type into it
 * where TIOCSTI is allowed or through a terminal multiplexer (tmux send-keys), and read it through
 * a multiplexer or the display server. `gatehouse status` reports those doors.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { QuestionAnswer } from '../../common/questions.js';
import type { DeskQuestion, HumanSurface, QuestionOutcome, Respond } from '../../core/human/desk.js';
import type { QuestionPage } from './page.js';

/** The person's terminal: where text is shown, and the lines typed there (when the daemon reads them). */
export interface TerminalIo {
  write(text: string): void;
  /** Subscribes to typed lines; absent when the daemon cannot read the terminal. */
  onLine?(listener: (line: string) => void): () => void;
}

/**
 * The daemon's own terminal, or undefined when it has none. stderr when it is a terminal, else
 * /dev/tty (stderr redirected, still run from a terminal); input from stdin when it is a terminal.
 */
export function daemonTerminal(stdin: NodeJS.ReadStream = process.stdin, stderr: NodeJS.WriteStream = process.stderr): TerminalIo | undefined {
  let write: ((text: string) => void) | undefined;
  if (stderr.isTTY) write = (text) => void stderr.write(text);
  else if (canWriteTty()) write = writeTty;
  if (!write) return undefined;
  if (!stdin.isTTY) return { write };
  return {
    write,
    onLine(listener) {
      const rl = createInterface({ input: stdin, terminal: false });
      rl.on('line', listener);
      return () => rl.close();
    },
  };
}

function canWriteTty(): boolean {
  try {
    closeSync(openSync('/dev/tty', 'w'));
    return true;
  } catch {
    return false;
  }
}

function writeTty(text: string): void {
  let fd: number | undefined;
  try {
    fd = openSync('/dev/tty', 'w');
    writeSync(fd, text);
  } catch {
    // The terminal went away; the question still waits in the other surfaces or until its deadline.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface TerminalSurfaceOptions {
  io: TerminalIo;
  /** The question page, whose address and code are shown beside each question. */
  page?: QuestionPage;
}

interface Shown {
  number: number;
  entry: DeskQuestion;
  respond: Respond;
  /** Letter → the answer it stands for. */
  keys: Map<string, (days?: number) => QuestionAnswer>;
}

const RULE = '─'.repeat(72);

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((line) => by + line)
    .join('\n');
}

/** The letter each answer takes on the terminal, and what it means. */
function answerKeys(entry: DeskQuestion): { keys: Shown['keys']; legend: string[] } {
  const q = entry.question;
  const keys: Shown['keys'] = new Map([['d', () => ({ decision: 'decline' })]]);
  const legend = ['d = decline'];
  if (q.scope) {
    const scope = q.scope;
    const pick = (kind: 'all' | 'read-only') => (days?: number) => ({
      decision: 'approve' as const,
      scope: { kind, servers: [], tools: [], expiryDays: days ?? scope.expiryDays[0]! },
    });
    keys.set('r', pick('read-only'));
    keys.set('a', pick('all'));
    legend.push('r = read-only tools', 'a = all my tools');
    legend.push(`add a number of days for how long (${scope.expiryDays.join(', ')}; ${scope.expiryDays[0]} if none), e.g. "r 7"`);
  } else if (q.choices) {
    q.choices.forEach((choice, index) => {
      const prefix = choice.id.split(':')[0] ?? '';
      const letter = /^[a-z]/.test(prefix) && prefix[0] !== 'd' && !keys.has(prefix[0]!) ? prefix[0]! : String(index + 1);
      keys.set(letter, () => ({ decision: 'approve', choice: choice.id }));
      legend.push(`${letter} = ${choice.label}`);
    });
  } else {
    keys.set('y', () => ({ decision: 'approve' }));
    legend.push('y = yes');
  }
  return { keys, legend };
}

function outcomeText(outcome: QuestionOutcome): string {
  const where = outcome.via ? ` in ${outcome.via === 'terminal' ? 'this terminal' : `the ${outcome.via}`}` : '';
  switch (outcome.kind) {
    case 'approved':
      return `approved${where}`;
    case 'declined':
      return `declined${where}`;
    case 'expired':
      return 'no longer waiting (its deadline passed, or the client went away)';
    case 'unavailable':
      return 'withdrawn';
  }
}

export class TerminalSurface implements HumanSurface {
  readonly name = 'terminal' as const;
  private readonly shown = new Map<string, Shown>();
  private next = 1;
  private stopListening: (() => void) | undefined;

  constructor(private readonly options: TerminalSurfaceOptions) {
    this.stopListening = options.io.onLine?.((line) => this.typed(line));
  }

  /** Whether answers can be typed here (stdin is the terminal). */
  get answersByKey(): boolean {
    return this.stopListening !== undefined;
  }

  show(entry: DeskQuestion, respond: Respond): boolean {
    const q = entry.question;
    const number = this.next++;
    const { keys, legend } = answerKeys(entry);
    this.shown.set(entry.id, { number, entry, respond, keys });
    const page = this.options.page?.open(entry, (answer) => respond(answer, 'question page'));
    const lines = [
      '',
      RULE,
      `Gatehouse asks [${number}]: ${q.title}`,
      ...q.facts.map((f) => (f.value.includes('\n') ? `  ${f.label}:\n${indent(f.value, '      ')}` : `  ${f.label}: ${f.value}`)),
      ...(q.code ? [`  Code the client shows: ${q.code} (if the client shows another, decline)`] : []),
      `  Unanswered, it is refused at ${clock(entry.deadline)}.`,
      '',
      ...(this.answersByKey
        ? [`  Answer here: type ${this.shown.size > 1 ? `${number} and ` : ''}a letter, then Enter:`, ...legend.map((l) => `      ${l}`)]
        : []),
      ...(page ? [`  ${this.answersByKey ? 'Or answer' : 'Answer'} in a browser: open ${page.url} and type the code ${page.code}`] : []),
      RULE,
      '',
    ];
    this.options.io.write(lines.join('\n'));
    return this.answersByKey || page !== undefined;
  }

  withdraw(id: string, outcome: QuestionOutcome): void {
    const shown = this.shown.get(id);
    if (!shown) return;
    this.shown.delete(id);
    this.options.page?.close(id);
    this.options.io.write(`Gatehouse: question [${shown.number}] (${shown.entry.question.title}) was ${outcomeText(outcome)}.\n`);
  }

  /** The page locked a question after wrong codes: the person should know someone is guessing. */
  pageLocked(id: string): void {
    const shown = this.shown.get(id);
    if (!shown) return;
    this.options.io.write(
      `Gatehouse: too many wrong codes were typed on the page of question [${shown.number}]; the page no longer takes answers for it. ` +
        'If that was not you, something on this computer is guessing: decline here.\n',
    );
  }

  close(): void {
    this.stopListening?.();
    this.stopListening = undefined;
  }

  private typed(line: string): void {
    const words = line.trim().toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length === 0 || this.shown.size === 0) return;
    let target: Shown | undefined;
    if (/^\d+$/.test(words[0]!)) {
      const number = Number(words.shift());
      target = [...this.shown.values()].find((s) => s.number === number);
      if (!target) return this.say(`no question [${number}] is waiting; waiting: ${this.waitingList()}`);
    } else if (this.shown.size === 1) {
      target = [...this.shown.values()][0]!;
    } else {
      return this.say(`several questions wait (${this.waitingList()}): type the question's number first, e.g. "${[...this.shown.values()][0]!.number} d"`);
    }
    const key = words[0];
    const make = key !== undefined ? target.keys.get(key) : undefined;
    if (!make) return this.say(`for question [${target.number}] type one of: ${[...target.keys.keys()].join(', ')}`);
    let days: number | undefined;
    if (words[1] !== undefined) {
      days = Number(words[1]);
      if (!Number.isInteger(days)) return this.say(`"${words[1]}" is not a number of days`);
    }
    const result = target.respond(make(days));
    if (!result.ok) this.say(`question [${target.number}] was not answered: ${result.message}`);
  }

  private waitingList(): string {
    return [...this.shown.values()].map((s) => `[${s.number}] ${s.entry.question.title}`).join(', ');
  }

  private say(text: string): void {
    this.options.io.write(`Gatehouse: ${text}\n`);
  }
}
