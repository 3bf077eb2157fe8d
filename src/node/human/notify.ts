/**
 * Desktop notifications through `notify-send` where it is installed (libnotify). Never required:
 * when it is missing or fails, the question still waits on the surfaces that can answer it.
 *
 * A notification's text is in notify-send's command line (readable by every local user) and in a
 * message on the session bus (readable by every process of the user), so callers pass only text
 * that answers nothing: `QuestionNotifications` builds it with `noticeText`.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { AnswerSurface } from '../../common/questions.js';
import type { DeskQuestion, QuestionNotice } from '../../core/human/desk.js';
import { noticeText } from '../../core/human/notice.js';

/** The full path of a program on PATH, or undefined. */
export function findOnPath(program: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

export interface Notifier {
  /** True when a notification was handed to the desktop. The text must answer nothing (see above). */
  notify(title: string, body: string): boolean;
}

export class DesktopNotifier implements Notifier {
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  notify(title: string, body: string): boolean {
    const program = findOnPath('notify-send', this.env);
    if (!program) return false;
    try {
      // Arguments, never a shell: the title may carry a client's self-chosen name.
      const child = spawn(program, ['--app-name=Gatehouse', '--urgency=critical', title, body], { stdio: 'ignore', detached: false, env: this.env });
      child.on('error', () => undefined);
      child.unref();
      return true;
    } catch {
      return false;
    }
  }
}

export const noNotifier: Notifier = { notify: () => false };

/** The desk's notice through a notifier: what is asked and where to answer. */
export class QuestionNotifications implements QuestionNotice {
  constructor(private readonly notifier: Notifier) {}

  notify(entry: DeskQuestion, answerWhere: readonly AnswerSurface[]): void {
    const { title, body } = noticeText(entry, answerWhere);
    this.notifier.notify(title, body);
  }
}
