/**
 * The daemon's side of a sign-in: it loads the refresh token from the keychain, keeps an access
 * token in memory and refreshes it before it expires, and answers the identity stage for every
 * call. A session that cannot be renewed blocks calls with a "sign in again" error and a desktop
 * notification; it resumes as soon as a refresh succeeds or the user signs in again
 * (`gatehouse login` stores a new refresh token and asks the daemon to reload), without
 * restarting anything.
 */
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { IdentityStatus } from '../../common/status.js';
import type { Admission } from '../../core/governance.js';
import { ADMIT } from '../../core/governance.js';
import type { Logger } from '../../core/ports.js';
import type { Principal } from '../../core/principal.js';
import type { Redacted, SecretStore } from '../../core/secrets.js';
import type { Notifier } from '../human/notify.js';
import { OidcClient, type SignedInUser, type TokenSet } from './oidc.js';
import type { IdentitySettings } from './settings.js';
import { TokenStore } from './token-store.js';

export type SessionState = 'starting' | 'signed-out' | 'active' | 'expired' | 'unavailable';

export interface UserSessionDeps {
  settings: IdentitySettings;
  source: 'managed' | 'user';
  store: SecretStore;
  logger: Logger;
  notifier: Notifier;
  now?: () => number;
  /** How the provider is reached (tests may count or fail discovery). */
  connect?: (settings: IdentitySettings) => Promise<OidcClient>;
  /** First and longest delay between retries while the provider cannot be reached. */
  retry?: { initialMs: number; maxMs: number };
  /** The user, their groups or the session's state changed. */
  onChange?: () => void;
}

export const SIGN_IN_AGAIN = 'sign in again with `gatehouse login`';

