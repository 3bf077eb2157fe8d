/**
 * Reason codes for denials and the JSON-RPC error codes Gatehouse answers with.
 * Denials are values (see `Outcome` in core/chain); these codes are stable: audit records,
 * the UI and admins' scripts match on them.
 */

export const DENY_CODES = [
  'unknown_tool', // also the answer for a hidden tool: no enumeration
  'unknown_resource',
  'unknown_prompt',
  'server_unavailable',
  'unauthenticated',
  'policy_denied',
  'approval_required',
  'rate_limited',
  'quota_exceeded',
  'secret_missing',
  'sign_in_required', // a remote server needs the user to sign in (or to grant more scopes): `gatehouse servers login NAME`
] as const;
export type DenyCode = (typeof DENY_CODES)[number];

export const STAGES = ['audit', 'identity', 'policy', 'quota', 'approval', 'secrets', 'upstream'] as const;
export type Stage = (typeof STAGES)[number];

/** JSON-RPC 2.0 and MCP error codes used on the downstream wire. */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Implementation-defined server error range (-32000 to -32099). */
  Unauthorized: -32001,
  ServerUnavailable: -32010,
  Denied: -32003,
  RequestTooLarge: -32004,
} as const;

/** A failure with a message meant for a person: the CLI prints `message` on one line. */
export class GatehouseError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatehouseError';
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * A remote server needs the user to sign in (or to grant more scopes). Recognised by its code, not
 * its class: errors are copied on the way (scrubbed of secrets) and keep only their code.
 */
export function isSignInRequired(error: unknown): error is Error & { code: 'sign_in_required' } {
  return error instanceof Error && (error as { code?: unknown }).code === 'sign_in_required';
}
