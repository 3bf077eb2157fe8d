/**
 * The OS keychain backend of the key store: macOS Keychain, Windows Credential Manager, and on
 * Linux the Secret Service (GNOME Keyring, KWallet) over D-Bus, through `@napi-rs/keyring`.
 *
 * On Linux every entry is pinned to the Secret Service: left to itself the library falls back
 * silently to the kernel keyring, which forgets everything at logout, so a device key would vanish.
 * When no keychain answers, every method rejects with `keychain_unavailable` and a message that says
 * how to fix it; this adapter never writes anywhere else. Whether the key store then uses its file
 * backend is decided in `src/core/keystore/keystore.ts`.
 */
import { AsyncEntry, findCredentialsAsync, type EntryOptions } from '@napi-rs/keyring';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { KeyStoreBackend } from '../../core/keystore/keystore.js';
import { Redacted, isSecretName, secretName, type SecretName } from '../../core/secrets.js';

export const KEYCHAIN_SERVICE = 'gatehouse';

const ENTRY_OPTIONS: EntryOptions = { linux: { store: 'secret-service' } };
const PROBE_ACCOUNT = '__gatehouse_probe__';

export interface KeychainOptions {
  /** The keychain "service" items are filed under (tests use their own). */
  service?: string;
  /** How long one keychain call may take before it counts as unreachable (a locked keyring may wait on a prompt). */
  timeoutMs?: number;
  platform?: NodeJS.Platform;
}

export class KeychainSecretStore implements KeyStoreBackend {
  readonly kind = 'keychain';
  readonly description: string;
  private readonly service: string;
  private readonly timeoutMs: number;
  private readonly platform: NodeJS.Platform;

  constructor(options: KeychainOptions = {}) {
    this.service = options.service ?? KEYCHAIN_SERVICE;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.platform = options.platform ?? process.platform;
    this.description =
      this.platform === 'darwin' ? 'macOS Keychain' : this.platform === 'win32' ? 'Windows Credential Manager' : 'Secret Service (GNOME Keyring or KWallet)';
  }

  get location(): string {
    return this.description;
  }

  /** One read of a pinned probe item: an unreachable Secret Service is reported, not the kernel keyring's answer. */
  async probe(): Promise<void> {
    await this.call('read', undefined, (signal) => new AsyncEntry(this.service, PROBE_ACCOUNT, ENTRY_OPTIONS).getPassword(signal));
  }

  async get(name: SecretName): Promise<Redacted<string> | undefined> {
    const value = await this.call('read', name, (signal) => this.entry(name).getPassword(signal));
    return value === null || value === undefined ? undefined : new Redacted(value);
  }

  async set(name: SecretName, value: string): Promise<void> {
    if (typeof value !== 'string' || value.length === 0) throw new GatehouseError('invalid_secret', 'a secret value must be a non-empty string');
    await this.call('write', name, (signal) => this.entry(name).setPassword(value, signal));
  }

  async delete(name: SecretName): Promise<boolean> {
    return this.call('delete', name, (signal) => this.entry(name).deleteCredential(signal));
  }

  async list(): Promise<SecretName[]> {
    // Reached only through a pinned entry first, so that an unreachable Secret Service is reported
    // rather than the kernel keyring's (empty) list.
    await this.probe();
    const found = await this.call('list', undefined, (signal) => findCredentialsAsync(this.service, undefined, signal));
    return found
      .map((c) => c.account)
      .filter((account) => account !== PROBE_ACCOUNT && isSecretName(account))
      .sort() as SecretName[];
  }

  private entry(name: SecretName): AsyncEntry {
    return new AsyncEntry(this.service, name, ENTRY_OPTIONS);
  }

  private async call<T>(what: string, name: SecretName | undefined, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (name !== undefined) secretName(name);
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      return await run(signal);
    } catch (error) {
      const timedOut = signal.aborted;
      const failure = new GatehouseError(
        'keychain_unavailable',
        unavailableMessage(this.description, what, name, error, this.platform, timedOut ? this.timeoutMs : undefined),
        { cause: error },
      );
      // A keychain that exists but does not answer (a locked keyring on a password prompt) is not a missing one.
      throw Object.assign(failure, { timedOut });
    }
  }
}

/** Says what failed, why, and what a person does about it. */
export function unavailableMessage(
  description: string,
  what: string,
  name: string | undefined,
  error: unknown,
  platform: NodeJS.Platform,
  timedOutMs?: number,
): string {
  const item = name ? ` "${name}"` : '';
  const why = timedOutMs !== undefined ? `no answer within ${timedOutMs} ms (is the keyring locked and waiting for a password prompt?)` : errorMessage(error);
  let fix: string;
  if (platform === 'linux') {
    fix =
      'On Linux the keychain is the Secret Service. Run inside a desktop session with GNOME Keyring or KWallet unlocked; ' +
      'headless, start one with `dbus-run-session -- sh -c \'printf "%s" "$PASSWORD" | gnome-keyring-daemon --unlock --components=secrets; gatehouse daemon\'` ' +
      '(Debian packages: gnome-keyring dbus). DBUS_SESSION_BUS_ADDRESS must point at that session.';
  } else if (platform === 'darwin') {
    fix = 'Unlock the login keychain (Keychain Access) and allow Gatehouse to use it.';
  } else {
    fix = 'Make sure Windows Credential Manager is available to this user.';
  }
  return `the keychain (${description}) could not ${what}${item}: ${why}. ${fix}`;
}
