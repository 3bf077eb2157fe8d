/**
 * Opens the key store for this user: the OS keychain when it answers, the user-only file store in
 * the state directory otherwise, within what the managed policy and the user's config allow
 * (`src/core/keystore/keystore.ts` holds the rules). The daemon, the bridge and every command that
 * stores something open it the same way, so they agree on where an item is.
 */
import { KeyStore, type KeyStoreBackend, type KeyStorePolicy } from '../../core/keystore/keystore.js';
import { readKeyStorePolicy } from '../policy/settings.js';
import { managedDirFor } from '../policy/settings.js';
import { FileKeyStore, fileKeyStoreDir } from './file.js';
import { KeychainSecretStore } from './keychain.js';

export interface OpenKeyStoreOptions {
  stateDir: string;
  /** Tests only: where managed settings are read; otherwise the platform's fixed location. */
  managedDir?: string;
  /** The user's opt-in (`keystore.userSecretsInFile` in config.json). */
  userSecretsInFile?: boolean;
  /** How long the keychain may take to answer the first probe (the bridge keeps this short). */
  timeoutMs?: number;
  /** Tests: another keychain backend (an in-memory one, or one with its own service name). */
  keychain?: KeyStoreBackend;
}

export async function openKeyStore(options: OpenKeyStoreOptions): Promise<KeyStore> {
  const managed = readKeyStorePolicy(options.managedDir ?? managedDirFor(process.platform));
  const policy: KeyStorePolicy = { ...managed, userSecretsInFile: options.userSecretsInFile === true };
  const keychain = options.keychain ?? new KeychainSecretStore(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {});
  return KeyStore.open(keychain, new FileKeyStore(fileKeyStoreDir(options.stateDir)), policy);
}
