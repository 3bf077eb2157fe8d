/**
 * A Gatehouse daemon for the identity, pairing and secrets tests: a throwaway home, a config with
 * the given servers, an optional identity.json, an in-memory (or real) keychain, and a human
 * channel whose questions the test answers on the real pairing page, over HTTP, as a person would.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ConfigInput } from '../../src/common/config.js';
import { MemorySecretStore, type SecretStore } from '../../src/core/secrets.js';
import type { Logger } from '../../src/core/ports.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import type { Announcement } from '../../src/node/identity/human-page.js';
import type { GatehousePaths } from '../../src/node/paths.js';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { BIN, makeHome } from '../integration/support/gatehouse.js';
import { TestBrowser } from './oidc-provider.js';

export const CANARY_SERVER = resolve(import.meta.dirname, '../fixtures/canary-server.mjs');

export interface IdentityHome {
  home: string;
  paths: GatehousePaths;
  env: NodeJS.ProcessEnv;
  daemon: Daemon;
  keychain: SecretStore;
  logs: string[];
  notifications: string[];
  /** Questions announced on the human channel, oldest first. */
  questions: Announcement[];
  /** Waits for the next question whose title matches. */
  nextQuestion(title: RegExp, timeoutMs?: number): Promise<Announcement>;
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
  const questions: Announcement[] = [];
  const waiters: (() => void)[] = [];
  const keychain = options.keychain ?? new MemorySecretStore();
  const daemon = await startDaemon({
    paths,
    logger,
    env,
    secrets: keychain,
    managedDir,
    human: {
      terminal: null,
      notifier: { notify: (title, body) => (notifications.push(`${title}\n${body}`), true) },
      announce: (a) => {
        questions.push(a);
        for (const w of waiters.splice(0)) w();
      },
      ...(options.pairingDeadlineMs ? { pairingDeadlineMs: options.pairingDeadlineMs } : {}),
    },
    identity: { retry: { initialMs: 200, maxMs: 1000 } },
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
    questions,
    async nextQuestion(title, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = questions.slice(seen).find((q) => title.test(q.title));
        if (found) {
          seen = questions.indexOf(found) + 1;
          return found;
        }
        if (Date.now() > deadline) throw new Error(`no question matching ${title} within ${timeoutMs} ms`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
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
export async function connectBridgeWith(env: Record<string, string>, client: string): Promise<{ client: Client; stderr: () => string; close: () => Promise<void> }> {
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

/** Answers a question on the pairing page as a person would: open the one-time link, read the form, submit. */
export async function answer(question: Announcement, fields: Record<string, string | string[]>, browser = new TestBrowser()): Promise<{ status: number; body: string; page: string }> {
  const opened = await browser.follow(question.url);
  if (!opened.res || opened.res.status !== 200) return { status: opened.res?.status ?? 0, body: opened.body, page: opened.body };
  const token = /name="form" value="([^"]+)"/.exec(opened.body)?.[1] ?? '';
  const form = new URLSearchParams({ form: token });
  for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) form.append(k, one);
  const origin = new URL(question.url).origin;
  const res = await browser.request(opened.url, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded', origin } });
  return { status: res.status, body: await res.text(), page: opened.body };
}