export class UserSession {
  private state: SessionState = 'starting';
  private user: SignedInUser | undefined;
  private access: { token: Redacted<string>; expiresAt: number } | undefined;
  /** The latest ID token (memory only), for exchanging the user's identity with servers that trust the IdP (ID-JAG). */
  private id: Redacted<string> | undefined;
  private reason: string | undefined;
  private lastRefreshAt: number | undefined;
  private client: OidcClient | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private generation = 0;
  private retryMs: number;
  private notified = false;
  private readonly tokens: TokenStore;
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly deps: UserSessionDeps) {
    this.tokens = new TokenStore(deps.store, deps.settings.issuer, deps.settings.clientId);
    this.now = deps.now ?? Date.now;
    this.retryMs = deps.retry?.initialMs ?? 2000;
  }

  /** Loads the stored sign-in, if any, and renews it. Resolves once the session's state is known. */
  async start(): Promise<void> {
    await this.load();
  }

  /** After `gatehouse login` or `logout` changed the keychain. */
  async reload(): Promise<IdentityStatus> {
    await this.load();
    return this.status();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The user calls are made as: the signed-in user, still named while the session is expired (for audit). */
  currentUser(): Principal['user'] | undefined {
    if (!this.user) return undefined;
    return { id: this.user.id, source: 'oidc', displayName: this.user.displayName, groups: [...this.user.groups], roles: [] };
  }

  /** The user's current ID token while the session is active, for the enterprise exchange (docs/remote-servers.md); never stored. */
  idToken(): Redacted<string> | undefined {
    return this.state === 'active' ? this.id : undefined;
  }

  /** For the identity stage: may a call be made as this user now? */
  admission(): Admission {
    const now = this.now();
    if (this.state === 'active' && this.access && now >= this.access.expiresAt) {
      this.expire(`the sign-in expired at ${new Date(this.access.expiresAt).toISOString()} and could not be renewed${this.reason ? ` (${this.reason})` : ''}`);
    }
    switch (this.state) {
      case 'active':
        return ADMIT;
      case 'starting':
        return { ok: false, code: 'unauthenticated', reason: 'Gatehouse is renewing your sign-in; try again in a moment' };
      case 'signed-out':
        return { ok: false, code: 'unauthenticated', reason: `you are not signed in to ${this.deps.settings.issuer}; ${SIGN_IN_AGAIN}` };
      case 'expired':
        return { ok: false, code: 'unauthenticated', reason: `your sign-in has expired: ${this.reason ?? 'it could not be renewed'}; ${SIGN_IN_AGAIN}` };
      case 'unavailable':
        return { ok: false, code: 'unauthenticated', reason: `your sign-in cannot be read: ${this.reason ?? 'the keychain is unavailable'}` };
    }
  }

  status(): IdentityStatus {
    const admission = this.admission();
    return {
      mode: 'oidc',
      state: this.state,
      issuer: this.deps.settings.issuer,
      settingsSource: this.deps.source,
      ...(this.user ? { user: this.user.displayName, userId: this.user.id, groups: [...this.user.groups] } : {}),
      ...(this.access ? { accessTokenExpiresAt: new Date(this.access.expiresAt).toISOString() } : {}),
      ...(this.lastRefreshAt ? { lastRefreshAt: new Date(this.lastRefreshAt).toISOString() } : {}),
      ...(this.reason ? { reason: this.reason } : {}),
      ...(admission.ok ? {} : { notice: admission.reason }),
    };
  }

  /** Revokes what the daemon holds and forgets the sign-in (the CLI then opens the provider's logout page). */
  async logout(): Promise<{ revoked: boolean }> {
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    let revoked = false;
    const stored = await this.tokens.load().catch(() => undefined);
    try {
      const client = await this.provider();
      if (stored) revoked = await client.revoke(stored.refreshToken, 'refresh_token');
      if (this.access) await client.revoke(this.access.token, 'access_token').catch(() => undefined);
    } catch (error) {
      this.deps.logger.log('warn', 'identity.revoke_failed', { error: errorMessage(error) });
    }
    await this.tokens.clear();
    this.access = undefined;
    this.id = undefined;
    this.user = undefined;
    this.reason = undefined;
    this.setState('signed-out');
    return { revoked };
  }

  private async provider(): Promise<OidcClient> {
    this.client ??= await (this.deps.connect ?? ((s) => OidcClient.discover(s)))(this.deps.settings);
    return this.client;
  }

  private async load(): Promise<void> {
    const generation = ++this.generation;
    if (this.timer) clearTimeout(this.timer);
    this.notified = false;
    let stored;
    try {
      stored = await this.tokens.load();
    } catch (error) {
      if (generation !== this.generation) return;
      this.reason = errorMessage(error);
      this.access = undefined;
      this.setState(error instanceof GatehouseError && error.code === 'keychain_unavailable' ? 'unavailable' : 'expired');
      this.deps.logger.log('error', 'identity.load_failed', { error: this.reason });
      return;
    }
    if (generation !== this.generation) return;
    if (!stored) {
      this.access = undefined;
      this.user = undefined;
      this.reason = undefined;
      this.setState('signed-out');
      return;
    }
    // Until a fresh ID token arrives, the user is named as stored but holds no groups.
    if (!this.user || this.user.sub !== stored.sub)
      this.user = { id: `oidc:${stored.issuer}#${stored.sub}`, sub: stored.sub, issuer: stored.issuer, displayName: stored.displayName, groups: [] };
    this.access = undefined;
    this.id = undefined;
    this.setState('starting');
    await this.renew(generation, stored.refreshToken, stored.sub);
  }

  private async renew(generation: number, refreshToken: Redacted<string>, sub: string): Promise<void> {
    let tokens: TokenSet;
    try {
      tokens = await (await this.provider()).refresh(refreshToken, sub);
    } catch (error) {
      if (generation !== this.generation) return;
      this.renewFailed(generation, error, refreshToken, sub);
      return;
    }
    if (generation !== this.generation) return;
    try {
      if (tokens.refreshToken)
        await this.tokens.save({ refreshToken: tokens.refreshToken, sub, displayName: tokens.user?.displayName ?? this.user?.displayName ?? sub });
    } catch (error) {
      // A rotated refresh token that cannot be kept is lost at the next restart; say so, but the session holds until then.
      this.deps.logger.log('error', 'identity.store_failed', { error: errorMessage(error) });
    }
    const before = JSON.stringify(this.user);
    if (tokens.user) this.user = tokens.user;
    this.access = { token: tokens.accessToken, expiresAt: tokens.expiresAt };
    if (tokens.idToken) this.id = tokens.idToken;
    this.lastRefreshAt = this.now();
    this.reason = tokens.user ? undefined : 'the identity provider sent no ID token when renewing; your groups are those of your last sign-in';
    this.retryMs = this.deps.retry?.initialMs ?? 2000;
    this.notified = false;
    const userChanged = before !== JSON.stringify(this.user);
    const wasActive = this.state === 'active';
    this.state = 'active';
    if (!wasActive || userChanged) this.changed();
    this.deps.logger.log('info', 'identity.renewed', { user: this.user?.displayName, expiresAt: new Date(tokens.expiresAt).toISOString() });
    const refreshIn = Math.max(1000, tokens.expiresAt - this.now() - this.deps.settings.refreshMarginSeconds * 1000);
    const next = tokens.refreshToken ?? refreshToken;
    this.schedule(refreshIn, () => void this.renew(generation, next, sub));
  }

  private renewFailed(generation: number, error: unknown, refreshToken: Redacted<string>, sub: string): void {
    const message = errorMessage(error);
    const code = error instanceof GatehouseError ? error.code : 'error';
    this.deps.logger.log('warn', 'identity.renew_failed', { code, error: message });
    if (code === 'oidc_invalid_grant' || code === 'oidc_subject_changed') {
      // The provider ended the session (revoked, expired, or another user): the stored token is useless.
      this.access = undefined;
      void this.tokens.clear().catch(() => undefined);
      this.expire(`the identity provider refused the stored sign-in (${message})`);
      return;
    }
    if (code === 'keychain_unavailable') {
      this.reason = message;
      this.setState('unavailable');
      return;
    }
    // The provider cannot be reached (or answered oddly): keep what is valid, retry with backoff.
    this.reason = message;
    if (!this.access || this.now() >= this.access.expiresAt)
      this.expire(`the identity provider could not be reached to renew it (${message}); Gatehouse keeps trying`);
    else if (this.state === 'starting') this.setState('expired');
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.deps.retry?.maxMs ?? 60_000);
    this.client = undefined;
    this.schedule(delay, () => void this.renew(generation, refreshToken, sub));
  }

  private expire(reason: string): void {
    this.reason = reason;
    if (this.state === 'expired') return;
    this.setState('expired');
    if (!this.notified) {
      this.notified = true;
      this.deps.logger.log('warn', 'identity.expired', { reason, action: SIGN_IN_AGAIN });
      this.deps.notifier.notify('Gatehouse: sign in again', `Your sign-in has expired, so your agents' calls are refused. Run: gatehouse login`);
    }
  }

  private setState(state: SessionState): void {
    if (this.state === state) return;
    this.state = state;
    this.changed();
  }

  private changed(): void {
    try {
      this.deps.onChange?.();
    } catch (error) {
      this.deps.logger.log('error', 'identity.listener_failed', { error: errorMessage(error) });
    }
  }

  private schedule(ms: number, run: () => void): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(run, ms);
    this.timer.unref?.();
  }
}
