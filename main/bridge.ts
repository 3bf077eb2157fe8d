/**
 * What the preload exposes on `window.gatehouse`: one function per declared console channel, the
 * event feed, the popup's two question channels and the app settings. Built from the channel
 * list in src/common, so nothing can be exposed that is not declared there; the page never gets
 * `ipcRenderer` itself, nor the IPC event objects.
 *
 * Pure (it takes an ipcRenderer-like port), so test/unit/ipc-contract.test.ts checks it without Electron.
 */
import {
  CONSOLE_METHODS,
  IPC_APP_SET_SETTINGS,
  IPC_APP_SETTINGS,
  IPC_EVENT_CHANNEL,
  IPC_HUMAN_ANSWER,
  IPC_HUMAN_INBOX,
  IPC_HUMAN_INBOX_ANSWER,
  IPC_HUMAN_QUESTION,
  ipcChannel,
} from '../src/common/console-channels.js';
import type { BridgeResult, ConsoleBridge, ConsoleEvent } from '../src/common/console-api.js';

export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

export function buildBridge(ipc: IpcRendererLike): ConsoleBridge {
  const invoke = (channel: string, payload?: unknown) => ipc.invoke(channel, payload ?? {}) as Promise<BridgeResult>;
  const methods = Object.fromEntries(CONSOLE_METHODS.map((method) => [method, (params?: unknown) => invoke(ipcChannel(method), params)]));
  return {
    ...(methods as Omit<ConsoleBridge, 'onEvent' | 'human' | 'app'>),
    onEvent(listener: (event: ConsoleEvent) => void) {
      // The page gets the event's data only, never Electron's event object (it carries `sender`).
      const wrapped = (_event: unknown, data: unknown) => listener(data as ConsoleEvent);
      ipc.on(IPC_EVENT_CHANNEL, wrapped);
      return () => void ipc.removeListener(IPC_EVENT_CHANNEL, wrapped);
    },
    human: {
      question: () => invoke(IPC_HUMAN_QUESTION),
      answer: (answer: unknown) => invoke(IPC_HUMAN_ANSWER, answer),
      inbox: () => invoke(IPC_HUMAN_INBOX),
      answerOne: (id: string, answer: unknown) => invoke(IPC_HUMAN_INBOX_ANSWER, { id, answer }),
    },
    app: {
      settings: () => invoke(IPC_APP_SETTINGS),
      setSettings: (settings: unknown) => invoke(IPC_APP_SET_SETTINGS, settings),
    },
  };
}

/** Every channel the bridge can send on (for tests and for main's registration check). */
export function declaredChannels(): string[] {
  return [
    ...CONSOLE_METHODS.map(ipcChannel),
    IPC_HUMAN_QUESTION,
    IPC_HUMAN_ANSWER,
    IPC_HUMAN_INBOX,
    IPC_HUMAN_INBOX_ANSWER,
    IPC_APP_SETTINGS,
    IPC_APP_SET_SETTINGS,
  ];
}
