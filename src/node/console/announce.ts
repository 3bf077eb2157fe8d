/**
 * Shows the console's one-time login address to the person, and nowhere else: on the daemon's
 * terminal when stderr is one, else on the process's controlling terminal (/dev/tty), else in a
 * desktop notification. Never in the structured log (which may be collected) and never when
 * stderr is redirected to a file or a pipe (which may be stored): then the daemon says where the
 * link could not be shown and how to get one.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { DesktopNotifier, type Notifier } from '../identity/notify.js';

export interface AnnounceTargets {
  /** stderr, when it is a terminal. */
  stderrIsTty: boolean;
  /** Writes a line to the controlling terminal; false when there is none. */
  tty: (text: string) => boolean;
  notifier: Notifier;
}

function writeTty(text: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync('/dev/tty', 'w');
    writeSync(fd, text);
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The console's announcer for `gatehouse daemon --ui`; `err` writes to stderr. */
export function terminalAnnouncer(env: NodeJS.ProcessEnv, err: (text: string) => void, targets: Partial<AnnounceTargets> = {}): (url: string) => void {
  const t: AnnounceTargets = {
    stderrIsTty: targets.stderrIsTty ?? process.stderr.isTTY === true,
    tty: targets.tty ?? writeTty,
    notifier: targets.notifier ?? new DesktopNotifier(env),
  };
  return (url) => {
    const text = `\n*** The Gatehouse console: open this one-time link in your browser (it works once):\n    ${url}\n\n`;
    if (t.stderrIsTty) return err(text);
    if (t.tty(text)) return;
    if (t.notifier.notify('Gatehouse console', `Open this one-time link to sign in to the console:\n${url}`)) {
      err('The console\'s one-time login link was sent as a desktop notification (stderr is not a terminal, so it is not printed).\n');
      return;
    }
    err('The console is running, but its one-time login link can only be shown on a terminal or a desktop notification: run `gatehouse daemon --ui` in a terminal.\n');
  };
}
