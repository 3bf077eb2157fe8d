/**
 * A daemon that stops, or dies, while a call waits for approval: the call is never silently
 * allowed. Stopping refuses the request and audits it; a daemon killed with SIGKILL leaves it in
 * the journal, and the next start refuses and audits it. The daemon that is killed runs in a child
 * process (the built daemon from dist/, as `gatehouse daemon` runs it), so the test can kill it for
 * real. Issue 6.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/common/status.js';
import { callControl } from '../../src/node/control/control-client.js';
import { makeKey, sampleFiles, signFiles, type TestKey } from '../support/policy.js';
import { closeAll, connectBridge } from './support/clients.js';
import { eventually, REPO } from './support/gatehouse.js';
import { auditEvents, errorOf, executed, prepareHome, startApprovalGatehouse, untilCrmReady } from './support/approvals.js';

const SAM = { user: 'sam@example.com', groups: ['crm-support'] };
let scratch: string;
let callLog: string;
let root: TestKey;
let bundle: Buffer;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'gh-restart-'));
  callLog = join(scratch, 'calls.jsonl');
  root = await makeKey();
  bundle = await signFiles(sampleFiles({ crmArgs: ['--log', callLog] }), { version: 1, keys: [root] });
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
afterEach(closeAll);

const bigRefunds = () => executed(callLog).filter((c) => c.tool === 'refund' && (c.args.amount as number) > 100);

describe('when Gatehouse stops while a call waits for approval', () => {
  it('refuses the call, audits it, and leaves nothing waiting for the next start', async () => {
    const gh = await startApprovalGatehouse({ roots: [root], bundle, identity: SAM, timeoutMs: 60_000 });
    try {
      await untilCrmReady(gh);
      const { client } = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
      const call = errorOf(client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 250, currency: 'EUR' } }));
      const question = await gh.nextQuestion();
      const request = gh.status().approvals!.pending[0]!.id;
      await gh.halt();
      // The client hears the refusal, or loses the connection first; either way the call did not run.
      expect((await call).message).not.toBe('no error');
      const decided = auditEvents(gh.paths, 'approval.decided').filter((e) => (e.detail as { request: string }).request === request);
      expect(decided).toEqual([
        expect.objectContaining({
          decision: 'denied',
          approval: expect.objectContaining({ decision: 'denied' }),
          detail: expect.objectContaining({ refusal: 'stopping' }),
        }),
      ]);
      await gh.resume();
      expect(gh.status().approvals!.pending).toEqual([]);
      // Nothing was left in the journal: the next start refused nothing more.
      expect(auditEvents(gh.paths, 'approval.decided').filter((e) => (e.detail as { request: string }).request === request)).toHaveLength(1);
      await expect(fetch(question.url!)).rejects.toThrow();
      expect(bigRefunds()).toEqual([]);
    } finally {
      await gh.stop();
    }
  });
});

describe('when Gatehouse is killed while a call waits for approval', () => {
  let child: ChildProcess | undefined;
  let orphans: number[] = [];
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    for (const pid of orphans) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });

  it('refuses and audits it at the next start, and never runs it', async () => {
    const home = prepareHome({ roots: [root], bundle });
    const script = join(scratch, 'daemon-child.mjs');
    writeFileSync(
      script,
      `import { startDaemon } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist/src/node/daemon.js')).href)};
import { MemorySecretStore } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist/src/core/secrets.js')).href)};
const o = JSON.parse(process.argv[2]);
await startDaemon({
  paths: o.paths, env: { ...process.env, GATEHOUSE_HOME: o.home }, secrets: new MemorySecretStore(), managedDir: o.managedDir,
  testIdentity: o.identity, logger: { log() {} }, approvals: { timeoutMs: 60000 },
  human: { terminal: { write: (text) => process.stdout.write(JSON.stringify({ screen: text }) + '\\n') }, notifier: { notify: () => false }, notice: { notify() {} } },
});
process.stdout.write(JSON.stringify({ ready: true }) + '\\n');
setInterval(() => {}, 1 << 30);
`,
    );
    child = spawn(process.execPath, [script, JSON.stringify({ paths: home.paths, home: home.home, managedDir: home.managedDir, identity: SAM })], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
    await eventually(() => out.includes('"ready":true') || (child!.exitCode !== null && Promise.reject(new Error(err))), 30_000, 'the child daemon to start');
    const controlStatus = () => callControl(home.paths.controlSocketPath, 'status', {}) as Promise<DaemonStatus>;
    const crm = await eventually(
      async () => (await controlStatus()).servers.find((s) => s.name === 'crm' && s.state === 'ready'),
      20_000,
      'the CRM to be ready',
    );
    orphans = crm.pid ? [crm.pid] : [];

    const { client } = await connectBridge(home.env, { era: 'legacy', client: 'ide', token: home.tokens.ide! });
    const call = errorOf(client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-2', amount: 260, currency: 'EUR' } }));
    const screen = () =>
      out
        .split('\n')
        .filter((l) => l.includes('"screen"'))
        .map((l) => (JSON.parse(l) as { screen: string }).screen)
        .join('');
    const url = await eventually(
      () => /open (http:\/\/127\.0\.0\.1:\d+\/q\/[\w-]+) and type the code/.exec(screen())?.[1],
      10_000,
      'the question on the terminal',
    );
    const request = (await controlStatus()).approvals!.pending[0]!.id;

    child.kill('SIGKILL');
    await exited;
    expect((await call).message).not.toBe('no error');
    // The CRM child of the killed daemon ends with its stdin; make sure before going on.
    await eventually(() => orphans.every((pid) => !alive(pid)), 10_000, "the killed daemon's CRM server to exit");

    const gh = await startApprovalGatehouse({ roots: [root], bundle, identity: SAM, home });
    try {
      await untilCrmReady(gh);
      const decided = auditEvents(gh.paths, 'approval.decided').filter((e) => (e.detail as { request: string }).request === request);
      expect(decided).toEqual([
        expect.objectContaining({
          decision: 'denied',
          client: 'ide',
          name: 'refund',
          reason: expect.stringMatching(
            /^Gatehouse stopped while this request waited for approval \(asked .*\); it was never approved, and the call did not run$/,
          ),
        }),
      ]);
      expect(gh.logs.some((l) => l.includes('"approval.recovered"'))).toBe(true);
      // The call's attempt was on record; its outcome is now too: interrupted, not silently missing.
      const attempt = auditEvents(gh.paths, 'call.attempt').find((e) => e.name === 'refund' && e.client === 'ide');
      const outcome = auditEvents(gh.paths, 'call.outcome').filter((e) => e.callId === attempt?.callId);
      expect(outcome).toEqual([expect.objectContaining({ decision: 'interrupted', name: 'refund', reason: expect.stringMatching(/killed or crashed/) })]);
      expect(auditEvents(gh.paths, 'audit.started').at(-1)?.detail).toMatchObject({ interruptedCalls: 1 });
      expect(gh.status().approvals!.pending).toEqual([]);
      // The old one-time address leads nowhere: its page died with the daemon.
      await expect(fetch(url)).rejects.toThrow();
      expect(bigRefunds()).toEqual([]);
      // Restarting again refuses nothing more: the request was refused once.
      await gh.restart();
      expect(auditEvents(gh.paths, 'approval.decided').filter((e) => (e.detail as { request: string }).request === request)).toHaveLength(1);
    } finally {
      await gh.stop();
    }
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
