/**
 * Where `gatehouse connect` keeps what pairing gives it: the credential, and while it waits for the
 * person, its claim (bridge-pairing.ts). Both are items of the key store (the OS keychain, or the
 * user-only file store where no keychain answers), one per daemon (socket) and client name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { secretName, type SecretName, type SecretStore } from '../../core/secrets.js';

/** The bridge's credential and pending claim, one per client name and daemon. */
export interface CredentialKeeper {
  /** Where items are kept, for the bridge's messages ("the OS keychain (…)", "the file store in …"). */
  readonly where: string;
  load(): Promise<string | undefined>;
  save(token: string): Promise<void>;
  forget(): Promise<void>;
  /** The claim this bridge presents while pairing waits: the kept one, or a new one (kept when possible). */
  claim(): Promise<string>;
  forgetClaim(): Promise<void>;
}

function itemFor(kind: 'client-credential' | 'client-claim', socketPath: string, client: string): SecretName {
  return secretName(`${kind}/${createHash('sha256').update(`${socketPath}\n${client}`).digest('hex').slice(0, 32)}`);
}

export function bridgeCredentialItem(socketPath: string, client: string): SecretName {
  return itemFor('client-credential', socketPath, client);
}

export function bridgeClaimItem(socketPath: string, client: string): SecretName {
  return itemFor('client-claim', socketPath, client);
}

export function storedCredentialKeeper(store: SecretStore & { describeFor?(name: SecretName): string }, socketPath: string, client: string): CredentialKeeper {
  const item = bridgeCredentialItem(socketPath, client);
  const claimItem = bridgeClaimItem(socketPath, client);
  return {
    where: store.describeFor?.(item) ?? store.description,
    load: async () => (await store.get(item))?.unwrap(),
    save: (token) => store.set(item, token),
    forget: async () => void (await store.delete(item)),
    claim: async () => {
      const kept = await store.get(claimItem).catch(() => undefined);
      if (kept) return kept.unwrap();
      const fresh = randomBytes(32).toString('base64url');
      // Without a place to keep it, the claim lives as long as this bridge: a later launch asks anew.
      await store.set(claimItem, fresh).catch(() => undefined);
      return fresh;
    },
    forgetClaim: async () => void (await store.delete(claimItem).catch(() => false)),
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
