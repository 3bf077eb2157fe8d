/**
 * The desktop app's window port (main/human-windows.ts, `QuestionWindows`) without Electron: each
 * window the surface opens is recorded, so a test can find it by title, answer as its page would,
 * close it as the person would (`onClosed`), and see whether the surface closed or focused it.
 */
import type { QuestionWindows } from '../../main/human-windows.js';

export interface RecordedWindow {
  /** The webContents id the IPC sender check sees for this window. */
  id: number;
  title: string;
  closed: boolean;
  /** How many times the surface brought it to the front. */
  focused: number;
  /** What the app calls when the person closes the window. */
  onClosed: () => void;
}

export function recordingWindows(firstId = 100): { port: QuestionWindows; opened: RecordedWindow[] } {
  let next = firstId;
  const opened: RecordedWindow[] = [];
  const port: QuestionWindows = {
    open(title, onClosed) {
      const w: RecordedWindow = { id: next++, title, closed: false, focused: 0, onClosed };
      opened.push(w);
      return {
        webContentsId: w.id,
        close: () => {
          if (w.closed) return;
          w.closed = true;
          onClosed();
        },
        focus: () => void w.focused++,
      };
    },
  };
  return { port, opened };
}
