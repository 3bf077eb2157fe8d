/**
 * The key store: where Gatehouse keeps named secret items (bridge credentials, the audit device
 * key, the sign-in's refresh token, and the user's `${secret:…}` values) behind one port, with two
 * backends: the OS keychain first, and where none is reachable, a user-only file store in the state
 * directory (0600 files in a 0700 directory), as `gh` and `docker` do.
 *
 * This module is the logic only: which backend an item goes to, and what happens to items that
 * were written while the keychain could not be reached. The backends are adapters
 * (`src/node/keystore/`); `test/integration/keystore.test.ts` runs one contract against both.
 *
 * The rules:
 * - Gatehouse's own items use the keychain when it answers, else the file store, unless the
 *   managed policy forbids the file store.
 * - The user's secrets (`secret/…`) use the file store only when the user opted in
 *   (`keystore.userSecretsInFile` in config.json), and never when the managed policy forbids it.
 * - An item found only in the file store while the keychain answers is moved into the keychain on
 *   its first read, so a credential kept during a keychain outage is not stranded there.
 * - A keychain that exists but does not answer in time (a locked keyring waiting on a password
 *   prompt) is not "unreachable": nothing falls back to a file then, and the error says why.
 */
import { GatehouseError } from '../../common/errors.js';
import type { KeyStoreStatusReport } from '../../common/status.js';
import type { Redacted, SecretName, SecretStore } from '../secrets.js';

export type KeyStoreBackendKind = 'keychain' | 'file' | 'memory';

/** One place items can live. Every method rejects with a `GatehouseError` that says what to do when the backend cannot be used. */
export interface KeyStoreBackend extends SecretStore {
  readonly kind: KeyStoreBackendKind;
  /** Where the items are, for people: "Secret Service (GNOME Keyring or KWallet)", "/home/ann/.local/state/gatehouse/keys". */
  readonly location: string;
  /**
   * Resolves when the backend can be used now. Rejects with `keychain_unavailable` when it cannot;
   * `timedOut` on the error says the backend exists but did not answer (a locked keyring).
   */
  probe(): Promise<void>;
}

/** What the managed policy and the user decided about the file store. */
export interface KeyStorePolicy {
  /** `forbidden` by the managed policy (policy.json in the managed location): no item is ever read from or written to a file. */
  fileStore: 'allowed' | 'forbidden';
  /** Why the file store is forbidden, for messages (the managed file that says so). */
  forbiddenBy?: string;
  /** The user opted in to keeping their own secrets in the file store when no keychain answers. */
  userSecretsInFile: boolean;
}

export const USER_SECRET_ITEM_PREFIX = 'secret/';

/** Gatehouse's own items (credentials, keys, the sign-in) or the user's secrets, which follow stricter rules. */
export type ItemClass = 'gatehouse' | 'user-secret';

export function itemClass(name: string): ItemClass {
  return name.startsWith(USER_SECRET_ITEM_PREFIX) ? 'user-secret' : 'gatehouse';
}

export type KeychainState = { reachable: true } | { reachable: false; reason: string; timedOut: boolean };

export type BackendChoice = { backend: 'keychain' } | { backend: 'file' } | { backend: 'none'; reason: string };

/** Which backend an item of `cls` goes to, given the keychain's state and the policy. Pure. */
export function chooseBackend(keychain: KeychainState, policy: KeyStorePolicy, cls: ItemClass): BackendChoice {
  if (keychain.reachable) return { backend: 'keychain' };
  if (keychain.timedOut) return { backend: 'none', reason: keychain.reason };
  if (policy.fileStore === 'forbidden') {
    return {
      backend: 'none',
      reason: `${keychain.reason} The file store is forbidden by the managed policy${policy.forbiddenBy ? ` (${policy.forbiddenBy})` : ''}, so nothing is kept.`,
    };
  }
  if (cls === 'user-secret' && !policy.userSecretsInFile) {
    return {
      backend: 'none',
      reason: `${keychain.reason} Your own secrets go to the file store only if you opt in: set "keystore": { "userSecretsInFile": true } in config.json.`,
    };
  }
  return { backend: 'file' };
}

/** What `gatehouse status`, the console and every storing command say about where items go. */
/** Where the key store keeps items: the status contract's shape (src/common/status.ts), which says what each field means. */
export type KeyStoreStatus = KeyStoreStatusReport;

/**
 * The key store as the rest of Gatehouse uses it: a `SecretStore` that routes each item to the
 * backend the rules choose. Build it with `KeyStore.open`, which asks the keychain once.
 */
export class KeyStore implements SecretStore {
  private constructor(
    private readonly keychain: KeyStoreBackend,
    private readonly file: KeyStoreBackend | undefined,
    readonly policy: KeyStorePolicy,
    readonly keychainState: KeychainState,
  ) {}

