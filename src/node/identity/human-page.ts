/**
 * The headless adapter of the human channel: a page on 127.0.0.1 behind a one-time secret.
 *
 * Each question gets its own page, `/q/<id>`, and its own secret key, held in this process's
 * memory only. The address with the key is announced on the daemon's terminal (when stderr is a
 * terminal) and in a desktop notification (when `notify-send` is installed); the structured log
 * names the question but never carries the key. Opening the address once trades the key for a
 * cookie bound to that page (HttpOnly, SameSite=Strict) and redirects to the address without it,
 * so the key works once: a second opening is refused, which also shows that someone else opened it.
 * Answers are POSTs that need the cookie, a per-page form token, a loopback Host and no foreign
 * Origin; the page forbids framing and loads nothing from anywhere. On Linux, a connection from
 * another local user is refused outright (the kernel's socket table names the peer's owner).
 *
 * This server listens on its own port: nothing of it is reachable through the MCP endpoints, and
 * nothing an agent can reach (MCP, the control socket, the command line) can answer a question.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HumanAnswer, HumanChannel, HumanQuestion, PairingScopeAnswer } from '../../core/identity/human-channel.js';
import type { Logger } from '../../core/ports.js';
import type { Notifier } from './notify.js';
import { readBodyLimited } from '../http-body.js';
import { fromThisUser } from './peer-user.js';

/** What a person is shown to reach a question: the address with its one-time key. */
export interface Announcement {
  id: string;
  title: string;
  url: string;
  code?: string;
  deadline: number;
}

export interface HumanPageOptions {
  logger: Logger;
  notifier: Notifier;
  /** Where the daemon's terminal is: a line for a person (default: stderr, only when it is a TTY). */
  terminal?: ((line: string) => void) | undefined;
  /** More places to announce a question (tests; the desktop app's tray). */
  announce?: (announcement: Announcement) => void;
  now?: () => number;
}

interface Pending {
  id: string;
  question: HumanQuestion;
  keyHash: Buffer;
  deadline: number;
  redeemed: boolean;
  cookieHash: Buffer | undefined;
  formToken: string;
  resolve: (answer: HumanAnswer) => void;
}

