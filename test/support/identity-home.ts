/**
 * A Gatehouse daemon for the identity, pairing and secrets tests: a throwaway home, a config with
 * the given servers, an optional identity.json, an in-memory (or real) keychain, and a human
 * channel whose questions the test reads off the daemon's terminal (a Screen) and answers on the
 * real question page, over HTTP, with the code the terminal shows, as a person would.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ConfigInput } from '../../src/common/config.js';
import { MemorySecretStore, type SecretStore } from '../../src/core/secrets.js';
import type { Logger } from '../../src/core/ports.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { startDaemon, type Daemon, type DaemonOptions } from '../../src/node/daemon.js';
import type { GatehousePaths } from '../../src/node/paths.js';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { BIN, makeHome } from '../integration/support/gatehouse.js';
import { PagePerson, Screen, type ShownQuestion } from './screen.js';

export const CANARY_SERVER = resolve(import.meta.dirname, '../fixtures/canary-server.mjs');

export interface IdentityHome {
  home: string;
  paths: GatehousePaths;
  env: NodeJS.ProcessEnv;
  daemon: Daemon;
  keychain: SecretStore;
  logs: string[];
  notifications: string[];
  /** The daemon's terminal. */
  screen: Screen;
  /** Questions the terminal showed, oldest first. */
  readonly questions: ShownQuestion[];
  /** Waits for the next question whose title matches. */
  nextQuestion(title: RegExp, timeoutMs?: number): Promise<ShownQuestion>;
  /** Tokens of the clients registered before the daemon started (fixtures standing for clients paired earlier). */
  tokens: Record<string, string>;
  stop(): Promise<void>;
}

export interface IdentityHomeOptions {
  servers?: ConfigInput['servers'];
  identity?: Record<string, unknown>;
  keychain?: SecretStore;
  pairingDeadlineMs?: number;
  /** Clients paired before the daemon starts, with their grants. */
  clients?: Record<string, Parameters<ClientRegistry['add']>[1]>;
  /** More daemon options (tests of one part's own settings). */
  daemon?: Partial<DaemonOptions>;
}

export async function startIdentityHome(options: IdentityHomeOptions = {}): Promise<IdentityHome> {
  const { home, paths, env } = makeHome('gh-identity-');
  writeFileSync(paths.configFile, JSON.stringify({ servers: options.servers ?? {}, listen: { http: { enabled: true, port: 0 } } }, null, 2), { mode: 0o600 });
  if (options.identity) writeFileSync(join(paths.configDir, 'identity.json'), JSON.stringify(options.identity, null, 2), { mode: 0o600 });
  const registry = new ClientRegistry(join(paths.stateDir, 'clients.json'));
  const tokens = Object.fromEntries(Object.entries(options.clients ?? {}).map(([name, grant]) => [name, registry.add(name, grant)]));
  const managedDir = join(home, 'no-managed-settings');
  mkdirSync(managedDir, { recursive: true });
  const logs: string[] = [];
  const logger: Logger = { log: (level, event, fields) => logs.push(JSON.stringify({ level, event, ...fields })) };
  const notifications: string[] = [];
  const screen = new Screen();
  const keychain = options.keychain ?? new MemorySecretStore();
  const daemon = await startDaemon({
    paths,
    logger,
    env,
    secrets: keychain,
    managedDir,
    human: {
      terminal: screen,
      notifier: { notify: (title, body) => (notifications.push(`${title}\n${body}`), true) },
      ...(options.pairingDeadlineMs ? { pairingDeadlineMs: options.pairingDeadlineMs } : {}),
    },
    identity: { retry: { initialMs: 200, maxMs: 1000 } },
    ...(options.daemon ?? {}),
  });
  let seen = 0;
  return {
    home,
    paths,
    env,
    daemon,
    keychain,
    logs,
    notifications,
    screen,
    get questions() {
      return screen.questions();
    },
    async nextQuestion(title, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const shown = screen.questions();
        const index = shown.findIndex((q, i) => i >= seen && title.test(q.title));
        if (index >= 0) {
          seen = index + 1;
          return shown[index]!;
        }
        if (Date.now() > deadline) throw new Error(`no question matching ${title} within ${timeoutMs} ms; the terminal shows:\n${screen.text.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    tokens,
    async stop() {
      await daemon.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** An MCP client over `gatehouse connect` with exactly this environment (the keyring's bus address, a token). */
export async function connectBridgeWith(
  env: Record<string, string>,
  client: string,
): Promise<{ client: Client; stderr: () => string; close: () => Promise<void> }> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'connect', '--client', client], env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const mcp = new Client({ name: 'gatehouse-test', version: '1.0.0' }, { capabilities: {} });
  try {
    await mcp.connect(transport, { timeout: 60_000 });
  } catch (error) {
    await new Promise((r) => setTimeout(r, 200));
    await mcp.close().catch(() => undefined);
    throw new Error(`${stderr.trim() || '(no stderr)'} [client: ${(error as Error).message}]`);
  }
  return { client: mcp, stderr: () => stderr, close: () => mcp.close() };
}

/**
 * Answers a question on the question page as a person would: open the address the terminal shows,
 * type the code shown beside it, read the form, submit.
 */
export async function answer(question: ShownQuestion, fields: Record<string, string | string[]>): Promise<{ status: number; body: string; page: string }> {
  const person = new PagePerson(question);
  const status = await person.open();
  if (status !== 200) return { status, body: person.page, page: person.page };
  const token = /name="form" value="([^"]+)"/.exec(person.page)?.[1] ?? '';
  const form = new URLSearchParams({ form: token });
  for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) form.append(k, one);
  const res = await fetch(person.pageUrl, {
    method: 'POST',
    body: form,
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: person.origin },
  });
  return { status: res.status, body: await res.text(), page: person.page };
}
