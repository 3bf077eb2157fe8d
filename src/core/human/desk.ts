/**
 * The desk: where questions for the person wait. It implements the human channel: `ask` puts a
 * question on the desk, shows it on every surface that can reach the person now (the desktop
 * app's windows; headless, the daemon's terminal with the question page), tells the person where
 * to answer through a notice (a desktop notification, which carries no way to answer), and
 * resolves with the first answer that a surface hands back and the question offered. Silence
 * until the deadline, or the asker going away, ends the question as `expired`; every surface is
 * told, so a window closes and the terminal says so.
 *
 * The desk holds no secret and hands out none. Whether an answer is the person's is the surface's
 * business: an app window's IPC, the terminal's input, or the page's code that only the terminal
 * shows. The only way to answer is the `respond` each surface is handed with a question; nothing
 * an agent can reach (MCP, the control socket, the console on loopback) holds one.
 */
import type { AnswerResult, AnswerSurface, QuestionAnswer, WaitingQuestion } from '../../common/questions.js';
import type { HumanAnswer, HumanChannel, HumanQuestion } from './channel.js';
import { checkAnswer } from './answers.js';

/** A question on the desk, as surfaces see it. */
export interface DeskQuestion {
  readonly id: string;
  readonly question: HumanQuestion;
  readonly askedAt: number;
  readonly deadline: number;
}

/**
 * Hands a person's answer to the desk for one question: it counts if the question still waits and
 * offered it. `via` names where it was given when that is not the surface itself (the question
 * page, reached through the terminal's code).
 */
export type Respond = (answer: QuestionAnswer, via?: AnswerSurface) => AnswerResult;

/** Somewhere the person can see a question and answer it. */
export interface HumanSurface {
  /** How the person knows it ("the desktop app", "the terminal where Gatehouse runs"). */
  readonly name: AnswerSurface;
  /**
   * Shows a question, with the one way to answer it; false when this surface cannot reach a person
   * now (no terminal, no display). Only surfaces ever hold a `respond`.
   */
  show(entry: DeskQuestion, respond: Respond): boolean;
  /** The question was answered (here or elsewhere), expired or was withdrawn: stop showing it. */
  withdraw(id: string, outcome: QuestionOutcome): void;
}

/** How a question ended, for the surfaces that still show it. */
export interface QuestionOutcome {
  kind: HumanAnswer['kind'];
  via?: AnswerSurface;
}

/** Tells the person a question waits and where to answer it; cannot answer. */
export interface QuestionNotice {
  notify(entry: DeskQuestion, answerWhere: readonly AnswerSurface[]): void;
  /** The question is no longer waiting (a notification is withdrawn where the desktop allows it). */
  withdraw?(id: string): void;
}

export interface HumanDeskOptions {
  surfaces: readonly HumanSurface[];
  notice?: QuestionNotice;
  now(): number;
  /** A fresh id per question (random; names it in addresses and logs, opens nothing). */
  newId(): string;
  /** Timers (the deadline); the daemon passes the real ones, tests a fake clock's. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /** Where the log hears that a question was asked and how it ended (never a secret). */
  log?(event: 'human.asked' | 'human.ended', fields: Record<string, unknown>): void;
}

interface Waiting extends DeskQuestion {
  settle(answer: HumanAnswer): void;
}

/** The question as it crosses to a window or the console. */
export function waitingQuestion(entry: DeskQuestion): WaitingQuestion {
  const q = entry.question;
  return {
    id: entry.id,
    kind: q.kind,
    title: q.title,
    facts: q.facts.map((f) => ({ label: f.label, value: f.value })),
    ...(q.code ? { code: q.code } : {}),
    ...(q.scope ? { scope: { servers: q.scope.servers.map((s) => ({ name: s.name, tools: [...s.tools] })), expiryDays: [...q.scope.expiryDays] } } : {}),
    ...(q.choices ? { choices: q.choices.map((c) => ({ id: c.id, label: c.label })) } : {}),
    askedAt: new Date(entry.askedAt).toISOString(),
    deadline: new Date(entry.deadline).toISOString(),
  };
}

