/**
 * The console's channels: which control methods the console may call, and the names of the
 * Electron IPC channels that carry them. No runtime dependency (the sandboxed preload bundles this
 * module alone); the results and events are typed in console-api.ts, the requests in control-api.ts.
 */
import type { ControlMethod } from './control-api.js';

/**
 * The control methods the console may call, and so the only IPC channels the preload exposes and
 * the only methods the headless console server forwards. Everything else of the control API (the
 * CLI's notifications to the daemon, `clients.pair`) stays off the console's wire.
 */
export const CONSOLE_METHODS = [
  'status',
  'servers.list',
  'servers.tools',
  'servers.start',
  'servers.stop',
  'servers.restart',
  'servers.add',
  'servers.update',
  'servers.remove',
  'servers.login',
  'servers.logout',
  'logs',
  'config.reload',
  'tools.list',
  'audit.query',
  'audit.timeline',
  'audit.verify',
  'policy.status',
  'clients.list',
  'clients.revoke',
  'clients.setView',
  'tools.cost',
  'clients.apps',
  'clients.setup',
  'clients.import',
  'secrets.list',
  'secrets.set',
  'secrets.delete',
  'identity.status',
  'identity.login',
  'identity.logout',
  'questions.list',
  'catalog.list',
  'catalog.show',
  'servers.install',
  'catalog.shadows',
] as const satisfies readonly ControlMethod[];
export type ConsoleMethod = (typeof CONSOLE_METHODS)[number];

export function isConsoleMethod(method: unknown): method is ConsoleMethod {
  return typeof method === 'string' && (CONSOLE_METHODS as readonly string[]).includes(method);
}

// Electron IPC

/** Every IPC channel Gatehouse declares starts with this. */
export const IPC_PREFIX = 'gatehouse:';
/** The channel of one control method: `gatehouse:servers.restart`. */
export function ipcChannel(method: ConsoleMethod): string {
  return `${IPC_PREFIX}${method}`;
}
/** Main → renderer: console events (`ConsoleEvent`). */
export const IPC_EVENT_CHANNEL = `${IPC_PREFIX}event`;
/** A question window of the human channel: read its own question, send its answer. */
export const IPC_HUMAN_QUESTION = `${IPC_PREFIX}human.question`;
export const IPC_HUMAN_ANSWER = `${IPC_PREFIX}human.answer`;
/** The console window's inbox of the human channel: what waits, and an answer to one of them. Desktop app only. */
export const IPC_HUMAN_INBOX = `${IPC_PREFIX}human.inbox`;
export const IPC_HUMAN_INBOX_ANSWER = `${IPC_PREFIX}human.inboxAnswer`;
/** The desktop app's own settings (start at login). */
export const IPC_APP_SETTINGS = `${IPC_PREFIX}app.settings`;
export const IPC_APP_SET_SETTINGS = `${IPC_PREFIX}app.setSettings`;
