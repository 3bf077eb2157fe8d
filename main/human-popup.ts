/**
 * The human channel's desktop adapter: each question (pairing consent, an approval) gets its own
 * always-on-top window, built from the same secure defaults as every window. The window asks for
 * its question and sends one answer over IPC; the answer counts only when it comes from that
 * question's own window and is one of the answers the question offered. Closing the window
 * declines; silence until the deadline expires the question.
 *
 * Pure apart from the `PopupWindows` port (main.ts opens real BrowserWindows), so the logic is
 * unit-tested without Electron (test/unit/ipc-human-popup.test.ts).
 */
import type { BridgeResult, PopupAnswer, PopupQuestion } from '../src/common/console-api.js';
import { PopupAnswerSchema } from '../src/common/console-api.js';
import type { HumanAnswer, HumanChannel, HumanQuestion, PairingScopeAnswer } from '../src/core/identity/human-channel.js';

export interface PopupWindow {
  /** The web contents the window's messages come from. */
  readonly webContentsId: number;
  close(): void;
}

export interface PopupWindows {
  /** Opens (and shows, on top) a window for one question. `onClosed` runs when the person closes it. */
  open(title: string, onClosed: () => void): PopupWindow;
}

interface Pending {
  question: HumanQuestion;
  deadline: number;
  window: PopupWindow;
  resolve: (answer: HumanAnswer) => void;
}

/** Checks an answer against what the question offered (the same rules as the loopback pairing page). */
export function checkAnswer(question: HumanQuestion, answer: PopupAnswer): { answer: HumanAnswer } | { error: string } {
  if (answer.decision === 'decline') return { answer: { kind: 'declined' } };
  if (question.scope) {
    const scope = answer.scope;
    if (!scope) return { error: 'choose what the client may do' };
    const offeredServers = new Set(question.scope.servers.map((s) => s.name));
    const offeredTools = new Set(question.scope.servers.flatMap((s) => s.tools.map((t) => `${s.name}__${t}`)));
    if (scope.servers.some((s) => !offeredServers.has(s)) || scope.tools.some((t) => !offeredTools.has(t))) return { error: 'the answer names a server or tool that was not offered' };
    if (scope.kind === 'listed' && scope.servers.length === 0 && scope.tools.length === 0) return { error: 'tick at least one server or tool, or choose another scope' };
    if (!question.scope.expiryDays.includes(scope.expiryDays)) return { error: 'choose one of the offered lifetimes' };
    const picked: PairingScopeAnswer = {
      kind: scope.kind,
      servers: scope.kind === 'listed' ? [...new Set(scope.servers)].sort() : [],
      tools: scope.kind === 'listed' ? [...new Set(scope.tools)].sort() : [],
      expiryDays: scope.expiryDays,
    };
    return { answer: { kind: 'approved', scope: picked } };
  }
  if (question.choices) {
    if (!question.choices.some((c) => c.id === answer.choice)) return { error: 'choose one of the answers' };
    return { answer: { kind: 'approved', choice: answer.choice! } };
  }
  return { answer: { kind: 'approved' } };
}

export class PopupHumanChannel implements HumanChannel {
  private readonly byWindow = new Map<number, Pending>();

  constructor(
    private readonly windows: PopupWindows,
    private readonly now: () => number = Date.now,
    private readonly onChange: () => void = () => undefined,
  ) {}

  pending(): number {
    return this.byWindow.size;
  }

  async ask(question: HumanQuestion, deadline: number, signal?: AbortSignal, onAsked?: () => void): Promise<HumanAnswer> {
    if (signal?.aborted) return { kind: 'expired' };
    let settle!: (answer: HumanAnswer) => void;
    const answered = new Promise<HumanAnswer>((resolve) => (settle = resolve));
    const held: { pending?: Pending } = {};
    const finish = (answer: HumanAnswer): void => {
      const pending = held.pending;
      if (!pending || !this.byWindow.has(pending.window.webContentsId)) return;
      this.byWindow.delete(pending.window.webContentsId);
      pending.window.close();
      this.onChange();
      settle(answer);
    };
    let window: PopupWindow;
    try {
      window = this.windows.open(question.title, () => finish({ kind: 'declined' }));
    } catch (error) {
      return { kind: 'unavailable', reason: `no window could be opened to ask you (${error instanceof Error ? error.message : String(error)})` };
    }
    held.pending = { question, deadline, window, resolve: finish };
    this.byWindow.set(window.webContentsId, held.pending);
    this.onChange();
    const timer = setTimeout(() => finish({ kind: 'expired' }), Math.max(0, deadline - this.now()));
    const onAbort = (): void => finish({ kind: 'expired' });
    signal?.addEventListener('abort', onAbort, { once: true });
    onAsked?.();
    try {
      return await answered;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The question a popup window shows; only its own window may read it. */
  questionFor(webContentsId: number): BridgeResult {
    const pending = this.byWindow.get(webContentsId);
    if (!pending) return { ok: false, error: { code: 'no_question', message: 'this window has no question waiting (it was answered or it expired)' } };
    const q = pending.question;
    const question: PopupQuestion = {
      kind: q.kind,
      title: q.title,
      facts: q.facts.map((f) => ({ label: f.label, value: f.value })),
      ...(q.code ? { code: q.code } : {}),
      ...(q.scope ? { scope: { servers: q.scope.servers.map((s) => ({ name: s.name, tools: [...s.tools] })), expiryDays: [...q.scope.expiryDays] } } : {}),
      ...(q.choices ? { choices: q.choices.map((c) => ({ id: c.id, label: c.label })) } : {}),
      deadline: new Date(pending.deadline).toISOString(),
    };
    return { ok: true, result: question };
  }

  /** An answer from a popup window: parsed, checked against that window's question, then it counts. */
  answer(webContentsId: number, payload: unknown): BridgeResult {
    const pending = this.byWindow.get(webContentsId);
    if (!pending) return { ok: false, error: { code: 'no_question', message: 'this window has no question waiting (it was answered or it expired)' } };
    const parsed = PopupAnswerSchema.safeParse(payload);
    if (!parsed.success) return { ok: false, error: { code: 'invalid_params', message: parsed.error.issues[0]?.message ?? 'not an answer' } };
    const checked = checkAnswer(pending.question, parsed.data);
    if ('error' in checked) return { ok: false, error: { code: 'invalid_answer', message: checked.error } };
    pending.resolve(checked.answer);
    return { ok: true, result: { recorded: true } };
  }

  /** Whether a web contents belongs to a question popup (for the IPC sender check). */
  isPopup(webContentsId: number): boolean {
    return this.byWindow.has(webContentsId);
  }

  /** Quitting: every open question is refused. */
  closeAll(): void {
    for (const pending of [...this.byWindow.values()]) pending.resolve({ kind: 'expired' });
  }
}
