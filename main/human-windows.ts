/**
 * The human channel's surface in the desktop app: each question (pairing consent, an approval)
 * opens its own always-on-top window, built from the same secure defaults as every window, and
 * waits in the console window's inbox too. Answers travel only over the IPC of windows the main
 * process created: a question window may read and answer its own question; the console window may
 * list what waits and answer any of it. Closing a question window declines; silence until the
 * deadline expires it. Every answer is parsed here and then checked by the desk against what the
 * question offered.
 *
 * Pure apart from the `QuestionWindows` port (main.ts opens real BrowserWindows), so the logic and
 * the IPC handlers are tested in plain Node, against a real daemon's questions
 * (test/unit/ipc-human-windows.test.ts, test/integration/human-app.test.ts).
 */
import type { BridgeResult } from '../src/common/console-api.js';
import { QuestionAnswerSchema, type WaitingQuestion } from '../src/common/questions.js';
import { waitingQuestion, type DeskQuestion, type HumanSurface, type QuestionOutcome, type Respond } from '../src/core/human/desk.js';
import { FORBIDDEN, isTrustedSender, type IpcEventLike } from './ipc.js';

export interface QuestionWindow {
  /** The web contents the window's messages come from. */
  readonly webContentsId: number;
  close(): void;
  /** Brings the window to the front (a notification was clicked). */
  focus(): void;
}

export interface QuestionWindows {
  /** Opens (and shows, on top) a window for one question. `onClosed` runs when the window closes, whoever closed it. */
  open(title: string, onClosed: () => void): QuestionWindow;
}

interface Shown {
  entry: DeskQuestion;
  respond: Respond;
  window: QuestionWindow | undefined;
}

const NO_QUESTION: BridgeResult = { ok: false, error: { code: 'no_question', message: 'this question is not waiting (it was answered or it expired)' } };

export class AppSurface implements HumanSurface {
  readonly name = 'desktop app' as const;
  private readonly shown = new Map<string, Shown>();
  private readonly byWindow = new Map<number, string>();

  constructor(
    private readonly windows: QuestionWindows,
    private readonly onChange: () => void = () => undefined,
  ) {}

  show(entry: DeskQuestion, respond: Respond): boolean {
    const shown: Shown = { entry, respond, window: undefined };
    this.shown.set(entry.id, shown);
    try {
      shown.window = this.windows.open(entry.question.title, () => {
        if (shown.window) this.byWindow.delete(shown.window.webContentsId);
        // Closed by the person while the question still waits: that is a "no".
        if (this.shown.get(entry.id) === shown) respond({ decision: 'decline' });
      });
      this.byWindow.set(shown.window.webContentsId, entry.id);
    } catch {
      // No window (no display): the question still waits in the console window's inbox.
    }
    this.onChange();
    return true;
  }

  withdraw(id: string, _outcome: QuestionOutcome): void {
    const shown = this.shown.get(id);
    if (!shown) return;
    this.shown.delete(id);
    if (shown.window) {
      this.byWindow.delete(shown.window.webContentsId);
      shown.window.close();
    }
    this.onChange();
  }

  /** How many questions wait (the tray's badge). */
  waiting(): number {
    return this.shown.size;
  }

  /** Brings a question's window forward (its notification was clicked); false when it no longer waits. */
  focus(id: string): boolean {
    const shown = this.shown.get(id);
    shown?.window?.focus();
    return shown !== undefined;
  }

  /** Whether a web contents is one of the question windows (for the IPC sender check). */
  isQuestionWindow(webContentsId: number): boolean {
    return this.byWindow.has(webContentsId);
  }

  /** The question a question window shows: its own, and only its own. */
  questionFor(webContentsId: number): BridgeResult {
    const id = this.byWindow.get(webContentsId);
    const shown = id === undefined ? undefined : this.shown.get(id);
    return shown ? { ok: true, result: waitingQuestion(shown.entry) } : NO_QUESTION;
  }

  /** A question window's answer, to its own question. */
  answerFromWindow(webContentsId: number, payload: unknown): BridgeResult {
    const id = this.byWindow.get(webContentsId);
    return id === undefined ? NO_QUESTION : this.answer(id, payload);
  }

  /** The console window's inbox: everything waiting, oldest first. */
  list(): WaitingQuestion[] {
    return [...this.shown.values()].map((s) => waitingQuestion(s.entry));
  }

  /** An answer from the console window's inbox, to the question it names. */
  answer(id: unknown, payload: unknown): BridgeResult {
    const shown = typeof id === 'string' ? this.shown.get(id) : undefined;
    if (!shown) return NO_QUESTION;
    const parsed = QuestionAnswerSchema.safeParse(payload);
    if (!parsed.success) return { ok: false, error: { code: 'invalid_params', message: parsed.error.issues[0]?.message ?? 'not an answer' } };
    const result = shown.respond(parsed.data);
    return result.ok ? { ok: true, result: { recorded: true } } : { ok: false, error: { code: result.code, message: result.message } };
  }
}

export type HumanIpcHandler = (event: IpcEventLike, payload: unknown) => BridgeResult;

/**
 * The IPC handlers of the human channel, keyed by channel name: each checks the sender (the top
 * frame of a window main created, showing the app's own page) before anything else.
 * `isConsole` says whether a web contents is a console window.
 */
export function humanIpcHandlers(
  surface: AppSurface,
  isConsole: (webContentsId: number) => boolean,
  channels: { question: string; answer: string; inbox: string; inboxAnswer: string },
): Map<string, HumanIpcHandler> {
  const fromQuestionWindow = (event: IpcEventLike) => isTrustedSender(event, (id) => surface.isQuestionWindow(id));
  const fromConsole = (event: IpcEventLike) => isTrustedSender(event, isConsole);
  return new Map<string, HumanIpcHandler>([
    [channels.question, (event) => (fromQuestionWindow(event) ? surface.questionFor(event.sender.id) : FORBIDDEN)],
    [channels.answer, (event, payload) => (fromQuestionWindow(event) ? surface.answerFromWindow(event.sender.id, payload) : FORBIDDEN)],
    [channels.inbox, (event) => (fromConsole(event) ? { ok: true, result: surface.list() } : FORBIDDEN)],
    [
      channels.inboxAnswer,
      (event, payload) => {
        if (!fromConsole(event)) return FORBIDDEN;
        const { id, answer } = (payload ?? {}) as { id?: unknown; answer?: unknown };
        return surface.answer(id, answer);
      },
    ],
  ]);
}
