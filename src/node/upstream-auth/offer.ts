/**
 * The human channel offers the sign-in: when an agent calls a tool of a remote server that waits
 * for the user to sign in, the person is asked, where only they answer (the desktop app's window,
 * the daemon's terminal, the question page), whether to open the server's sign-in page. The
 * question shows the page's address too, for a person whose browser cannot be opened for them.
 *
 * Nothing here lets an agent sign in: the agent only causes the question. The address carries no
 * Gatehouse secret (SECURITY.md, "Remote servers that need sign-in"); the sign-in completes only in
 * the person's browser, at the authorization server.
 */
import { errorMessage } from '../../common/errors.js';
import type { HumanChannel } from '../../core/human/channel.js';
import type { Logger } from '../../core/ports.js';

export interface SignInOfferDeps {
  channel: HumanChannel;
  /** Starts (or joins) the sign-in; its page's address and when it lapses. */
  signIn(server: string): Promise<{ url: string; expiresAt: string }>;
  cancel(server: string, reason: string): void;
  /** The server's configured address, shown to the person. */
  address(server: string): string | undefined;
  openBrowser(url: string): Promise<boolean>;
  logger: Logger;
  now?(): number;
  /** After the person declines, how long before the same server's sign-in is offered again. */
  quietMs?: number;
}

export const OPEN_CHOICE = 'open-sign-in-page';

export class SignInOffers {
  private readonly waiting = new Set<string>();
  private readonly declinedAt = new Map<string, number>();
  private readonly now: () => number;
  private readonly aborts = new Set<AbortController>();

  constructor(private readonly deps: SignInOfferDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Offers the sign-in to `server`, unless it is offered already or the person said no a moment ago. */
  offer(server: string, client: string): void {
    if (this.waiting.has(server)) return;
    const declined = this.declinedAt.get(server);
    if (declined !== undefined && this.now() - declined < (this.deps.quietMs ?? 10 * 60_000)) return;
    this.waiting.add(server);
    void this.ask(server, client)
      .catch((error: unknown) => this.deps.logger.log('warn', 'upstream_auth.offer_failed', { server, error: errorMessage(error) }))
      .finally(() => this.waiting.delete(server));
  }

  private async ask(server: string, client: string): Promise<void> {
    const { url, expiresAt } = await this.deps.signIn(server);
    const abort = new AbortController();
    this.aborts.add(abort);
    try {
      const answer = await this.deps.channel.ask(
        {
          kind: 'approval',
          title: `Sign in to "${server}"?`,
          facts: [
            { label: 'Server', value: server },
            ...(this.deps.address(server) ? [{ label: 'Address', value: this.deps.address(server)! }] : []),
            { label: 'Asked by', value: `the client "${client}", whose call waits for it` },
            { label: 'Why', value: 'this remote server needs you to sign in before it answers; Gatehouse keeps the tokens, and no agent sees them' },
            { label: 'Sign-in page', value: url },
          ],
          choices: [{ id: OPEN_CHOICE, label: 'Open the sign-in page in my browser' }],
        },
        Date.parse(expiresAt),
        abort.signal,
      );
      if (answer.kind === 'approved') {
        if (!(await this.deps.openBrowser(url)))
          this.deps.logger.log('info', 'upstream_auth.no_browser', { server, note: 'the sign-in page is shown with the question; open it by hand' });
      } else if (answer.kind === 'declined') {
        this.declinedAt.set(server, this.now());
        this.deps.cancel(server, 'you chose not to sign in now');
      }
    } finally {
      this.aborts.delete(abort);
    }
  }

  /** Withdraws every question waiting (the daemon stops). */
  close(): void {
    for (const abort of this.aborts) abort.abort();
  }
}