export class HumanDesk implements HumanChannel {
  private readonly waiting = new Map<string, Waiting>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: HumanDeskOptions) {}

  pending(): number {
    return this.waiting.size;
  }

  /** The questions waiting, oldest first. */
  list(): DeskQuestion[] {
    return [...this.waiting.values()].map(({ id, question, askedAt, deadline }) => ({ id, question, askedAt, deadline }));
  }

  get(id: string): DeskQuestion | undefined {
    const w = this.waiting.get(id);
    return w && { id: w.id, question: w.question, askedAt: w.askedAt, deadline: w.deadline };
  }

  /** Runs whenever a question arrives or leaves; returns how to stop. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async ask(question: HumanQuestion, deadline: number, signal?: AbortSignal, onAsked?: () => void): Promise<HumanAnswer> {
    if (signal?.aborted) return { kind: 'expired' };
    const { surfaces } = this.options;
    const id = this.options.newId();
    const askedAt = this.options.now();
    let settle!: (answer: HumanAnswer) => void;
    const answered = new Promise<HumanAnswer>((resolve) => (settle = resolve));
    const timer: { handle?: unknown } = {};
    const entry: Waiting = {
      id,
      question,
      askedAt,
      deadline,
      settle: (answer) => {
        if (this.waiting.get(id) !== entry) return;
        this.waiting.delete(id);
        this.options.clearTimer(timer.handle);
        signal?.removeEventListener('abort', onAbort);
        const outcome: QuestionOutcome = { kind: answer.kind, ...('via' in answer && answer.via ? { via: answer.via } : {}) };
        for (const surface of surfaces) this.quietly(() => surface.withdraw(id, outcome));
        this.quietly(() => this.options.notice?.withdraw?.(id));
        this.options.log?.('human.ended', { id, kind: question.kind, outcome: answer.kind, ...(outcome.via ? { via: outcome.via } : {}) });
        this.changed();
        settle(answer);
      },
    };
    const onAbort = (): void => entry.settle({ kind: 'expired' });
    this.waiting.set(id, entry);
    signal?.addEventListener('abort', onAbort, { once: true });
    timer.handle = this.options.setTimer(() => entry.settle({ kind: 'expired' }), Math.max(0, deadline - askedAt));

    const shownOn = surfaces
      .filter((surface) => this.quietly(() => surface.show(entry, (answer, via) => this.answer(id, answer, via ?? surface.name))) === true)
      .map((surface) => surface.name);
    this.options.log?.('human.asked', { id, kind: question.kind, title: question.title, deadline: new Date(deadline).toISOString(), shownOn });
    if (shownOn.length === 0) {
      entry.settle({
        kind: 'unavailable',
        reason:
          'no way to reach a person: open the Gatehouse desktop app, or run `gatehouse daemon` in a terminal (questions are answered there, ' +
          'or on the question page with the code the terminal shows)',
      });
    } else {
      this.quietly(() => this.options.notice?.notify(entry, shownOn));
      this.changed();
      onAsked?.();
    }
    return answered;
  }

  /**
   * An answer from a surface (through its `respond`). It counts only for a waiting question and
   * only if the question offered it; otherwise the question keeps waiting and the surface hears why.
   */
  private answer(id: string, input: QuestionAnswer, via: AnswerSurface): AnswerResult {
    const entry = this.waiting.get(id);
    if (!entry)
      return { ok: false, code: 'no_question', message: 'this question is not waiting for an answer (it was answered, it expired, or it was withdrawn)' };
    if (this.options.now() > entry.deadline) {
      entry.settle({ kind: 'expired' });
      return { ok: false, code: 'no_question', message: 'the deadline of this question has passed' };
    }
    const checked = checkAnswer(entry.question, input);
    if ('error' in checked) return { ok: false, code: 'invalid_answer', message: checked.error };
    entry.settle({ ...checked.answer, via } as HumanAnswer);
    return { ok: true };
  }

  /** Stopping: every waiting question ends as expired (its asker refuses what waited). */
  close(): void {
    for (const entry of [...this.waiting.values()]) entry.settle({ kind: 'expired' });
  }

  private changed(): void {
    for (const listener of [...this.listeners]) this.quietly(listener);
  }

  /** A surface that throws must not keep the question from the others, nor from its deadline. */
  private quietly<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch {
      return undefined;
    }
  }
}
