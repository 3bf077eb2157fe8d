/**
 * The human channel headless, end to end (issue 10): `gatehouse daemon` on a real pseudo-terminal,
 * with the person's own rule "ask me before any refund" (unmanaged mode, no admin), the CRM
 * fixture, and an agent calling through `gatehouse connect`. The person answers by typing in the
 * daemon's terminal; the question page listens on the fixed port the config names; status says
 * where questions are answered and what this machine leaves open; and the state databases are
 * the user's alone.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/common/status.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { auditEvents, errorOf, executed } from './support/approvals.js';
import { closeAll, connectBridge, runGatehouse, bridgeEnv, textOf } from './support/clients.js';
import { REPO, eventually, makeHome, spawnOnTerminal, type TerminalDaemon } from './support/gatehouse.js';

const CRM = join(REPO, 'test', 'fixtures', 'crm-server.mjs');
let home: ReturnType<typeof makeHome>;
let scratch: string;
let callLog: string;
let daemon: TerminalDaemon;
let token: string;
let pagePort: number;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const status = () => callControl(home.paths.controlSocketPath, 'status', {}) as Promise<DaemonStatus>;
const refund = (client: Awaited<ReturnType<typeof connectBridge>>['client'], amount: number) =>
  client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount, currency: 'EUR' } }, { timeout: 60_000 });

beforeAll(async () => {
  home = makeHome('gh-human-');
  scratch = mkdtempSync(join(tmpdir(), 'gh-human-'));
  callLog = join(scratch, 'calls.jsonl');
  pagePort = await freePort();
  writeFileSync(
    home.paths.configFile,
    JSON.stringify({
      servers: { crm: { type: 'stdio', command: process.execPath, args: [CRM, '--log', callLog], sandbox: { write: [dirname(callLog)] } } },
      listen: { http: { enabled: false, port: 0 } },
      humanPage: { port: pagePort },
      approvals: { ask: ['crm__refund'], timeoutSeconds: 30 },
    }),
    { mode: 0o600 },
  );
  token = new ClientRegistry(join(home.paths.stateDir, 'clients.json')).add('ide', { scope: { kind: 'all' }, via: 'socket' });
  // An older Gatehouse left its quota database readable by everyone.
  writeFileSync(join(home.paths.stateDir, 'quotas.db'), '');
  chmodSync(join(home.paths.stateDir, 'quotas.db'), 0o644);
  daemon = spawnOnTerminal(['daemon'], home.env, home.paths);
  await eventually(async () => (await status().catch(() => undefined))?.servers.find((s) => s.name === 'crm' && s.state === 'ready'), 30_000, 'the CRM');
});
afterAll(async () => {
  await closeAll();
  await daemon?.stop();
  rmSync(home.home, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe("the person at the daemon's terminal", () => {
  it('sees the agent\'s refund with every fact, types "o", and only then does it run', async () => {
    const { client } = await connectBridge(home.env, { era: 'legacy', client: 'ide', token });
    const before = daemon.screen().length;
    const call = refund(client, 260);
    const block = await eventually(
      () => /Gatehouse asks \[(\d+)\]: Allow ide to call crm__refund\?[\s\S]*?─{72}/.exec(daemon.screen().slice(before))?.[0],
      15_000,
      'the question',
    );
    expect(block).toContain('Why you are asked: This call is one you asked to approve first in your Gatehouse config (approvals.ask: crm__refund)');
    expect(block).toContain('"amount": 260');
    expect(block).toContain('o = Allow once: this call only');
    expect(block).toMatch(new RegExp(`open http://127\\.0\\.0\\.1:${pagePort}/q/[\\w-]{16} and type the code [0-9A-Z]{4}-[0-9A-Z]{4}`));
    expect(executed(callLog)).toEqual([]);
    daemon.type('o');
    expect(textOf(await call)).toBe('refunded 260.00 EUR to Ada Lovelace');
    const decided = auditEvents(home.paths, 'approval.decided').at(-1)!;
    expect(decided).toMatchObject({ decision: 'allowed', approval: { decision: 'approved', scope: 'once', by: 'user' }, detail: { via: 'terminal' } });
  });

  it('declines by typing "d", and the agent hears why', async () => {
    const { client } = await connectBridge(home.env, { era: 'modern', client: 'ide', token });
    const before = daemon.screen().length;
    const call = errorOf(refund(client, 99));
    await eventually(() => daemon.screen().slice(before).includes('Allow ide to call crm__refund?'), 15_000, 'the question');
    daemon.type('d');
    expect((await call).message).toContain('the person at this computer declined');
    expect(executed(callLog).filter((c) => c.args.amount === 99)).toEqual([]);
  });
});

describe('what status says about the human channel', () => {
  it('names where questions are answered, and each door this kernel leaves open, with its fix', async () => {
    const s = await status();
    expect(s.humanChannel?.surfaces).toEqual(['terminal', 'question page']);
    // Read the kernel's settings independently: status must name exactly the doors they leave open.
    const sysctl = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined);
    const ptrace = sysctl('/proc/sys/kernel/yama/ptrace_scope');
    const tiocsti = sysctl('/proc/sys/dev/tty/legacy_tiocsti');
    const expected = [...(ptrace === undefined || ptrace === '0' ? ['ptrace'] : []), ...(tiocsti !== '0' ? ['tiocsti'] : [])];
    expect(s.humanChannel!.doors.map((d) => d.id).filter((id) => id === 'ptrace' || id === 'tiocsti')).toEqual(expected);
    const text = await runGatehouse(['status'], bridgeEnv(home.env));
    for (const door of s.humanChannel!.doors) expect(text.stdout).toContain(`  Fix: ${door.fix}.`);
  });
});

describe('the state databases', () => {
  it('are 0600, with their -wal and -shm files, including one an older version left 0644', async () => {
    const files = ['audit.db', 'approvals.db', 'quotas.db'].flatMap((db) => [db, `${db}-wal`, `${db}-shm`]).map((f) => join(home.paths.stateDir, f));
    for (const file of files) {
      expect(existsSync(file), file).toBe(true);
      expect((statSync(file).mode & 0o777).toString(8), file).toBe('600');
    }
  });
});
