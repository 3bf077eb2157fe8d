/**
 * The human channel as the daemon builds it: the desk (src/core/human/desk.ts), and the surfaces
 * that reach the person. The desktop app brings its own windows; headless, the daemon's terminal
 * shows each question with the question page's address and code and, when it reads input, takes
 * the answer by key. A desktop notification tells the person a question waits and where, and
 * carries nothing that answers.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { WaitingQuestion } from '../../common/questions.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { HumanChannelStatus } from '../../common/status.js';
import type { QuestionsReport } from '../../common/console-api.js';
import { HumanDesk, waitingQuestion, type HumanSurface, type QuestionNotice } from '../../core/human/desk.js';
import type { Logger } from '../../core/ports.js';
import { openDoors } from '../human/doors.js';
import type { Notifier } from '../human/notify.js';
import { QuestionNotifications } from '../human/notify.js';
import { QuestionPage } from '../human/page.js';
import { TerminalSurface, daemonTerminal, type TerminalIo } from '../human/terminal.js';

export interface HumanOptions {
  /**
   * The person's terminal, headless: questions are shown there with the question page's address
   * and code, and answered by key when it reads input. Default: the daemon's own terminal (stderr
   * or /dev/tty; stdin for keys); `null`: none.
   */
  terminal?: TerminalIo | null;
  /** More surfaces: the desktop app's windows. */
  surfaces?: HumanSurface[];
  /** How the person hears that a question waits (default: a desktop notification through `notifier`). */
  notice?: QuestionNotice;
}

/** The questions waiting, for the desktop app's tray and inbox, in process. It answers nothing. */
export interface QuestionsApi {
  list(): WaitingQuestion[];
  onChange(listener: () => void): () => void;
}

export interface HumanChannelParts {
  desk: HumanDesk;
  questions: QuestionsApi;
  /** The daemon's terminal, when it has one (the console's sign-in code is shown there too). */
  terminal: TerminalIo | undefined;
  /** Where the person answers, in words for a client's message ("the Gatehouse window that asks"). */
  whereToAnswer(): string;
  /** What waits, where it is answered, and the question page's origin (headless). */
  report(): QuestionsReport;
  /** Opens the question page's port (before the daemon serves). */
  start(): Promise<void>;
  close(): Promise<void>;
  status(): HumanChannelStatus;
}

export function openHumanChannel(options: HumanOptions & { logger: Logger; notifier: Notifier; pagePort: number; env: NodeJS.ProcessEnv }): HumanChannelParts {
  const { logger } = options;
  const terminal = options.terminal === null ? undefined : (options.terminal ?? daemonTerminal());
  const locked = { tell: (_id: string): void => undefined };
  const page = terminal ? new QuestionPage({ logger, port: options.pagePort, onLocked: (id) => locked.tell(id) }) : undefined;
  const terminalSurface = terminal ? new TerminalSurface({ io: terminal, ...(page ? { page } : {}) }) : undefined;
  if (terminalSurface) locked.tell = (id) => terminalSurface.pageLocked(id);
  const surfaces = [...(options.surfaces ?? []), ...(terminalSurface ? [terminalSurface] : [])];
  const desk: HumanDesk = new HumanDesk({
    surfaces,
    notice: options.notice ?? new QuestionNotifications(options.notifier),
    now: Date.now,
    newId: () => randomBytes(12).toString('base64url'),
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
    // The log names each question and how it ended; it never holds a code.
    log: (event, fields) => logger.log('info', event, fields),
  });
  const questions: QuestionsApi = {
    list: () => desk.list().map(waitingQuestion),
    onChange: (listener) => desk.onChange(listener),
  };
  const surfaceNames = (): string[] => {
    const names: string[] = (options.surfaces ?? []).map((s) => s.name);
    if (terminalSurface?.answersByKey) names.push('terminal');
    if (page?.listening) names.push('question page');
    return names;
  };
  const readSysctl = (path: string): string | undefined => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  };
  return {
    desk,
    questions,
    terminal,
    start: async () => {
      if (!page) return;
      try {
        await page.listen();
      } catch (error) {
        const port = options.pagePort;
        throw new GatehouseError(
          'port_in_use',
          `the question page cannot listen on 127.0.0.1:${port} (${errorMessage(error)}); free the port or change humanPage.port`,
        );
      }
    },
    close: async () => {
      desk.close();
      terminalSurface?.close();
      await page?.stop();
    },
    whereToAnswer: () => {
      const at = surfaceNames();
      if (at.includes('desktop app')) return 'the Gatehouse window that asks';
      if (at.includes('terminal')) return 'the terminal where Gatehouse runs';
      if (at.includes('question page')) return 'the question page whose address and code the terminal where Gatehouse runs shows';
      return 'nowhere: no person can be asked (run `gatehouse daemon` in a terminal, or the desktop app)';
    },
    report: () => ({ questions: questions.list(), answerAt: surfaceNames(), ...(page?.listening ? { pageOrigin: page.origin } : {}) }),
    status: () => {
      return {
        surfaces: surfaceNames(),
        doors: openDoors({ platform: process.platform, read: readSysctl, env: options.env, terminal: terminalSurface !== undefined }),
      };
    },
  };
}
