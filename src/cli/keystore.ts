/**
 * The key store as the commands open it: the same rules as the daemon (the OS keychain, else the
 * user-only file store, as the managed policy and the user's config allow), so that what a command
 * stores is where the daemon and the bridge look. Every command that stores something says where.
 */
import type { KeyStore } from '../core/keystore/keystore.js';
import { loadConfigFile } from '../node/config-file.js';
import { openKeyStore } from '../node/keystore/open.js';
import type { GatehousePaths } from '../node/paths.js';

export async function openUserKeyStore(paths: GatehousePaths, options: { timeoutMs?: number } = {}): Promise<KeyStore> {
  // A broken config must not stop a sign-in or an enrolment: the opt-in then counts as off.
  const loaded = await loadConfigFile(paths.configFile, { dataDir: paths.dataDir }).catch(() => undefined);
  const userSecretsInFile = loaded?.ok === true && loaded.config.keystore.userSecretsInFile;
  return openKeyStore({ stateDir: paths.stateDir, userSecretsInFile, ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) });
}