  static async open(keychain: KeyStoreBackend, file: KeyStoreBackend | undefined, policy: KeyStorePolicy): Promise<KeyStore> {
    let state: KeychainState;
    try {
      await keychain.probe();
      state = { reachable: true };
    } catch (error) {
      const timedOut = (error as { timedOut?: unknown }).timedOut === true;
      state = { reachable: false, reason: (error as Error).message, timedOut };
    }
    return new KeyStore(keychain, policy.fileStore === 'forbidden' ? undefined : file, policy, state);
  }

  /** A key store over one backend (tests, and callers that were handed a plain store). */
  static single(backend: KeyStoreBackend): KeyStore {
    return new KeyStore(backend, undefined, { fileStore: 'forbidden', userSecretsInFile: false }, { reachable: true });
  }

  /** Where Gatehouse's own items go: "the OS keychain (…)" or "the file store in … (…)". */
  get description(): string {
    return this.status().description;
  }

  status(): KeyStoreStatus {
    const own = this.choice('gatehouse');
    const secrets = this.choice('user-secret');
    const kindOf = (c: BackendChoice): KeyStoreStatus['backend'] => (c.backend === 'keychain' && this.keychain.kind === 'memory' ? 'memory' : c.backend);
    const reason = this.keychainState.reachable ? undefined : this.keychainState.reason;
    const description =
      own.backend === 'keychain'
        ? this.keychain.kind === 'memory'
          ? this.keychain.description
          : `the OS keychain (${this.keychain.location})`
        : own.backend === 'file'
          ? `the file store in ${this.file!.location} (no OS keychain answered)`
          : 'nowhere: no OS keychain answered and no file store may be used';
    return {
      backend: kindOf(own),
      description,
      location: own.backend === 'file' ? this.file!.location : this.keychain.location,
      ...(reason !== undefined ? { reason } : {}),
      fileStore: this.policy.fileStore,
      userSecretsInFile: this.policy.userSecretsInFile,
      userSecrets: kindOf(secrets),
    };
  }

  /** Where an item named `name` is kept, in words ("the OS keychain (…)", "the file store in …"). */
  describeFor(name: SecretName): string {
    const choice = this.choice(itemClass(name));
    if (choice.backend === 'keychain') return this.keychain.kind === 'memory' ? this.keychain.description : `the OS keychain (${this.keychain.location})`;
    if (choice.backend === 'file') return `the file store in ${this.file!.location}`;
    return 'nowhere';
  }

  async get(name: SecretName): Promise<Redacted<string> | undefined> {
    const choice = this.need(name);
    if (choice.backend === 'file') return this.file!.get(name);
    const value = await this.keychain.get(name);
    if (value !== undefined || !this.fileAllowed(name)) return value;
    // Kept in the file store while the keychain did not answer: move it to the keychain now.
    const stranded = await this.file!.get(name).catch(() => undefined);
    if (stranded === undefined) return undefined;
    await this.keychain.set(name, stranded.unwrap());
    await this.file!.delete(name).catch(() => false);
    return stranded;
  }

  async set(name: SecretName, value: string): Promise<void> {
    const choice = this.need(name);
    if (choice.backend === 'file') return this.file!.set(name, value);
    await this.keychain.set(name, value);
    // A stale copy from a keychain outage must not outlive the new value.
    if (this.fileAllowed(name)) await this.file!.delete(name).catch(() => false);
  }

  async delete(name: SecretName): Promise<boolean> {
    const choice = this.need(name);
    let deleted = false;
    if (choice.backend === 'keychain') deleted = await this.keychain.delete(name);
    if (this.fileAllowed(name)) deleted = (await this.file!.delete(name)) || deleted;
    return deleted;
  }

  /** Names from every backend this store may use, sorted. */
  async list(): Promise<SecretName[]> {
    const own = this.choice('gatehouse');
    const secrets = this.choice('user-secret');
    if (own.backend === 'none' && secrets.backend === 'none') throw new GatehouseError('keychain_unavailable', own.reason);
    const names = new Set<SecretName>();
    if (this.keychainState.reachable) for (const n of await this.keychain.list()) names.add(n);
    if (this.file) {
      for (const n of await this.file.list()) if (this.fileAllowed(n)) names.add(n);
    }
    return [...names].sort();
  }

  private choice(cls: ItemClass): BackendChoice {
    const choice = chooseBackend(this.keychainState, this.policy, cls);
    if (choice.backend === 'file' && !this.file) return { backend: 'none', reason: this.keychainState.reachable ? '' : this.keychainState.reason };
    return choice;
  }

  private need(name: SecretName): BackendChoice {
    const choice = this.choice(itemClass(name));
    if (choice.backend === 'none') throw new GatehouseError('keychain_unavailable', choice.reason);
    return choice;
  }

  /** The file store may hold this item (besides the keychain): it is allowed for the item's class. */
  private fileAllowed(name: SecretName): boolean {
    if (!this.file) return false;
    return itemClass(name) === 'gatehouse' || this.policy.userSecretsInFile;
  }
}
