/**
 * Who calls are made as: the user signed in with the organisation's identity provider when
 * `identity.json` names one, the OS user otherwise, and nobody at all when the settings are broken
 * (fail closed until they are fixed).
 */
import type { IdentityStatus } from '../../common/status.js';
import type { Logger } from '../../core/ports.js';
import type { SecretStore } from '../../core/secrets.js';
import type { SessionPort } from '../local-identity.js';
import type { Notifier } from '../human/notify.js';
import { UserSession } from '../identity/session.js';
import type { loadIdentitySettings } from '../identity/settings.js';

export interface UserIdentity {
  /** The identity provider settings as read (the console's sign-in needs them). */
  settings: ReturnType<typeof loadIdentitySettings>;
  /** The OIDC session, when a provider is configured and its settings are valid. */
  session: UserSession | undefined;
  /** What the identity stage asks; undefined means the OS user. */
  sessionPort: SessionPort | undefined;
  status(): IdentityStatus;
}

export interface UserIdentityOptions {
  settings: ReturnType<typeof loadIdentitySettings>;
  keychain: SecretStore;
  logger: Logger;
  notifier: Notifier;
  retry?: { initialMs: number; maxMs: number };
  /** The user signed in, renewed, expired or signed out. */
  onChange(): void;
}

export function openUserIdentity(options: UserIdentityOptions): UserIdentity {
  const { settings, logger } = options;
  if (settings.kind === 'ok') {
    const session = new UserSession({
      settings: settings.settings,
      source: settings.source,
      store: options.keychain,
      logger,
      notifier: options.notifier,
      ...(options.retry ? { retry: options.retry } : {}),
      onChange: () => options.onChange(),
    });
    return { settings, session, sessionPort: session, status: () => session.status() };
  }
  if (settings.kind === 'invalid') {
    // A broken identity.json fails closed: no call is made as anyone until it is fixed.
    const reason = `the identity provider settings are invalid (${settings.error}); fix the file and restart Gatehouse`;
    logger.log('error', 'identity.settings_invalid', { error: settings.error });
    return {
      settings,
      session: undefined,
      sessionPort: { currentUser: () => undefined, admission: () => ({ ok: false, code: 'unauthenticated', reason }) },
      status: () => ({ mode: 'oidc', state: 'misconfigured', reason, notice: reason }),
    };
  }
  return { settings, session: undefined, sessionPort: undefined, status: () => ({ mode: 'os', state: 'local' }) };
}
