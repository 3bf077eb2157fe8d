/**
 * Where `gatehouse connect` keeps the credential it was given when the person paired it: the OS
 * keychain, one item per daemon (socket) and client name. Nothing is written to a file.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { secretName, type SecretStore } from '../../core/secrets.js';

/** The bridge's credential in the keychain, one per client name and daemon. */
export interface CredentialKeeper {
  load(): Promise<string | undefined>;
  save(token: string): Promise<void>;
  forget(): Promise<void>;
}

export function bridgeCredentialItem(socketPath: string, client: string) {
  return secretName(`client-credential/${createHash('sha256').update(`${socketPath}\n${client}`).digest('hex').slice(0, 32)}`);
}

export function keychainCredentialKeeper(store: SecretStore, socketPath: string, client: string): CredentialKeeper {
  const item = bridgeCredentialItem(socketPath, client);
  return {
    load: async () => (await store.get(item))?.unwrap(),
    save: (token) => store.set(item, token),
    forget: async () => void (await store.delete(item)),
  };
}

/** The program that launched the bridge, as the kernel reports it (Linux), for the pairing page. */
export function launcherDescription(): string | undefined {
  try {
    const cmdline = readFileSync(`/proc/${process.ppid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return cmdline ? `launched by pid ${process.ppid}: ${cmdline.slice(0, 250)}` : undefined;
  } catch {
    return undefined;
  }
}