const MAX_FORM_BYTES = 64 * 1024;

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function sameSecret(value: string, hash: Buffer): boolean {
  const got = sha256(value);
  return got.length === hash.length && timingSafeEqual(got, hash);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function defaultTerminal(): ((line: string) => void) | undefined {
  return process.stderr.isTTY ? (line) => process.stderr.write(`${line}\n`) : undefined;
}

export class HumanPage implements HumanChannel {
  private server: Server | undefined;
  private starting: Promise<void> | undefined;
  private port = 0;
  private questions = new Map<string, Pending>();
  private readonly now: () => number;

  constructor(private readonly options: HumanPageOptions) {
    this.now = options.now ?? Date.now;
  }

  pending(): number {
    return this.questions.size;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async ask(question: HumanQuestion, deadline: number, signal?: AbortSignal, onAsked?: () => void): Promise<HumanAnswer> {
    if (signal?.aborted) return { kind: 'expired' };
    await this.listen();
    const id = randomBytes(12).toString('base64url');
    const key = randomBytes(32).toString('base64url');
    const url = `${this.origin}/q/${id}?k=${key}`;
    const answer = new Promise<HumanAnswer>((resolve) => {
      const pending: Pending = { id, question, keyHash: sha256(key), deadline, redeemed: false, cookieHash: undefined, formToken: randomBytes(24).toString('base64url'), resolve };
      this.questions.set(id, pending);
    });
    const settle = (result: HumanAnswer): void => {
      const pending = this.questions.get(id);
      if (!pending) return;
      this.questions.delete(id);
      pending.resolve(result);
    };
    const timer = setTimeout(() => settle({ kind: 'expired' }), Math.max(0, deadline - this.now()));
    const onAbort = (): void => settle({ kind: 'expired' });
    signal?.addEventListener('abort', onAbort, { once: true });

    // Announce: the log names the question but not its key; the key goes only to a person's screens.
    const reached: string[] = [];
    const body = `${question.facts.map((f) => `${f.label}: ${f.value}`).join('\n')}${question.code ? `\nCode: ${question.code}` : ''}\nAnswer at ${url}`;
    // A notification may be kept by the desktop's notification history: long or multi-line values
    // (a call's arguments) stay on the page behind the key.
    const brief = `${question.facts
      .filter((f) => !f.value.includes('\n') && f.value.length <= 200)
      .map((f) => `${f.label}: ${f.value}`)
      .join('\n')}${question.code ? `\nCode: ${question.code}` : ''}\nAnswer at ${url}`;
    const terminal = 'terminal' in this.options ? this.options.terminal : defaultTerminal();
    if (terminal) {
      terminal(`\n*** Gatehouse asks: ${question.title}\n${body.split('\n').map((l) => `    ${l}`).join('\n')}\n`);
      reached.push('terminal');
    }
    if (this.options.notifier.notify(`Gatehouse: ${question.title}`, brief)) reached.push('desktop notification');
    if (this.options.announce) {
      this.options.announce({ id, title: question.title, url, deadline, ...(question.code ? { code: question.code } : {}) });
      reached.push('announcer');
    }
    this.options.logger.log('info', 'human.question', {
      id,
      kind: question.kind,
      title: question.title,
      page: `${this.origin}/q/${id}`,
      deadline: new Date(deadline).toISOString(),
      announcedOn: reached,
    });
    if (reached.length > 0) onAsked?.();
    else {
      settle({
        kind: 'unavailable',
        reason: 'no way to reach a person: run `gatehouse daemon` in a terminal, or install notify-send (Debian: libnotify-bin) for desktop notifications',
      });
    }
    try {
      return await answer;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private listen(): Promise<void> {
    this.starting ??= new Promise<void>((resolve, reject) => {
      const server = createServer((req, res) => {
        this.handle(req, res).catch(() => {
          if (!res.headersSent) this.page(res, 500, 'Error', '<p>Something went wrong.</p>');
          else res.destroy();
        });
      });
      server.headersTimeout = 10_000;
      server.requestTimeout = 30_000;
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => {
        this.port = (server.address() as AddressInfo).port;
        this.server = server;
        resolve();
      });
    });
    return this.starting;
  }

  async close(): Promise<void> {
    for (const pending of [...this.questions.values()]) {
      this.questions.delete(pending.id);
      pending.resolve({ kind: 'expired' });
    }
    const server = this.server;
    this.server = undefined;
    this.starting = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private page(res: ServerResponse, status: number, title: string, html: string, extraHeaders: Record<string, string> = {}): void {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      // The page's own URL holds no secret (the key was traded for a cookie by a redirect), and a
      // browser's form POST carries `Origin: null` under no-referrer, which the origin check refuses.
      'referrer-policy': 'same-origin',
      'cache-control': 'no-store',
      ...extraHeaders,
    });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>body{font:15px system-ui,sans-serif;max-width:42em;margin:2em auto;padding:0 1em}dt{font-weight:600}dd{white-space:pre-wrap;font-family:ui-monospace,monospace;margin:0 0 .6em 1em}code{font-size:1.3em}fieldset{margin:1em 0}.left{height:6px;background:#c33;transform-origin:left;animation:left linear forwards}@keyframes left{from{transform:scaleX(1)}to{transform:scaleX(0)}}@media (prefers-reduced-motion:reduce){.left{animation:none}}</style></head><body><h1>${escapeHtml(title)}</h1>${html}</body></html>`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Any local user can reach 127.0.0.1; only this user may answer (the one-time key alone is not enough).
    if (!fromThisUser(req.socket)) return this.page(res, 403, 'Forbidden', '<p>This page belongs to another user.</p>');
    const host = (req.headers.host ?? '').toLowerCase();
    if (host !== `127.0.0.1:${this.port}` && host !== `localhost:${this.port}`) return this.page(res, 403, 'Forbidden', '<p>Wrong host.</p>');
    const url = new URL(req.url ?? '/', this.origin);
    const match = /^\/q\/([A-Za-z0-9_-]{16})$/.exec(url.pathname);
    const pending = match ? this.questions.get(match[1]!) : undefined;
    if (!match || !pending) return this.page(res, 404, 'Nothing to answer', '<p>This question is not waiting for an answer (it was answered, it expired, or the link is wrong).</p>');
    if (req.method === 'GET') {
      const key = url.searchParams.get('k');
      if (key !== null) {
        if (!sameSecret(key, pending.keyHash)) return this.page(res, 403, 'Forbidden', '<p>This link is not valid.</p>');
        if (pending.redeemed) {
          return this.page(res, 403, 'Link already used', '<p>This one-time link was already opened. If that was not you, something else on this computer read it: leave the question unanswered and it will be refused at its deadline.</p>');
        }
        pending.redeemed = true;
        const cookie = randomBytes(32).toString('base64url');
        pending.cookieHash = sha256(cookie);
        res.writeHead(303, {
          location: `/q/${pending.id}`,
          'set-cookie': `gh_q=${cookie}; HttpOnly; SameSite=Strict; Path=/q/${pending.id}; Max-Age=3600`,
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        });
        res.end();
        return;
      }
      if (!this.hasCookie(req, pending)) return this.page(res, 403, 'Forbidden', '<p>Open the link from the notification or the daemon\'s terminal.</p>');
      return this.page(res, 200, pending.question.title, this.form(pending));
    }
    if (req.method !== 'POST') return this.page(res, 405, 'Method not allowed', '');
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== this.origin && origin !== `http://localhost:${this.port}`) return this.page(res, 403, 'Forbidden', '<p>Cross-site request refused.</p>');
    if (!this.hasCookie(req, pending)) return this.page(res, 403, 'Forbidden', '<p>Open the link from the notification or the daemon\'s terminal.</p>');
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return this.page(res, 415, 'Unsupported', '');
    const body = (await readBodyLimited(req, MAX_FORM_BYTES))?.toString('utf8');
    if (body === undefined) return this.page(res, 413, 'Too large', '');
    const form = new URLSearchParams(body);
    const token = form.get('form') ?? '';
    const expected = Buffer.from(pending.formToken);
    const got = Buffer.from(token);
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return this.page(res, 403, 'Forbidden', '<p>The form is stale; reload the page.</p>');
    const parsed = this.answerFrom(pending.question, form);
    if ('error' in parsed) return this.page(res, 400, 'Not answered', `<p>${escapeHtml(parsed.error)}</p><p><a href="/q/${pending.id}">Back</a></p>`);
    this.questions.delete(pending.id);
    pending.resolve(parsed.answer);
    return this.page(res, 200, parsed.answer.kind === 'approved' ? 'Approved' : 'Declined', '<p>Your answer was recorded. You can close this tab.</p>');
  }

  private hasCookie(req: IncomingMessage, pending: Pending): boolean {
    if (!pending.cookieHash) return false;
    const cookies = (req.headers.cookie ?? '').split(';').map((c) => c.trim());
    return cookies.some((c) => c.startsWith('gh_q=') && sameSecret(c.slice(5), pending.cookieHash!));
  }

  private form(pending: Pending): string {
    const q = pending.question;
    const facts = `<dl>${q.facts.map((f) => `<dt>${escapeHtml(f.label)}</dt><dd>${escapeHtml(f.value)}</dd>`).join('')}</dl>`;
    const code = q.code ? `<p>Check that the client shows the same code: <code>${escapeHtml(q.code)}</code>. If it does not, decline.</p>` : '';
    let choices = '';
    if (q.scope) {
      const servers = q.scope.servers
        .map(
          (s) =>
            `<li><label><input type="checkbox" name="server" value="${escapeHtml(s.name)}"> all of <b>${escapeHtml(s.name)}</b></label>` +
            (s.tools.length > 0 ? `<ul>${s.tools.map((t) => `<li><label><input type="checkbox" name="tool" value="${escapeHtml(`${s.name}__${t}`)}"> ${escapeHtml(t)}</label></li>`).join('')}</ul>` : '') +
            '</li>',
        )
        .join('');
      const expiry = q.scope.expiryDays.map((d, i) => `<option value="${d}"${i === 0 ? ' selected' : ''}>${d} day${d === 1 ? '' : 's'}</option>`).join('');
      choices =
        `<fieldset><legend>What may this client do?</legend>` +
        `<p><label><input type="radio" name="scope" value="all"> All my tools</label></p>` +
        `<p><label><input type="radio" name="scope" value="read-only" checked> Read-only tools</label></p>` +
        `<p><label><input type="radio" name="scope" value="listed"> Only what I tick below</label></p><ul>${servers}</ul></fieldset>` +
        `<p><label>Credential valid for <select name="expiry">${expiry}</select></label></p>`;
    } else if (q.choices) {
      choices = `<fieldset><legend>Answer</legend>${q.choices.map((c, i) => `<p><label><input type="radio" name="choice" value="${escapeHtml(c.id)}"${i === 0 ? ' checked' : ''}> ${escapeHtml(c.label)}</label></p>`).join('')}</fieldset>`;
    }
    return (
      `${facts}${code}<form method="post" action="/q/${pending.id}"><input type="hidden" name="form" value="${pending.formToken}">${choices}` +
      `<p><button name="decision" value="approve">Approve</button> <button name="decision" value="decline">Decline</button></p></form>` +
      `<p>Unanswered, this is refused at ${escapeHtml(new Date(pending.deadline).toLocaleString())}.</p>` +
      // A countdown without script: the bar empties over the time left when the page was drawn.
      `<div class="left" role="img" aria-label="time left until the deadline" style="animation-duration:${Math.max(0, Math.round((pending.deadline - this.now()) / 1000))}s"></div>`
    );
  }

  /** The answer a submitted form gives, checked against what the question offered. */
  private answerFrom(question: HumanQuestion, form: URLSearchParams): { answer: HumanAnswer } | { error: string } {
    const decision = form.get('decision');
    if (decision === 'decline') return { answer: { kind: 'declined' } };
    if (decision !== 'approve') return { error: 'choose Approve or Decline' };
    if (question.scope) {
      const kind = form.get('scope');
      if (kind !== 'all' && kind !== 'read-only' && kind !== 'listed') return { error: 'choose what the client may do' };
      const offeredServers = new Set(question.scope.servers.map((s) => s.name));
      const offeredTools = new Set(question.scope.servers.flatMap((s) => s.tools.map((t) => `${s.name}__${t}`)));
      const servers = [...new Set(form.getAll('server'))];
      const tools = [...new Set(form.getAll('tool'))];
      if (servers.some((s) => !offeredServers.has(s)) || tools.some((t) => !offeredTools.has(t))) return { error: 'the form names a server or tool that was not offered' };
      if (kind === 'listed' && servers.length === 0 && tools.length === 0) return { error: 'tick at least one server or tool, or choose another scope' };
      const expiryDays = Number(form.get('expiry') ?? question.scope.expiryDays[0]);
      if (!question.scope.expiryDays.includes(expiryDays)) return { error: 'choose one of the offered lifetimes' };
      const scope: PairingScopeAnswer = { kind, servers: kind === 'listed' ? servers.sort() : [], tools: kind === 'listed' ? tools.sort() : [], expiryDays };
      return { answer: { kind: 'approved', scope } };
    }
    if (question.choices) {
      const choice = form.get('choice');
      if (!question.choices.some((c) => c.id === choice)) return { error: 'choose one of the answers' };
      return { answer: { kind: 'approved', choice: choice! } };
    }
    return { answer: { kind: 'approved' } };
  }
}

