/**
 * `gatehouse://` links: another program (a notification of the organisation's, a chat message, a
 * browser) asks the app to show something. A link can only point: it opens a screen of the console,
 * or brings a waiting question's own window forward. It never carries a secret and never answers
 * anything, so a link an agent or a web page makes up can do no more than a click on the tray could.
 *
 *   gatehouse://open/<screen>           overview, approvals, servers, tools, audit, secrets, identity, policy, clients
 *   gatehouse://open/servers/<server>   one server's page
 *   gatehouse://question/<id>           the window of a question that waits (else the Approvals inbox)
 *
 * Anything else (a query string, a fragment, credentials, a port, another host, extra segments,
 * percent-escapes, more than 200 characters) is refused whole. Pure: unit-tested.
 */

export const DEEP_LINK_SCHEME = 'gatehouse';

const SCREENS = new Set(['overview', 'approvals', 'servers', 'tools', 'audit', 'secrets', 'identity', 'policy', 'clients']);
const SERVER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** The desk's question ids: 12 random bytes, base64url. */
const QUESTION_ID = /^[A-Za-z0-9_-]{16}$/;
const MAX_LENGTH = 200;

export type DeepLink = { kind: 'screen'; route: string } | { kind: 'question'; id: string };
export type DeepLinkResult = { ok: true; link: DeepLink } | { ok: false; reason: string };

const refuse = (reason: string): DeepLinkResult => ({ ok: false, reason });

export function parseDeepLink(input: string): DeepLinkResult {
  if (typeof input !== 'string' || input.length > MAX_LENGTH) return refuse('not a gatehouse:// link of at most 200 characters');
  if (!input.startsWith(`${DEEP_LINK_SCHEME}://`)) return refuse('not a gatehouse:// link');
  if (/[?#%@\s\\]/.test(input)) return refuse('a gatehouse:// link has no query, fragment, escapes or credentials');
  const [host, ...segments] = input
    .slice(DEEP_LINK_SCHEME.length + 3)
    .replace(/\/$/, '')
    .split('/');
  if (host === 'open') {
    const [screen, detail, ...rest] = segments;
    if (rest.length > 0 || screen === undefined || !SCREENS.has(screen)) return refuse("gatehouse://open/ names one of the console's screens");
    if (detail === undefined) return { ok: true, link: { kind: 'screen', route: screen } };
    if (screen === 'servers' && SERVER_NAME.test(detail)) return { ok: true, link: { kind: 'screen', route: `servers/${detail}` } };
    return refuse('only gatehouse://open/servers/<server> names something within a screen');
  }
  if (host === 'question') {
    const [id, ...rest] = segments;
    if (rest.length > 0 || id === undefined || !QUESTION_ID.test(id)) return refuse('gatehouse://question/ names one question by its id');
    return { ok: true, link: { kind: 'question', id } };
  }
  return refuse('a gatehouse:// link opens a screen (gatehouse://open/…) or a question (gatehouse://question/…)');
}

/** The link a second launch was started with (Windows and Linux pass it on the command line), if any. */
export function deepLinkInArgv(argv: readonly string[]): string | undefined {
  return argv.find((arg) => arg.startsWith(`${DEEP_LINK_SCHEME}://`));
}

/** What the app does with a link: show a screen, or bring a question's window forward. It has no way to answer. */
export interface DeepLinkTargets {
  showScreen(route: string): void;
  /** Brings the question's window to the front; false when it no longer waits. */
  focusQuestion(id: string): boolean;
  refused(reason: string): void;
}

export function followDeepLink(url: string, targets: DeepLinkTargets): void {
  const parsed = parseDeepLink(url);
  if (!parsed.ok) return targets.refused(parsed.reason);
  if (parsed.link.kind === 'screen') return targets.showScreen(parsed.link.route);
  if (!targets.focusQuestion(parsed.link.id)) targets.showScreen('approvals');
}
