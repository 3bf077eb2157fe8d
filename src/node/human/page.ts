/**
 * The question page: a headless person's form for a question, on 127.0.0.1, for when the terminal's
 * one-key answers are not enough (picking a pairing's servers and tools) or a browser is handier.
 *
 * Its address names the question and holds no secret (`/q/<id>`); opening it asks for the code
 * that the daemon's terminal shows beside the address, and only that. So the secret never travels
 * in a command line (a browser's, `xdg-open`'s), a notification, the session bus, a file, the
 * clipboard or a log: it goes from the person's screen to their fingers to this process. The code
 * is kept as a hash; five wrong codes lock the page for that question (the terminal still
 * answers). A right code returns the form with a one-use token; the answer must carry it. No
 * cookie is set, so nothing of a question outlives the tab.
 *
 * Every request: a connection from another local user is refused (Linux names the peer), the Host
 * must be this listener's (DNS rebinding), a POST must not come from a foreign Origin (CSRF); the
 * page loads nothing, runs no script and cannot be framed.
 */
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AnswerResult, QuestionAnswer } from '../../common/questions.js';
import type { DeskQuestion } from '../../core/human/desk.js';
import type { Logger } from '../../core/ports.js';
import { readBodyLimited } from '../http-body.js';
import { fromThisUser } from '../identity/peer-user.js';
import { codeHash, newCode, sameCode } from './codes.js';
import { escapeHtml, sendFormPage } from './html.js';

/** Wrong codes a question's page takes before it refuses every further try. */
export const MAX_CODE_ATTEMPTS = 5;
const MAX_FORM_BYTES = 64 * 1024;

export interface QuestionPageOptions {
  logger: Logger;
  /** The port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Told when a question's page was locked by wrong codes (the terminal says so). */
  onLocked?(id: string): void;
  now?: () => number;
}

interface Entry {
  desk: DeskQuestion;
  /** Hands an answer to the desk; the page shows what came back. */
  respond(answer: QuestionAnswer): AnswerResult;
  codeHash: Buffer;
  wrong: number;
  formToken: Buffer | undefined;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export class QuestionPage {
  private server: Server | undefined;
  private port = 0;
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly options: QuestionPageOptions) {
    this.now = options.now ?? Date.now;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  async listen(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) this.page(res, 500, 'Something went wrong', '<p>Something went wrong; answer in the terminal.</p>');
        else res.destroy();
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: this.options.port ?? 0 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Opens a question's page: its address and the code to show beside it, on the terminal only. */
  open(desk: DeskQuestion, respond: (answer: QuestionAnswer) => AnswerResult): { url: string; code: string } | undefined {
    if (!this.server) return undefined;
    const code = newCode();
    this.entries.set(desk.id, { desk, respond, codeHash: codeHash(code), wrong: 0, formToken: undefined });
    return { url: `${this.origin}/q/${desk.id}`, code };
  }

  close(id: string): void {
    this.entries.delete(id);
  }

  async stop(): Promise<void> {
    this.entries.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private page(res: ServerResponse, status: number, title: string, html: string): void {
    sendFormPage(res, status, title, html);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Any local user can reach 127.0.0.1; only this user may even look.
    if (!fromThisUser(req.socket)) return this.page(res, 403, 'Forbidden', '<p>This page belongs to another user.</p>');
    const host = (req.headers.host ?? '').toLowerCase();
    if (host !== `127.0.0.1:${this.port}` && host !== `localhost:${this.port}`) return this.page(res, 403, 'Forbidden', '<p>Wrong host.</p>');
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', this.origin).pathname;
    } catch {
      return this.page(res, 400, 'Bad request', '');
    }
    const match = /^\/q\/([A-Za-z0-9_-]{16})$/.exec(pathname);
    const entry = match ? this.entries.get(match[1]!) : undefined;
    if (!entry) {
      return this.page(
        res,
        404,
        'Nothing to answer',
        '<p>This question is not waiting for an answer (it was answered, it expired, or the address is wrong).</p>',
      );
    }
    if (entry.wrong >= MAX_CODE_ATTEMPTS) return this.locked(res);
    if (req.method === 'GET' || req.method === 'HEAD') return this.page(res, 200, 'Gatehouse asks you something', this.codeForm(entry));
    if (req.method !== 'POST') return this.page(res, 405, 'Method not allowed', '');
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== this.origin && origin !== `http://localhost:${this.port}`) {
      return this.page(res, 403, 'Forbidden', '<p>Cross-site request refused.</p>');
    }
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return this.page(res, 415, 'Unsupported', '');
    const body = (await readBodyLimited(req, MAX_FORM_BYTES))?.toString('utf8');
    if (body === undefined) return this.page(res, 413, 'Too large', '');
    const form = new URLSearchParams(body);
    // The entry may have gone while the body arrived.
    if (this.entries.get(entry.desk.id) !== entry) return this.page(res, 404, 'Nothing to answer', '<p>This question was answered or expired meanwhile.</p>');
    if (form.has('code')) return this.checkCode(res, entry, form.get('code') ?? '');
    return this.takeAnswer(res, entry, form);
  }

  private checkCode(res: ServerResponse, entry: Entry, typed: string): void {
    if (!sameCode(typed, entry.codeHash)) {
      entry.wrong++;
      this.options.logger.log('warn', 'human.page_wrong_code', { id: entry.desk.id, attempts: entry.wrong });
      if (entry.wrong >= MAX_CODE_ATTEMPTS) {
        this.options.onLocked?.(entry.desk.id);
        return this.locked(res);
      }
      const left = MAX_CODE_ATTEMPTS - entry.wrong;
      return this.page(
        res,
        403,
        'That is not the code',
        `<p class="note bad">That is not the code. ${left} more ${left === 1 ? 'try' : 'tries'}.</p>${this.codeForm(entry)}`,
      );
    }
    const token = randomBytes(24).toString('base64url');
    entry.formToken = sha256(token);
    return this.page(res, 200, entry.desk.question.title, this.questionForm(entry, token));
  }

