/**
 * Shows the console's address and sign-in code to the person, on the daemon's terminal and nowhere
 * else: never in the structured log (which may be collected), never in a notification (whose text
 * is on the session bus and in a command line), never in a file. Without a terminal it shows
 * nothing and says so, and the caller voids the code.
 */
import type { TerminalIo } from '../human/terminal.js';

/** The console's announcer for `gatehouse daemon --ui`: true when the person's terminal showed it. */
export function terminalAnnouncer(terminal: TerminalIo | undefined): (url: string, code: string) => boolean {
  return (url, code) => {
    if (!terminal) return false;
    terminal.write(`\n*** The Gatehouse console: open ${url} and type the sign-in code ${code} (it works once)\n\n`);
    return true;
  };
}
