/**
 * Reading a remote server's `WWW-Authenticate` answer (RFC 9110, 11.6.1; RFC 6750, 3; RFC 9728, 5.1):
 * which challenges it sent, and of a Bearer (or DPoP) challenge the parameters MCP authorization
 * uses: `resource_metadata` (where the protected resource metadata is), `scope` (what to ask for),
 * `error` (`invalid_token`, `insufficient_scope`) and `error_description`.
 *
 * Every value here comes from the remote server: it is parsed strictly, bounded in size, and never
 * trusted beyond what it is for (the metadata address is still checked before it is fetched).
 */

/** One challenge: its scheme (lower-cased) and its parameters (names lower-cased; a token68 is kept as `token68`). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** What MCP authorization reads of a Bearer challenge. */
export interface BearerChallenge {
  resourceMetadata?: string;
  scope?: string;
  error?: string;
  errorDescription?: string;
}

/** Longest header read; anything beyond is ignored (a real challenge is a few hundred bytes). */
export const MAX_CHALLENGE_LENGTH = 8192;
/** Longest parameter value kept. */
const MAX_VALUE_LENGTH = 2048;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*/;

/**
 * Every challenge in a header value, in order. Malformed parts end the parse: what was read before
 * them is returned, nothing after (a server that sends garbage gets no benefit of the doubt).
 */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  if (typeof header !== 'string') return [];
  let rest = header.slice(0, MAX_CHALLENGE_LENGTH);
  const out: Challenge[] = [];
  let current: Challenge | undefined;
  const skip = (pattern: RegExp): void => {
    rest = rest.replace(pattern, '');
  };
  skip(/^[\s,]+/);
  while (rest.length > 0) {
    const token = TOKEN.exec(rest)?.[0];
    if (!token) break;
    const after = rest.slice(token.length);
    const param = /^\s*=\s*/.exec(after);
    // `name=value` is a parameter of the current challenge; a token alone begins the next challenge.
    if (param && current) {
      rest = after.slice(param[0].length);
      const value = readValue();
      if (value === undefined) break;
      const name = token.toLowerCase();
      if (!(name in current.params)) current.params[name] = value.slice(0, MAX_VALUE_LENGTH);
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
      rest = after;
      skip(/^[ \t]+/);
      const t68 = TOKEN68.exec(rest)?.[0];
      // A token68 stands alone: it is followed by a comma or the end, never by `=value`.
      if (t68 && /^\s*(,|$)/.test(rest.slice(t68.length))) {
        current.params.token68 = t68;
        rest = rest.slice(t68.length);
      }
    }
    skip(/^[\s,]+/);
  }
  return out;

  function readValue(): string | undefined {
    if (rest.startsWith('"')) {
      let value = '';
      for (let i = 1; i < rest.length; i++) {
        const c = rest[i]!;
        if (c === '\\' && i + 1 < rest.length) {
          value += rest[++i];
          continue;
        }
        if (c === '"') {
          rest = rest.slice(i + 1);
          return value;
        }
        value += c;
      }
      return undefined;
    }
    const token = TOKEN.exec(rest)?.[0];
    if (!token) return undefined;
    rest = rest.slice(token.length);
    return token;
  }
}

/** The Bearer (or DPoP) challenge's MCP parameters, or undefined when the header has neither. */
export function bearerChallenge(header: string | null | undefined): BearerChallenge | undefined {
  const challenge = parseChallenges(header).find((c) => c.scheme === 'bearer' || c.scheme === 'dpop');
  if (!challenge) return undefined;
  const p = challenge.params;
  const out: BearerChallenge = {};
  if (p.resource_metadata) out.resourceMetadata = p.resource_metadata;
  if (p.scope !== undefined) out.scope = normalizeScope(p.scope);
  if (p.error) out.error = p.error;
  if (p.error_description) out.errorDescription = p.error_description;
  if (out.scope === '') delete out.scope;
  return out;
}

/** Scope tokens as RFC 6749 (3.3) allows them, deduplicated, in order; anything else dropped. */
export function normalizeScope(scope: string): string {
  const seen = new Set<string>();
  for (const token of scope.split(/[ \t]+/)) if (/^[\x21\x23-\x5b\x5d-\x7e]{1,200}$/.test(token)) seen.add(token);
  return [...seen].slice(0, 100).join(' ');
}