  private takeAnswer(res: ServerResponse, entry: Entry, form: URLSearchParams): void {
    const token = form.get('form') ?? '';
    const got = sha256(token);
    if (!entry.formToken || got.length !== entry.formToken.length || !timingSafeEqual(got, entry.formToken)) {
      return this.page(res, 403, 'Type the code first', `<p class="note bad">This form is stale or was not opened with the code.</p>${this.codeForm(entry)}`);
    }
    const answer = answerFrom(entry, form);
    if ('error' in answer)
      return this.page(res, 400, 'Not answered yet', `<p class="note bad">${escapeHtml(answer.error)}</p>${this.questionForm(entry, token)}`);
    const result = entry.respond(answer.answer);
    if (!result.ok) {
      if (result.code === 'invalid_answer')
        return this.page(res, 400, 'Not answered yet', `<p class="note bad">${escapeHtml(result.message)}</p>${this.questionForm(entry, token)}`);
      return this.page(res, 409, 'Nothing to answer', `<p>${escapeHtml(result.message)}</p>`);
    }
    entry.formToken = undefined;
    const approved = answer.answer.decision === 'approve';
    return this.page(
      res,
      200,
      approved ? 'Approved' : 'Declined',
      `<p class="note ${approved ? 'ok' : ''}">Your answer was recorded. You can close this tab.</p>`,
    );
  }

  private locked(res: ServerResponse): void {
    return this.page(
      res,
      403,
      'Locked',
      '<p class="note bad">Too many wrong codes were typed for this question, so this page no longer takes answers for it. ' +
        'If that was not you, something on this computer is guessing: answer in the terminal where Gatehouse runs (decline is safest).</p>',
    );
  }

  private codeForm(entry: Entry): string {
    return (
      `<p>Type the code shown beside this address in the terminal where Gatehouse runs.</p>` +
      `<form method="post" action="/q/${entry.desk.id}"><p><label>Code <input type="text" name="code" autocomplete="off" autocapitalize="characters" ` +
      `spellcheck="false" maxlength="16" required autofocus></label></p><div class="actions"><button class="primary">Show the question</button></div></form>` +
      this.countdown(entry)
    );
  }

  private questionForm(entry: Entry, token: string): string {
    const q = entry.desk.question;
    const facts = `<dl>${q.facts.map((f) => `<dt>${escapeHtml(f.label)}</dt><dd>${escapeHtml(f.value)}</dd>`).join('')}</dl>`;
    const code = q.code ? `<p>Check that the client shows the same code: <span class="code">${escapeHtml(q.code)}</span>. If it does not, decline.</p>` : '';
    let choices = '';
    if (q.scope) {
      const servers = q.scope.servers
        .map(
          (s) =>
            `<li><label><input type="checkbox" name="server" value="${escapeHtml(s.name)}"> all of <b>${escapeHtml(s.name)}</b></label>` +
            (s.tools.length > 0
              ? `<ul>${s.tools.map((t) => `<li><label><input type="checkbox" name="tool" value="${escapeHtml(`${s.name}__${t}`)}"> ${escapeHtml(t)}</label></li>`).join('')}</ul>`
              : '') +
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
      const radios = q.choices
        .map(
          (c, i) => `<p><label><input type="radio" name="choice" value="${escapeHtml(c.id)}"${i === 0 ? ' checked' : ''}> ${escapeHtml(c.label)}</label></p>`,
        )
        .join('');
      choices = `<fieldset><legend>Answer</legend>${radios}</fieldset>`;
    }
    return (
      `${facts}${code}<form method="post" action="/q/${entry.desk.id}"><input type="hidden" name="form" value="${token}">${choices}` +
      `<div class="actions"><button class="primary" name="decision" value="approve">Approve</button>` +
      `<button name="decision" value="decline">Decline</button></div></form>${this.countdown(entry)}`
    );
  }

  /** A countdown without script: the bar empties over the time left when the page was drawn. */
  private countdown(entry: Entry): string {
    const seconds = Math.max(0, Math.round((entry.desk.deadline - this.now()) / 1000));
    return (
      `<p class="muted">Unanswered, this is refused at ${escapeHtml(new Date(entry.desk.deadline).toLocaleTimeString('en-GB', { hour12: false }))}.</p>` +
      `<div class="left" role="img" aria-label="time left until the deadline" style="animation-duration:${seconds}s"></div>`
    );
  }
}

/** The answer a submitted form gives, in the shape every surface submits. */
function answerFrom(entry: Entry, form: URLSearchParams): { answer: QuestionAnswer } | { error: string } {
  const decision = form.get('decision');
  if (decision === 'decline') return { answer: { decision: 'decline' } };
  if (decision !== 'approve') return { error: 'choose Approve or Decline' };
  const q = entry.desk.question;
  if (q.scope) {
    const kind = form.get('scope');
    if (kind !== 'all' && kind !== 'read-only' && kind !== 'listed') return { error: 'choose what the client may do' };
    const expiryDays = Number(form.get('expiry') ?? q.scope.expiryDays[0]);
    if (!Number.isInteger(expiryDays)) return { error: 'choose one of the offered lifetimes' };
    return {
      answer: { decision: 'approve', scope: { kind, servers: [...new Set(form.getAll('server'))], tools: [...new Set(form.getAll('tool'))], expiryDays } },
    };
  }
  const choice = form.get('choice');
  return { answer: { decision: 'approve', ...(choice !== null ? { choice } : {}) } };
}
