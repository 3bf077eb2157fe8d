/**
 * The main process's side of the IPC contract (src/common/console-api.ts), as pure functions so
 * that they are unit-tested without Electron (test/unit/ipc-contract.test.ts).
 *
 * Every message is checked twice before anything acts on it:
 *   1. the sender: it must come from the top frame of one of Gatehouse's own windows, showing the
 *      app's own origin (`app://console`), never from a subframe, a navigated-away page or another
 *      web contents;
 *   2. the payload: the console hub parses it against the control contract's schema (and refuses
 *      methods the console may not call) before the daemon's handler runs.
 */
import type { BridgeResult } from '../src/common/console-api.js';
import { CONSOLE_METHODS, ipcChannel } from '../src/common/console-channels.js';

/** The origin every Gatehouse page is served from (main/app-protocol.ts). */
export const APP_ORIGIN = 'app://console';

/** The parts of Electron's IpcMainInvokeEvent the checks read. */
export interface IpcEventLike {
  sender: { id: number };
  senderFrame: { url: string; parent: unknown } | null;
}

/** What a handler may answer with, when the message is refused before it reaches the daemon. */
export const FORBIDDEN: BridgeResult = { ok: false, error: { code: 'forbidden', message: "this window may not use Gatehouse's IPC channels" } };

/**
 * True when the message comes from the top frame of a known window whose page is the app's own.
 * `knownWindow` says whether a web contents id belongs to a window Gatehouse opened.
 */
export function isTrustedSender(event: IpcEventLike, knownWindow: (webContentsId: number) => boolean): boolean {
  const frame = event.senderFrame;
  if (!frame || frame.parent !== null) return false;
  if (!knownWindow(event.sender.id)) return false;
  let url: URL;
  try {
    url = new URL(frame.url);
  } catch {
    return false;
  }
  return `${url.protocol}//${url.host}` === APP_ORIGIN;
}

export interface HubLike {
  call(method: unknown, params: unknown): Promise<BridgeResult>;
}

export type IpcHandler = (event: IpcEventLike, payload: unknown) => Promise<BridgeResult>;

/** One handler per console method, keyed by its channel; main registers exactly these with `ipcMain.handle`. */
export function consoleIpcHandlers(
  hub: HubLike,
  knownWindow: (webContentsId: number) => boolean,
  onRefused?: (channel: string, event: IpcEventLike) => void,
): Map<string, IpcHandler> {
  const handlers = new Map<string, IpcHandler>();
  for (const method of CONSOLE_METHODS) {
    const channel = ipcChannel(method);
    handlers.set(channel, async (event, payload) => {
      if (!isTrustedSender(event, knownWindow)) {
        onRefused?.(channel, event);
        return FORBIDDEN;
      }
      return hub.call(method, payload);
    });
  }
  return handlers;
}
