/**
 * The control API: what the CLI (and, later, the console) may ask the running daemon. Declared
 * once, here, with schemas; the daemon parses every request against them.
 *
 * Wire: a user-only unix socket (named pipe on Windows), one JSON object per line each way:
 * `{ "id": 1, "method": "status", "params": {} }` → `{ "id": 1, "result": ... }` or
 * `{ "id": 1, "error": { "code": "...", "message": "..." } }`.
 */
import { z } from 'zod';
import { SERVER_NAME_PATTERN } from './names.js';

const serverName = z.string().regex(SERVER_NAME_PATTERN, 'not a valid server name');

export const ControlRequests = {
  status: z.object({}).strict(),
  'servers.restart': z.object({ name: serverName }).strict(),
  'servers.start': z.object({ name: serverName }).strict(),
  'servers.stop': z.object({ name: serverName }).strict(),
  logs: z.object({ name: serverName, lines: z.number().int().min(1).max(100_000).default(200) }).strict(),
  'config.reload': z.object({}).strict(),
  /** The client registry file changed (a client was added or revoked); revoked clients lose access at once. */
  'clients.reload': z.object({}).strict(),
} as const;
export type ControlMethod = keyof typeof ControlRequests;
export type ControlParams<M extends ControlMethod> = z.input<(typeof ControlRequests)[M]>;

export const ControlEnvelopeSchema = z
  .object({
    id: z.union([z.number().int(), z.string().max(64)]),
    method: z.string().max(64),
    params: z.unknown().optional(),
  })
  .strict();

export interface ControlError {
  code: string;
  message: string;
}

export type ControlResponse = { id: number | string; result: unknown } | { id: number | string | null; error: ControlError };

/** Largest control request line, in bytes. */
export const MAX_CONTROL_LINE = 64 * 1024;

export function isControlMethod(method: string): method is ControlMethod {
  return Object.prototype.hasOwnProperty.call(ControlRequests, method);
}

/** What `config.reload` reports. */
export interface ReloadReport {
  ok: boolean;
  error?: string;
  added: string[];
  removed: string[];
  restarted: string[];
  unchanged: string[];
}
