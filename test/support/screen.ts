/**
 * The person at the screen, for tests: what the daemon's terminal shows them (a `TerminalIo` that
 * keeps every line written to it, and types lines as the person would), and the person's browser
 * on the question page (open the address shown, type the code shown beside it, read the question,
 * post the form as a browser does).
 *
 * A test gets a question's code only by reading this screen, exactly as the person does; nothing
 * hands it over otherwise.
 */
import type { TerminalIo } from '../../src/node/human/terminal.js';

export interface ShownQuestion {
  number: number;
  title: string;
  /** The question page's address (no secret in it). */
  url?: string;
  /** The code shown beside the page's address, which opens the page. */
  pageCode?: string;
  /** The pairing code the asking client also shows (pairing questions). */
  clientCode?: string;
  /** The whole block as the terminal showed it. */
  text: string;
}

export class Screen implements TerminalIo {
  text = '';
  private readonly listeners = new Set<(line: string) => void>();
  private taken = 0;

  constructor(private readonly readsInput = true) {}

  write(text: string): void {
    this.text += text;
  }

  get onLine(): TerminalIo['onLine'] {
    if (!this.readsInput) return undefined;
    return (listener) => {
      this.listeners.add(listener);
      return () => this.listeners.delete(listener);
    };
  }

  /** The person types a line and presses Enter. */
  type(line: string): void {
    for (const listener of [...this.listeners]) listener(line);
  }

  /** Every question the terminal has shown, oldest first. */
  questions(): ShownQuestion[] {
    const out: ShownQuestion[] = [];
    for (const match of this.text.matchAll(/Gatehouse asks \[(\d+)\]: ([^\n]*)\n([\s\S]*?)\n─{72}/g)) {
      const page = /open (http:\/\/127\.0\.0\.1:\d+\/q\/[A-Za-z0-9_-]+) and type the code ([0-9A-Z]{4}-[0-9A-Z]{4})/.exec(match[3]!);
      const client = /Code the client shows: (\S+)/.exec(match[3]!);
      out.push({
        number: Number(match[1]),
        title: match[2]!,
        ...(page ? { url: page[1]!, pageCode: page[2]! } : {}),
        ...(client ? { clientCode: client[1]! } : {}),
        text: match[0],
      });
    }
    return out;
  }

  /** The next question not yet taken by this method. */
  async nextQuestion(timeoutMs = 10_000): Promise<ShownQuestion> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.questions()[this.taken];
      if (found) {
        this.taken++;
        return found;
      }
      if (Date.now() > deadline) throw new Error(`no question was shown on the terminal within ${timeoutMs} ms; it shows:\n${this.text.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

export interface PageAnswer {
  status: number;
  body: string;
}

/**
 * The person's browser on a question's page: opens the address the terminal showed, types the
 * code shown beside it, reads the question, and posts the form as a browser would (with the form
 * token and the page's own Origin).
 */
export class PagePerson {
  private form = '';
  page = '';

  constructor(readonly shown: ShownQuestion) {
    if (!shown.url || !shown.pageCode) throw new Error(`question [${shown.number}] was shown without a page:\n${shown.text}`);
  }

  get origin(): string {
    return new URL(this.shown.url!).origin;
  }

  get pageUrl(): string {
    return this.shown.url!;
  }

  /** Opens the page and types the code from the terminal; returns the status of the page that follows. */
  async open(code = this.shown.pageCode!): Promise<number> {
    const first = await fetch(this.pageUrl);
    const text = await first.text();
    if (first.status !== 200) {
      this.page = text;
      return first.status;
    }
    return this.enterCode(code);
  }

  /** Types a code into the page's code form. */
  async enterCode(code: string): Promise<number> {
    const response = await fetch(this.pageUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: this.origin },
      body: new URLSearchParams({ code }).toString(),
    });
    this.page = await response.text();
    this.form = /name="form" value="([^"]+)"/.exec(this.page)?.[1] ?? '';
    return response.status;
  }

  /** The answers the page offers (radio values). */
  choices(): string[] {
    return [...this.page.matchAll(/name="choice" value="([^"]+)"/g)].map((m) => decodeEntities(m[1]!));
  }

  /** The facts the page shows, label → text (HTML entities decoded). */
  facts(): Record<string, string> {
    return Object.fromEntries([...this.page.matchAll(/<dt>([^<]*)<\/dt><dd>([^<]*)<\/dd>/g)].map((m) => [decodeEntities(m[1]!), decodeEntities(m[2]!)]));
  }

  approve(scope: 'once' | 'session'): Promise<PageAnswer> {
    const choice = this.choices().find((c) => c.startsWith(`${scope}:`));
    if (!choice) throw new Error(`the page offers no "${scope}" answer: ${this.choices().join(', ')}`);
    return this.post({ decision: 'approve', choice });
  }

  decline(): Promise<PageAnswer> {
    return this.post({ decision: 'decline' });
  }

  /** Posts the question form with these fields (and the form token, unless given). */
  async post(fields: Record<string, string>, headers: Record<string, string> = {}): Promise<PageAnswer> {
    const response = await fetch(this.pageUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: this.origin, ...headers },
      body: new URLSearchParams({ form: this.form, ...fields }).toString(),
    });
    return { status: response.status, body: await response.text() };
  }
}

function decodeEntities(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);
}
