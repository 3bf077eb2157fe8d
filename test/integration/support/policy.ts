/**
 * A real Gatehouse under a managed policy: a throwaway home, a managed directory of its own (trust
 * anchors, policy.json, the bundle file, written as device management would: whole files, renamed
 * into place) and, standing in for SSO, a test identity with group claims.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigInput } from '../../../src/common/config.js';
import type { DaemonStatus } from '../../../src/common/status.js';
import type { Logger } from '../../../src/core/ports.js';
import { MemorySecretStore } from '../../../src/core/secrets.js';
import { ClientRegistry } from '../../../src/node/client-registry.js';
import { startDaemon, type Daemon } from '../../../src/node/daemon.js';
import type { GatehousePaths } from '../../../src/node/paths.js';
import type { TestIdentity } from '../../../src/node/policy/static-identity.js';
import type { TestKey } from '../../support/policy.js';
import { eventually, makeHome } from './gatehouse.js';

export interface ManagedOptions {
  roots: TestKey[];
  /** policy.json beyond "trust" (required, url, pollSeconds, ca, bundle). */
  settings?: Record<string, unknown>;
  bundle?: Buffer;
  /** Absent: the OS user, who has no group claims. */
  identity?: TestIdentity;
  /** The user's own config (servers, restrict). */
  config?: ConfigInput;
  clients?: string[];
  /** Extra files for the managed directory (a CA certificate). */
  extraFiles?: Record<string, string>;
  /** Added to the daemon's environment (npm's registry, as a person's npm settings name it). */
  env?: Record<string, string>;
}

export interface ManagedGatehouse {
  home: string;
  paths: GatehousePaths;
  env: NodeJS.ProcessEnv;
  managedDir: string;
  tokens: Record<string, string>;
  logs: string[];
  daemon: Daemon;
  status(): DaemonStatus;
  writeBundle(bytes: Buffer, name?: string): void;
  writeSettings(settings: Record<string, unknown>): void;
  writeConfig(config: ConfigInput): Promise<void>;
  /** Waits until the status satisfies `check`. */
  until(check: (s: DaemonStatus) => boolean, what: string, timeoutMs?: number): Promise<DaemonStatus>;
  stop(): Promise<void>;
}

function writeReplacing(file: string, data: string | Buffer, mode = 0o644): void {
  const temp = `${file}.new`;
  writeFileSync(temp, data, { mode });
  renameSync(temp, file);
}

export async function startManaged(options: ManagedOptions): Promise<ManagedGatehouse> {
  const made = makeHome('gh-policy-');
  const { home, paths } = made;
  const env = { ...made.env, ...(options.env ?? {}) };
  const managedDir = join(home, 'managed');
  mkdirSync(managedDir, { mode: 0o755 });
  const trust = options.roots.map((root, i) => {
    const name = `root-${i}.pub`;
    writeFileSync(join(managedDir, name), root.publicPem, { mode: 0o644 });
    return name;
  });
  for (const [name, text] of Object.entries(options.extraFiles ?? {})) writeFileSync(join(managedDir, name), text, { mode: 0o644 });
  const writeSettings = (settings: Record<string, unknown>) => writeReplacing(join(managedDir, 'policy.json'), JSON.stringify({ trust, ...settings }, null, 2));
  writeSettings(options.settings ?? {});
  if (options.bundle) writeReplacing(join(managedDir, 'policy.bundle'), options.bundle);
  const writeConfig = (config: ConfigInput) =>
    writeReplacing(paths.configFile, JSON.stringify({ listen: { http: { enabled: true, port: 0 } }, ...config }, null, 2), 0o600);
  writeConfig(options.config ?? {});
  const registry = new ClientRegistry(join(paths.stateDir, 'clients.json'));
  const tokens = Object.fromEntries((options.clients ?? ['ide']).map((name) => [name, registry.add(name)]));
  const logs: string[] = [];
  const logger: Logger = { log: (level, event, fields) => logs.push(JSON.stringify({ level, event, ...fields })) };
  let daemon: Daemon;
  try {
    daemon = await startDaemon({
      paths,
      logger,
      env,
      secrets: new MemorySecretStore(),
      managedDir,
      // Nobody can be asked here, whatever is installed on the machine (notify-send): approvals fail closed.
      human: { terminal: null, notifier: { notify: () => false } },
      ...(options.identity ? { testIdentity: options.identity } : {}),
    });
  } catch (error) {
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  return {
    home,
    paths,
    env,
    managedDir,
    tokens,
    logs,
    daemon,
    status: () => daemon.status(),
    writeBundle: (bytes, name = 'policy.bundle') => writeReplacing(join(managedDir, name), bytes),
    writeSettings,
    writeConfig: async (config) => {
      writeConfig(config);
      await daemon.reload();
    },
    until: (check, what, timeoutMs = 10_000) => eventually(() => (check(daemon.status()) ? daemon.status() : undefined), timeoutMs, what),
    stop: async () => {
      await daemon.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
