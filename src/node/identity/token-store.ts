/**
 * The one thing of a sign-in that outlives the process: the refresh token, in the OS keychain
 * (`SecretStore`, pinned to the Secret Service on Linux). Access and ID tokens live in memory only.
 * Where no keychain can be reached, every method rejects with `keychain_unavailable` and a
 * message that says how to fix it; nothing is written anywhere else instead.
 */
import { createHash } from 'node:crypto';
import { GatehouseError } from '../../common/errors.js';
import { Redacted, secretName, type SecretName, type SecretStore } from '../../core/secrets.js';

export interface StoredSession {
  refreshToken: Redacted<string>;
  issuer: string;
  clientId: string;
  /** Who signed in (for `whoami` while the daemon is not running); the daemon trusts only what a fresh ID token says. */
  sub: string;
  displayName: string;
  savedAt: string;
}

/** One keychain item per provider and client, so that switching providers never reuses another's token. */
export function sessionItem(issuer: string, clientId: string): SecretName {
  return secretName(`oidc-session/${createHash('sha256').update(`${issuer}\n${clientId}`).digest('hex').slice(0, 24)}`);
}

export class TokenStore {
  constructor(
    private readonly store: SecretStore,
    private readonly issuer: string,
    private readonly clientId: string,
  ) {}

  get description(): string {
    return this.store.description;
  }

  async load(): Promise<StoredSession | undefined> {
    const item = await this.store.get(sessionItem(this.issuer, this.clientId));
    if (!item) return undefined;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(item.unwrap()) as Record<string, unknown>;
    } catch {
      throw new GatehouseError('session_item_invalid', 'the stored sign-in in the keychain is unreadable; run `gatehouse logout`, then `gatehouse login`');
    }
    if (typeof parsed.refreshToken !== 'string' || parsed.issuer !== this.issuer || parsed.clientId !== this.clientId) {
      throw new GatehouseError(
        'session_item_invalid',
        'the stored sign-in in the keychain does not match the configured identity provider; run `gatehouse logout`, then `gatehouse login`',
      );
    }
    return {
      refreshToken: new Redacted(parsed.refreshToken),
      issuer: this.issuer,
      clientId: this.clientId,
      sub: String(parsed.sub ?? ''),
      displayName: String(parsed.displayName ?? ''),
      savedAt: String(parsed.savedAt ?? ''),
    };
  }

  async save(session: { refreshToken: Redacted<string>; sub: string; displayName: string }): Promise<void> {
    const value = JSON.stringify({
      v: 1,
      refreshToken: session.refreshToken.unwrap(),
      issuer: this.issuer,
      clientId: this.clientId,
      sub: session.sub,
      displayName: session.displayName,
      savedAt: new Date().toISOString(),
    });
    await this.store.set(sessionItem(this.issuer, this.clientId), value);
  }

  async clear(): Promise<boolean> {
    return this.store.delete(sessionItem(this.issuer, this.clientId));
  }
}
