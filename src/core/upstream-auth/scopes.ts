/**
 * Which scopes Gatehouse asks a remote server's authorization server for, following the MCP
 * authorization spec's scope selection: the scope the server's challenge names, else the scopes its
 * resource metadata lists, else none (the authorization server's default); plus what the config
 * adds. On a step-up (`403 insufficient_scope`), everything already granted is asked for again
 * together with what the challenge requires, so that the new token does not lose what the old one
 * could do.
 */
import { normalizeScope } from './challenge.js';

/** The union of scope strings, each token once, in first-seen order; undefined when empty. */
export function scopeUnion(...scopes: (string | readonly string[] | undefined)[]): string | undefined {
  const seen = new Set<string>();
  for (const scope of scopes) {
    if (scope === undefined) continue;
    const text = typeof scope === 'string' ? scope : scope.join(' ');
    for (const token of normalizeScope(text).split(' ')) if (token) seen.add(token);
  }
  return seen.size > 0 ? [...seen].join(' ') : undefined;
}

/** True when `wanted` names a scope `granted` lacks: a refresh cannot widen a grant (RFC 6749, 6), a new authorization is needed. */
export function needsMoreScope(wanted: string | undefined, granted: string | undefined): boolean {
  const have = new Set((granted ?? '').split(' ').filter(Boolean));
  return (wanted ?? '').split(' ').some((s) => s !== '' && !have.has(s));
}

export interface ScopeInput {
  /** The `scope` of the server's latest challenge (a 401, or a 403 insufficient_scope). */
  challenged?: string;
  /** `scopes_supported` of its protected resource metadata. */
  resourceScopes?: readonly string[];
  /** `oauth.scopes` of the config. */
  configured?: readonly string[];
  /** What the current token was granted (kept on a step-up). */
  granted?: string;
  /**
   * `scopes_supported` of the authorization server: `offline_access` is asked for when it lists it,
   * so that a refresh token is issued, and `openid` so that its answer says who the user is there
   * (an ID token's subject, for status and the audit log; access tokens are opaque to clients).
   */
  serverScopes?: readonly string[];
}

/** The `scope` of an authorization request, or undefined to ask for none. */
export function scopeToRequest(input: ScopeInput): string | undefined {
  const base = input.challenged ?? (input.resourceScopes && input.resourceScopes.length > 0 ? input.resourceScopes.join(' ') : undefined);
  const extras = ['openid', 'offline_access'].filter((s) => input.serverScopes?.includes(s));
  const wanted = scopeUnion(input.granted, base, input.configured);
  return wanted === undefined ? undefined : scopeUnion(wanted, extras);
}
