/**
 * Where the local audit parts live, and how the daemon assembles them: the SQLite store, the device
 * key from the keychain (loaded in the background: a missing keychain delays signing and sync, and
 * says why in `gatehouse status`, but never stops calls from being recorded), and the sync sender
 * when the device is enrolled with a hub (`hub.json`, written by `gatehouse audit enrol`).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import { loadDeviceKey } from '../../core/audit/device-key.js';
import type { Logger } from '../../core/ports.js';
import type { SecretStore } from '../../core/secrets.js';
import { HubClient } from './hub-client.js';
import { SqliteAuditStore, type AuditStoreStatus } from './sqlite-store.js';
import { AuditSyncSender, type SyncStatus } from './sync.js';
import type { Durability } from './schema.js';

export function auditDatabaseFile(stateDir: string): string {
  return join(stateDir, 'audit.db');
}

export function hubLinkFile(stateDir: string): string {
  return join(stateDir, 'hub.json');
}

/** The device's link to its hub. */
export interface HubLink {
  url: string;
  device: string;
  enrolledAt: string;
  sync?: { batchSize?: number; initialDelayMs?: number; maxDelayMs?: number; idleMs?: number };
}

export function readHubLink(stateDir: string): HubLink | undefined {
  const file = hubLinkFile(stateDir);
  if (!existsSync(file)) return undefined;
  let link: HubLink;
  try {
    link = JSON.parse(readFileSync(file, 'utf8')) as HubLink;
  } catch (error) {
    throw new GatehouseError('config_invalid', `${file} is not valid JSON: ${errorMessage(error)}`);
  }
  if (typeof link.url !== 'string' || !/^https?:\/\//.test(link.url) || typeof link.device !== 'string') {
    throw new GatehouseError('config_invalid', `${file} needs "url" (http:// or https://) and "device"`);
  }
  return link;
}

export function writeHubLink(stateDir: string, link: HubLink): void {
  const file = hubLinkFile(stateDir);
  writeFileSync(file + '.tmp', JSON.stringify(link, null, 2) + '\n', { mode: 0o600 });
  renameSync(file + '.tmp', file);
}

export interface LocalAudit {
  store: SqliteAuditStore;
  /** Resolves once the key has been loaded or has failed to load (for tests). */
  keyReady: Promise<void>;
  status(): AuditStoreStatus & { sync?: SyncStatus; hubError?: string };
  close(): Promise<void>;
}

export interface LocalAuditOptions {
  stateDir: string;
  secrets: SecretStore;
  logger: Logger;
  durability?: Durability;
  checkpointEvery?: number;
  checkpointIntervalMs?: number;
}

export function openLocalAudit(options: LocalAuditOptions): LocalAudit {
  const store = new SqliteAuditStore({
    file: auditDatabaseFile(options.stateDir),
    logger: options.logger,
    ...(options.durability ? { durability: options.durability } : {}),
    ...(options.checkpointEvery ? { checkpointEvery: options.checkpointEvery } : {}),
    ...(options.checkpointIntervalMs ? { checkpointIntervalMs: options.checkpointIntervalMs } : {}),
  });
  for (const warning of store.startupWarnings) options.logger.log('error', 'audit.integrity', { warning });
  let sender: AuditSyncSender | undefined;
  let hubError: string | undefined;
  let closed = false;
  let link: HubLink | undefined;
  try {
    link = readHubLink(options.stateDir);
    if (link && link.device !== store.device) {
      hubError = `hub.json was written for device ${link.device}, but this audit log belongs to ${store.device}; enrol again with \`gatehouse audit enrol\``;
      link = undefined;
    }
  } catch (error) {
    hubError = errorMessage(error);
  }
  if (hubError) options.logger.log('error', 'audit.hub_link_invalid', { error: hubError });

  const keyReady = (async () => {
    try {
      const key = await loadDeviceKey(options.secrets, store.device, { create: true });
      if (closed) return;
      store.setDeviceKey(key);
      if (key.created)
        options.logger.log('info', 'audit.device_key_created', { device: store.device, keyId: key.keyId, keychain: options.secrets.description });
      if (link && store.deviceKey) {
        sender = new AuditSyncSender({ store, client: new HubClient({ url: link.url, key }), logger: options.logger, ...(link.sync ?? {}) });
        sender.start();
      }
    } catch (error) {
      const message = errorMessage(error);
      store.setDeviceKey(undefined, message);
      if (link) hubError = `not syncing to ${link.url}: the device key is unavailable (${message})`;
      options.logger.log('error', 'audit.signing_unavailable', {
        error: message,
        note: 'events are still recorded and hash-chained; checkpoints and sync wait for the device key',
      });
    }
  })();

  return {
    store,
    keyReady,
    status: () => ({ ...store.status(), ...(sender ? { sync: sender.status() } : {}), ...(hubError ? { hubError } : {}) }),
    close: async () => {
      closed = true;
      await sender?.stop();
      store.close();
    },
  };
}
