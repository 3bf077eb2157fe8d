import { afterEach, describe, expect, it, vi } from 'vitest';
import type { z } from 'zod';
import { ServerConfigSchema, type ServerConfig, type StdioServerSchema } from '../../src/common/config.js';
import type { ServerState, ServerStatus } from '../../src/common/status.js';
import type { LogLevel, ServerLogSink } from '../../src/core/ports.js';
import { LIFECYCLE_PREFIX, Supervisor, type SupervisorOptions } from '../../src/core/supervisor/supervisor.js';
import { FakeClock, flush } from './fakes/fake-clock.js';
import { FakeConnector, listsFor } from './fakes/fake-upstream.js';

type StdioInput = z.input<typeof StdioServerSchema>;

/** Short, jitter-free delays so the arithmetic in the tests is plain. */
const RESTART = {
  initialDelayMs: 100,
  maxDelayMs: 1_600,
  multiplier: 2,
  jitter: 0,
  crashLoopRestarts: 100,
  crashLoopWindowMs: 60_000,
};
const HEALTH = { intervalMs: 1_000, timeoutMs: 200, failuresBeforeRestart: 2 };

/** A stdio server config as the config file would give it, with the test's short delays as defaults. */
function server(
  overrides: Omit<Partial<StdioInput>, 'restart' | 'health'> & { restart?: StdioInput['restart']; health?: StdioInput['health'] } = {},
): ServerConfig {
  const { restart, health, ...rest } = overrides;
  return ServerConfigSchema.parse({
    type: 'stdio',
    command: 'node',
    args: ['server.js'],
    startupTimeoutMs: 5_000,
    restart: { ...RESTART, ...restart },
    health: { ...HEALTH, ...health },
    ...rest,
  } satisfies StdioInput);
}

interface Harness {
  clock: FakeClock;
  connector: FakeConnector;
  supervisor: Supervisor;
  logs: { level: LogLevel; event: string; fields?: Record<string, unknown> }[];
  states: { name: string; status: ServerStatus }[];
  listEvents: string[];
  onServerRequest: ReturnType<typeof vi.fn<SupervisorOptions['onServerRequest']>>;
  stateSeq(name: string): ServerState[];
}

const harnesses: Harness[] = [];

function harness(options: Partial<SupervisorOptions> = {}): Harness {
  const clock = new FakeClock();
  const connector = new FakeConnector(clock);
  const logs: Harness['logs'] = [];
  const onServerRequest = vi.fn<SupervisorOptions['onServerRequest']>(async () => ({ action: 'accept' }));
  const supervisor = new Supervisor({
    connector,
    clock,
    logger: { log: (level, event, fields) => logs.push({ level, event, ...(fields ? { fields } : {}) }) },
    random: () => 0,
    ringLines: 50,
    onServerRequest,
    ...options,
  });
  const states: Harness['states'] = [];
  const listEvents: string[] = [];
  supervisor.on('state', (name, status) => states.push({ name, status }));
  supervisor.on('lists', (name) => listEvents.push(name));
  const h: Harness = {
    clock,
    connector,
    supervisor,
    logs,
    states,
    listEvents,
    onServerRequest,
    stateSeq: (name) => states.filter((s) => s.name === name).map((s) => s.status.state),
  };
  harnesses.push(h);
  return h;
}

afterEach(async () => {
  // Every test must be able to end cleanly: nothing running, no timer left.
  for (const h of harnesses.splice(0)) {
    await h.supervisor.stopAll();
    expect(h.clock.pending).toBe(0);
    expect(h.connector.open()).toEqual([]);
  }
});

function state(h: Harness, name: string): ServerState | undefined {
  return h.supervisor.status(name)?.state;
}

describe('Supervisor.apply', () => {
  it('starts every new server and reports it ready with its counts, pid, protocol and server info', async () => {
    const h = harness();
    const result = await h.supervisor.apply({ memory: server(), files: server({ command: 'files' }) });

    expect(result).toEqual({ added: ['memory', 'files'], removed: [], restarted: [], unchanged: [] });
    const status = h.supervisor.status('memory');
    const connection = h.connector.last('memory');
    expect(status).toEqual({
      name: 'memory',
      type: 'stdio',
      enabled: true,
      state: 'ready',
      restarts: 0,
      pid: connection.pid,
      protocolVersion: '2025-06-18',
      serverInfo: { name: 'fake-memory', version: '1.0.0' },
      counts: { tools: 1, resources: 1, resourceTemplates: 0, prompts: 1 },
      readySince: new Date(h.clock.now()).toISOString(),
    });
    expect(h.supervisor.statuses().map((s) => s.name)).toEqual(['memory', 'files']);
    expect(h.stateSeq('memory')).toEqual(['starting', 'ready']);
  });

  it('starts servers in parallel: a slow server does not delay a fast one', async () => {
    const h = harness();
    h.connector.plan('slow', { kind: 'ok', delayMs: 3_000 });
    let applied = false;
    const applying = h.supervisor.apply({ slow: server(), fast: server() }).then((r) => {
      applied = true;
      return r;
    });
    await flush();

    expect(h.connector.attempts.map((a) => a.name).sort()).toEqual(['fast', 'slow']);
    expect(state(h, 'fast')).toBe('ready');
    expect(state(h, 'slow')).toBe('starting');
    expect(applied).toBe(false);

    await h.clock.advance(3_000);
    expect(state(h, 'slow')).toBe('ready');
    await applying;
    expect(applied).toBe(true);
  });

  it('keeps an unchanged server running on the very same connection, and restarts only the changed one', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server(), files: server({ command: 'files' }) });
    const memory = h.supervisor.connection('memory');
    const oldFiles = h.connector.last('files');

    // The same settings in a new object with its keys in another order are not a change.
    const sameMemory = Object.fromEntries(Object.entries(server()).reverse()) as ServerConfig;
    const result = await h.supervisor.apply({ memory: sameMemory, files: server({ command: 'files', args: ['--verbose'] }) });

    expect(result).toEqual({ added: [], removed: [], restarted: ['files'], unchanged: ['memory'] });
    expect(h.supervisor.connection('memory')).toBe(memory);
    expect(h.connector.connections('memory')).toHaveLength(1);
    expect(oldFiles.closeCalls).toBe(1);
    expect(h.connector.last('files')).not.toBe(oldFiles);
    expect(h.connector.attemptsFor('files')[1]?.config).toMatchObject({ args: ['--verbose'] });
    expect(state(h, 'files')).toBe('ready');
  });

  it('stops and forgets a removed server', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server(), files: server() });
    const files = h.connector.last('files');

    const result = await h.supervisor.apply({ memory: server() });

    expect(result.removed).toEqual(['files']);
    expect(files.closeCalls).toBe(1);
    expect(h.supervisor.status('files')).toBeUndefined();
    expect(h.supervisor.names()).toEqual(['memory']);
    expect(h.listEvents.filter((n) => n === 'files')).toEqual(['files', 'files']); // came, went
  });

  it('leaves a server with enabled: false stopped, and stops a running one that becomes disabled', async () => {
    const h = harness();
    await h.supervisor.apply({ off: server({ enabled: false }), on: server() });
    expect(state(h, 'off')).toBe('stopped');
    expect(h.connector.attemptsFor('off')).toHaveLength(0);

    const on = h.connector.last('on');
    const result = await h.supervisor.apply({ off: server({ enabled: false }), on: server({ enabled: false }) });
    expect(result).toEqual({ added: [], removed: [], restarted: ['on'], unchanged: ['off'] });
    expect(state(h, 'on')).toBe('stopped');
    expect(on.closeCalls).toBe(1);

    await h.supervisor.apply({ off: server(), on: server({ enabled: false }) });
    expect(state(h, 'off')).toBe('ready');
  });

  it('leaves a backing-off server to its timer when its config is unchanged, and restarts it at once when it changed', async () => {
    const h = harness();
    h.connector.always('flaky', { kind: 'reject', message: 'spawn ENOENT' });
    await h.supervisor.apply({ flaky: server() });
    expect(state(h, 'flaky')).toBe('backing-off');

    await h.supervisor.apply({ flaky: server() });
    expect(state(h, 'flaky')).toBe('backing-off');
    expect(h.connector.attemptsFor('flaky')).toHaveLength(1);
    expect(h.clock.pending).toBe(1);

    h.connector.always('flaky', { kind: 'ok' });
    const result = await h.supervisor.apply({ flaky: server({ command: 'fixed' }) });
    expect(result.restarted).toEqual(['flaky']);
    expect(state(h, 'flaky')).toBe('ready');
    expect(h.connector.attemptsFor('flaky')).toHaveLength(2);
    expect(h.clock.pending).toBe(1); // the health check only; the old restart timer is gone
  });

  it('settles two apply() calls in a row on the configuration of the last one', async () => {
    const h = harness();
    // Removed before its attempt began: it never connects at all.
    const first = h.supervisor.apply({ slow: server() });
    const second = h.supervisor.apply({});
    expect((await first).added).toEqual(['slow']);
    expect((await second).removed).toEqual(['slow']);
    expect(h.connector.attempts).toHaveLength(0);

    // Changed while its connect is in flight: that connect is aborted, the new config wins.
    h.connector.plan('slow', { kind: 'hang' });
    const third = h.supervisor.apply({ slow: server() });
    await flush();
    const fourth = h.supervisor.apply({ slow: server({ command: 'other' }) });
    expect((await third).added).toEqual(['slow']);
    expect((await fourth).restarted).toEqual(['slow']);
    expect(h.connector.attemptsFor('slow')[0]?.signal.aborted).toBe(true);
    expect(h.connector.last('slow')).toBeDefined();
    expect(h.connector.attemptsFor('slow')[1]?.config).toMatchObject({ command: 'other' });
    expect(state(h, 'slow')).toBe('ready');
    expect(h.connector.open()).toHaveLength(1);
  });

  it('starts a server added again under a removed name only after the old one has closed', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const old = h.connector.last('memory');
    old.holdClose = true;

    void h.supervisor.apply({});
    const again = h.supervisor.apply({ memory: server() });
    await flush();
    expect(h.connector.attemptsFor('memory')).toHaveLength(1);
    expect(state(h, 'memory')).toBe('starting');

    old.releaseClose();
    await again;
    expect(h.connector.attemptsFor('memory')).toHaveLength(2);
    expect(state(h, 'memory')).toBe('ready');
  });
});

describe('failed starts', () => {
  it('treats a connector that throws synchronously as a failed start', async () => {
    const h = harness();
    h.connector.plan('broken', { kind: 'throw', message: 'bad config' });
    await h.supervisor.apply({ broken: server() });

    expect(h.supervisor.status('broken')).toMatchObject({
      state: 'backing-off',
      lastError: 'failed to start: bad config',
      nextAttemptAt: new Date(h.clock.now() + 100).toISOString(),
    });
    await h.clock.advance(100);
    expect(state(h, 'broken')).toBe('ready');
  });

  it('treats a rejected connect as a failed start', async () => {
    const h = harness();
    h.connector.plan('broken', { kind: 'reject', message: 'spawn node ENOENT' });
    await h.supervisor.apply({ broken: server() });
    expect(h.supervisor.status('broken')).toMatchObject({ state: 'backing-off', lastError: 'failed to start: spawn node ENOENT' });
  });

  it('gives up on a connect that takes longer than startupTimeoutMs, and aborts it', async () => {
    const h = harness();
    h.connector.plan('stuck', { kind: 'hang' });
    void h.supervisor.apply({ stuck: server() });
    await flush();
    const attempt = h.connector.attemptsFor('stuck')[0];

    await h.clock.advance(4_999);
    expect(state(h, 'stuck')).toBe('starting');
    expect(attempt?.signal.aborted).toBe(false);

    await h.clock.advance(1);
    expect(attempt?.signal.aborted).toBe(true);
    expect(h.supervisor.status('stuck')).toMatchObject({ state: 'backing-off', lastError: 'did not start within 5000 ms' });
  });

  it('times out even a connector that ignores the abort, and closes the connection it hands back late', async () => {
    const h = harness();
    h.connector.plan('deaf', { kind: 'ok', delayMs: 6_000, ignoreAbort: true });
    void h.supervisor.apply({ deaf: server() });
    await h.clock.advance(5_000);
    expect(state(h, 'deaf')).toBe('backing-off');

    await h.supervisor.stop('deaf');
    await h.clock.advance(1_000);
    const late = h.connector.connections('deaf')[0];
    expect(late?.closeCalls).toBe(1);
    expect(state(h, 'deaf')).toBe('stopped');
  });

  it('treats a server that exits during startup as a failed start, whatever its exit code', async () => {
    const h = harness();
    h.connector.plan('quits', { kind: 'ok', setup: (c) => (c.holdListAll = true) });
    void h.supervisor.apply({ quits: server() });
    await flush();
    h.connector.last('quits').exitCleanly('exited with code 0');
    await flush();

    expect(h.supervisor.status('quits')).toMatchObject({
      state: 'backing-off',
      lastError: 'failed to start: exited during startup: exited with code 0',
    });
  });

  it('treats a failing first listing as a failed start, and closes the connection', async () => {
    const h = harness();
    h.connector.plan('nolist', { kind: 'ok', setup: (c) => (c.listAllError = 'Method not found') });
    await h.supervisor.apply({ nolist: server() });

    expect(h.supervisor.status('nolist')?.lastError).toContain('could not list its tools, resources and prompts: Method not found');
    expect(h.connector.connections('nolist')[0]?.closeCalls).toBe(1);
  });

  it('never lets a rejected or throwing connector escape as an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const h = harness();
      h.connector.always('a', { kind: 'throw' }).always('b', { kind: 'reject' }).always('c', { kind: 'hang' });
      void h.supervisor.apply({ a: server(), b: server(), c: server() });
      for (let i = 0; i < 10; i++) await h.clock.advance(1_600);
      expect(h.connector.attemptsFor('a').length).toBeGreaterThan(3);
      expect(h.connector.attemptsFor('c').length).toBeGreaterThan(1);
      await h.supervisor.stopAll();
      await flush();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});

describe('restarts and backoff', () => {
  it('restarts a crashed server after a backoff that grows with each crash', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });

    for (const delay of [100, 200, 400]) {
      const before = h.connector.last('memory');
      before.crash('exited with code 1');
      await flush();
      expect(h.supervisor.status('memory')).toMatchObject({
        state: 'backing-off',
        lastError: 'exited: exited with code 1',
        nextAttemptAt: new Date(h.clock.now() + delay).toISOString(),
      });
      await h.clock.advance(delay - 1);
      expect(state(h, 'memory')).toBe('backing-off');
      await h.clock.advance(1);
      expect(state(h, 'memory')).toBe('ready');
      expect(h.connector.last('memory')).not.toBe(before);
    }
    expect(h.supervisor.status('memory')?.restarts).toBe(3);
  });

  it('never waits longer than maxDelayMs between restarts', async () => {
    const h = harness();
    h.connector.always('down', { kind: 'reject' });
    await h.supervisor.apply({ down: server() });

    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      delays.push(Date.parse(h.supervisor.status('down')?.nextAttemptAt ?? '') - h.clock.now());
      await h.clock.runNext();
    }
    expect(delays).toEqual([100, 200, 400, 800, 1_600, 1_600, 1_600]);
  });

  it('draws jitter from the random source given to the supervisor', async () => {
    const h = harness({ random: () => 0.5 });
    h.connector.always('down', { kind: 'reject' });
    await h.supervisor.apply({ down: server({ restart: { jitter: 0.5 } }) });
    // 100 ms less half of the 50% jitter share.
    expect(h.clock.pendingDelays()).toEqual([75]);
  });

  it('marks a server crash-looping after crashLoopRestarts restarts within the window, then retries every maxDelayMs', async () => {
    const h = harness();
    h.connector.always('loop', { kind: 'reject', message: 'boom' });
    await h.supervisor.apply({ loop: server({ restart: { crashLoopRestarts: 3 } }) });

    const seen: { state: ServerState | undefined; delay: number[] }[] = [];
    for (let i = 0; i < 6; i++) {
      seen.push({ state: state(h, 'loop'), delay: h.clock.pendingDelays() });
      await h.clock.runNext();
    }
    expect(seen).toEqual([
      { state: 'backing-off', delay: [100] },
      { state: 'backing-off', delay: [200] },
      { state: 'backing-off', delay: [400] },
      { state: 'crash-looping', delay: [1_600] },
      { state: 'crash-looping', delay: [1_600] },
      { state: 'crash-looping', delay: [1_600] },
    ]);
    expect(h.connector.attemptsFor('loop')).toHaveLength(7);
    expect(h.supervisor.status('loop')?.lastError).toBe('failed to start: boom');
    expect(h.logs.some((l) => l.event === 'server.crash_looping' && l.level === 'error')).toBe(true);
  });

  it('does not count restarts that fell out of the crash-loop window', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server({ restart: { crashLoopRestarts: 2, crashLoopWindowMs: 10_000 } }) });
    for (let i = 0; i < 4; i++) {
      h.connector.last('memory').crash();
      await flush();
      expect(state(h, 'memory')).toBe('backing-off');
      await h.clock.runNext();
      await h.clock.advance(9_000); // ready, but shorter than the window
    }
  });

  it('starts the backoff over once the server has stayed ready for a whole crash-loop window', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server({ restart: { crashLoopRestarts: 3 } }) });
    for (const delay of [100, 200, 400]) {
      h.connector.last('memory').crash();
      await flush();
      expect(h.clock.pendingDelays()).toContain(delay);
      await h.clock.advance(delay);
    }
    // Three quick restarts: the next crash would mark it crash-looping. Instead it stays up.
    await h.clock.advance(60_000);
    h.connector.last('memory').crash();
    await flush();
    expect(state(h, 'memory')).toBe('backing-off');
    expect(h.clock.pendingDelays()).toEqual([100]);
  });

  it('keeps growing the backoff for a server that crashes before it was stable', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    h.connector.last('memory').crash();
    await h.clock.advance(100);
    await h.clock.advance(59_999);
    h.connector.last('memory').crash();
    await flush();
    expect(h.clock.pendingDelays()).toEqual([200]);
  });

  it('restart() starts afresh with the backoff and crash-loop history cleared', async () => {
    const h = harness();
    h.connector.always('loop', { kind: 'reject' });
    await h.supervisor.apply({ loop: server({ restart: { crashLoopRestarts: 1 } }) });
    await h.clock.runNext();
    expect(state(h, 'loop')).toBe('crash-looping');

    h.connector.always('loop', { kind: 'ok' });
    await h.supervisor.restart('loop');
    expect(h.supervisor.status('loop')).toMatchObject({ state: 'ready', restarts: 2 });
    expect(h.supervisor.status('loop')?.lastError).toBeUndefined();

    h.connector.last('loop').crash();
    await flush();
    expect(state(h, 'loop')).toBe('backing-off');
    expect(h.clock.pendingDelays()).toEqual([100]);
  });

  it('start() on a backing-off server tries at once instead of waiting for the timer', async () => {
    const h = harness();
    h.connector.plan('flaky', { kind: 'reject' });
    await h.supervisor.apply({ flaky: server() });
    expect(state(h, 'flaky')).toBe('backing-off');

    await h.supervisor.start('flaky');
    expect(state(h, 'flaky')).toBe('ready');
    expect(h.clock.pendingDelays()).toEqual([1_000]); // the health check, not the restart timer
  });
});

describe('remote servers that need sign-in', () => {
  it('waits in needs-sign-in, naming the command, without scheduling a retry', async () => {
    const h = harness();
    h.connector.plan('notes', { kind: 'sign-in' });
    await h.supervisor.apply({ notes: server() });
    expect(h.supervisor.status('notes')).toMatchObject({
      state: 'needs-sign-in',
      lastError: 'server "notes" needs you to sign in: run `gatehouse servers login notes`',
    });
    expect(h.supervisor.status('notes')?.nextAttemptAt).toBeUndefined();
    await h.clock.advance(60_000);
    expect(h.connector.attemptsFor('notes')).toHaveLength(1);
    expect(h.logs.map((l) => l.event)).toContain('server.needs_sign_in');
  });

  it('starts again at once when asked (a sign-in completed), with no backoff carried over', async () => {
    const h = harness();
    h.connector.plan('notes', { kind: 'sign-in' });
    await h.supervisor.apply({ notes: server() });
    await h.supervisor.restart('notes');
    expect(state(h, 'notes')).toBe('ready');
  });

  it('parks a ready server whose sign-in the remote side refused, instead of restarting it in a loop', async () => {
    const h = harness();
    await h.supervisor.apply({ notes: server() });
    h.connector.always('notes', { kind: 'sign-in' });
    h.connector.last('notes').signInLost();
    await flush();
    expect(h.supervisor.status('notes')).toMatchObject({ state: 'needs-sign-in', restarts: 0 });
    await h.clock.advance(60_000);
    expect(h.connector.attemptsFor('notes')).toHaveLength(1);
    expect(h.stateSeq('notes')).toEqual(['starting', 'ready', 'needs-sign-in']);
  });
});

describe('restart modes', () => {
  it('leaves a server stopped after a crash when its mode is never, recording why', async () => {
    const h = harness();
    await h.supervisor.apply({ once: server({ restart: { mode: 'never' } }) });
    h.connector.last('once').crash('killed by SIGSEGV');
    await flush();

    expect(h.supervisor.status('once')).toMatchObject({ state: 'stopped', lastError: 'exited: killed by SIGSEGV' });
    expect(h.clock.pending).toBe(0);
    expect(h.supervisor.logs('once')).toContain(`${LIFECYCLE_PREFIX}not restarting (restart mode "never")`);
  });

  it('does not retry a failed start when its mode is never', async () => {
    const h = harness();
    h.connector.plan('once', { kind: 'reject', message: 'ENOENT' });
    await h.supervisor.apply({ once: server({ restart: { mode: 'never' } }) });
    expect(h.supervisor.status('once')).toMatchObject({ state: 'stopped', lastError: 'failed to start: ENOENT' });
    expect(h.connector.attemptsFor('once')).toHaveLength(1);
  });

  it('leaves a server stopped after a clean exit when its mode is on-failure', async () => {
    const h = harness();
    await h.supervisor.apply({ job: server({ restart: { mode: 'on-failure' } }) });
    h.connector.last('job').exitCleanly();
    await flush();
    expect(h.supervisor.status('job')).toMatchObject({ state: 'stopped', lastError: 'exited: exited with code 0' });
    expect(h.clock.pending).toBe(0);
  });

  it('restarts a server after a crash when its mode is on-failure', async () => {
    const h = harness();
    await h.supervisor.apply({ job: server({ restart: { mode: 'on-failure' } }) });
    h.connector.last('job').crash();
    await h.clock.advance(100);
    expect(state(h, 'job')).toBe('ready');
  });

  it('restarts a server even after a clean exit when its mode is always', async () => {
    const h = harness();
    await h.supervisor.apply({ daemon: server({ restart: { mode: 'always' } }) });
    h.connector.last('daemon').exitCleanly();
    await flush();
    expect(state(h, 'daemon')).toBe('backing-off');
    await h.clock.advance(100);
    expect(h.supervisor.status('daemon')).toMatchObject({ state: 'ready', restarts: 1 });
  });
});

describe('health checks', () => {
  it('pings a ready server every intervalMs', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const connection = h.connector.last('memory');
    await h.clock.advance(3_000);
    expect(connection.pings).toBe(3);
    expect(state(h, 'memory')).toBe('ready');
  });

  it('restarts a server that fails failuresBeforeRestart pings in a row, saying it stopped answering', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const sick = h.connector.last('memory');
    sick.pingBehaviour = 'fail';

    await h.clock.advance(1_000);
    expect(state(h, 'memory')).toBe('ready');
    await h.clock.advance(1_000);
    expect(h.supervisor.status('memory')).toMatchObject({ state: 'backing-off' });
    expect(h.supervisor.status('memory')?.lastError).toMatch(/^stopped answering pings \(2 failed in a row; last: ping refused\)$/);
    expect(sick.closeCalls).toBe(1);

    await h.clock.advance(100);
    expect(state(h, 'memory')).toBe('ready');
    expect(h.connector.last('memory')).not.toBe(sick);
  });

  it('counts a ping with no answer within timeoutMs as failed', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server({ health: { failuresBeforeRestart: 1 } }) });
    h.connector.last('memory').pingBehaviour = 'hang';

    await h.clock.advance(1_000 + 199);
    expect(state(h, 'memory')).toBe('ready');
    await h.clock.advance(1);
    expect(h.supervisor.status('memory')?.lastError).toContain('no answer within 200 ms');
  });

  it('forgives a failed ping when the next one succeeds', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const connection = h.connector.last('memory');
    for (const behaviour of ['fail', 'ok', 'fail', 'ok', 'fail'] as const) {
      connection.pingBehaviour = behaviour;
      await h.clock.advance(1_000);
    }
    expect(state(h, 'memory')).toBe('ready');
    expect(h.supervisor.connection('memory')).toBe(connection);
  });

  it('puts a server that stops answering pings under mode never into stopped', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server({ restart: { mode: 'never' }, health: { failuresBeforeRestart: 1 } }) });
    h.connector.last('memory').pingBehaviour = 'fail';
    await h.clock.advance(1_000);
    expect(h.supervisor.status('memory')).toMatchObject({ state: 'stopped' });
    expect(h.supervisor.status('memory')?.lastError).toContain('stopped answering pings');
    expect(h.connector.open()).toEqual([]);
  });
});

describe('lists', () => {
  it('caches the lists after connecting and gives them, and the connection, only while ready', async () => {
    const h = harness();
    h.connector.plan('memory', { kind: 'ok', delayMs: 10 });
    void h.supervisor.apply({ memory: server() });
    await flush();
    expect(h.supervisor.lists('memory')).toBeUndefined();
    expect(h.supervisor.connection('memory')).toBeUndefined();

    await h.clock.advance(10);
    expect(h.supervisor.lists('memory')).toEqual(listsFor('memory'));
    expect(h.supervisor.connection('memory')).toBe(h.connector.last('memory'));

    h.connector.last('memory').crash();
    await flush();
    expect(h.supervisor.lists('memory')).toBeUndefined();
    expect(h.supervisor.connection('memory')).toBeUndefined();
    expect(h.supervisor.status('memory')?.counts).toEqual({ tools: 0, resources: 0, resourceTemplates: 0, prompts: 0 });
    expect(h.supervisor.lists('nobody')).toBeUndefined();
  });

  it('announces lists when a server reaches ready and when it leaves it', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    expect(h.listEvents).toEqual(['memory']);
    await h.supervisor.stop('memory');
    expect(h.listEvents).toEqual(['memory', 'memory']);
  });

  it('fetches the lists again when the server says they changed, and announces it', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const connection = h.connector.last('memory');
    connection.lists = listsFor('memory', 3);
    connection.listChanged('tools');
    await flush();

    expect(h.supervisor.lists('memory')?.tools).toHaveLength(3);
    expect(h.supervisor.status('memory')?.counts.tools).toBe(3);
    expect(h.listEvents).toEqual(['memory', 'memory']);
  });

  it('coalesces a burst of list changes into one fetch in flight and one after it', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const connection = h.connector.last('memory');
    connection.holdListAll = true;
    expect(connection.listAllCalls).toBe(1);

    for (const kind of ['tools', 'prompts', 'resources', 'tools', 'tools'] as const) connection.listChanged(kind);
    await flush();
    expect(connection.listAllCalls).toBe(2);

    connection.lists = listsFor('memory', 2);
    connection.releaseListAll();
    await flush();
    expect(connection.listAllCalls).toBe(3);
    expect(connection.heldListAlls).toBe(1);

    connection.lists = listsFor('memory', 5);
    connection.releaseListAll();
    await flush();
    expect(connection.listAllCalls).toBe(3);
    expect(h.supervisor.lists('memory')?.tools).toHaveLength(5);
  });

  it('fetches once more after startup when the lists changed while the first fetch was in flight', async () => {
    const h = harness();
    h.connector.plan('memory', { kind: 'ok', setup: (c) => (c.holdListAll = true) });
    void h.supervisor.apply({ memory: server() });
    await flush();
    const connection = h.connector.last('memory');
    connection.listChanged('tools');
    connection.listChanged('tools');
    connection.releaseListAll();
    await flush();
    expect(state(h, 'memory')).toBe('ready');
    expect(connection.listAllCalls).toBe(2);
    connection.releaseListAll();
    await flush();
    expect(connection.listAllCalls).toBe(2);
  });

  it('keeps the cached lists when fetching them again fails', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const connection = h.connector.last('memory');
    connection.listAllError = 'timeout';
    connection.listChanged('tools');
    await flush();
    expect(h.supervisor.lists('memory')).toEqual(listsFor('memory'));
    expect(state(h, 'memory')).toBe('ready');
    expect(h.logs.some((l) => l.event === 'server.list_failed')).toBe(true);
  });

  it('passes on resource updates with the server name', async () => {
    const h = harness();
    const updates: [string, string][] = [];
    h.supervisor.on('resourceUpdated', (name, uri) => updates.push([name, uri]));
    await h.supervisor.apply({ memory: server() });
    h.connector.last('memory').events.resourceUpdated('mem://memory/readme');
    expect(updates).toEqual([['memory', 'mem://memory/readme']]);
  });

  it('routes server-to-client requests to onServerRequest with the server name', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const signal = new AbortController().signal;
    const answer = await h.connector.last('memory').events.serverRequest('elicitation/create', { message: 'ok?' }, signal);
    expect(answer).toEqual({ action: 'accept' });
    expect(h.onServerRequest).toHaveBeenCalledWith('memory', 'elicitation/create', { message: 'ok?' }, signal);
  });

  it('refuses server-to-client requests from a connection that has ended', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const old = h.connector.last('memory');
    await h.supervisor.stop('memory');
    await expect(old.events.serverRequest('roots/list', undefined, new AbortController().signal)).rejects.toThrow(/no longer connected/);
    expect(h.onServerRequest).not.toHaveBeenCalled();
  });
});

describe('stop, start and stopAll', () => {
  it('aborts the connect in flight when a server is stopped during start', async () => {
    const h = harness();
    h.connector.plan('slow', { kind: 'hang' });
    const applying = h.supervisor.apply({ slow: server() });
    await flush();
    const attempt = h.connector.attemptsFor('slow')[0];

    await h.supervisor.stop('slow');
    await applying;
    expect(attempt?.signal.aborted).toBe(true);
    expect(state(h, 'slow')).toBe('stopped');
    expect(h.clock.pending).toBe(0);
    expect(h.stateSeq('slow')).toEqual(['starting', 'stopped']);
  });

  it('closes a connection that the connector hands back after the server was stopped', async () => {
    const h = harness();
    h.connector.plan('slow', { kind: 'ok', delayMs: 50, ignoreAbort: true });
    void h.supervisor.apply({ slow: server() });
    await flush();
    await h.supervisor.stop('slow');
    await h.clock.advance(50);
    expect(h.connector.connections('slow')[0]?.closeCalls).toBe(1);
    expect(state(h, 'slow')).toBe('stopped');
  });

  it('stays stopped when the server crashes while it is being closed', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server({ restart: { mode: 'always' } }) });
    const connection = h.connector.last('memory');
    connection.holdClose = true;

    const stopping = h.supervisor.stop('memory');
    await flush();
    connection.crash('killed by SIGKILL');
    await stopping;
    await flush();
    expect(state(h, 'memory')).toBe('stopped');
    expect(h.supervisor.status('memory')?.lastError).toBeUndefined();
    expect(h.clock.pending).toBe(0);
  });

  it('cancels a pending restart when a backing-off server is stopped', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    h.connector.last('memory').crash();
    await flush();
    expect(h.clock.pending).toBe(1);

    await h.supervisor.stop('memory');
    expect(h.clock.pending).toBe(0);
    expect(h.supervisor.status('memory')?.nextAttemptAt).toBeUndefined();
    await h.clock.advance(10_000);
    expect(h.connector.connections('memory')).toHaveLength(1);
  });

  it('does not fail a stop because close() rejected', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    h.connector.last('memory').closeError = 'EPIPE';
    await h.supervisor.stop('memory');
    expect(state(h, 'memory')).toBe('stopped');
    expect(h.logs.some((l) => l.event === 'server.close_failed')).toBe(true);
  });

  it('start() on a running server keeps its connection', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    const connection = h.supervisor.connection('memory');
    await h.supervisor.start('memory');
    expect(h.supervisor.connection('memory')).toBe(connection);
  });

  it('stopAll() stops every server in parallel and leaves no timer and no connection behind', async () => {
    const h = harness();
    h.connector.always('hung', { kind: 'hang' });
    h.connector.always('down', { kind: 'reject' });
    h.connector.always('looping', { kind: 'reject' });
    await h.supervisor.apply({
      ready: server(),
      slowclose: server(),
      down: server(),
      looping: server({ restart: { crashLoopRestarts: 1 } }),
    });
    void h.supervisor.apply({
      ready: server(),
      slowclose: server(),
      down: server(),
      looping: server({ restart: { crashLoopRestarts: 1 } }),
      hung: server(),
    });
    await h.clock.runNext();
    await h.clock.runNext();
    const slow = h.connector.last('slowclose');
    slow.holdClose = true;
    expect(h.supervisor.statuses().map((s) => [s.name, s.state])).toEqual([
      ['ready', 'ready'],
      ['slowclose', 'ready'],
      ['down', 'backing-off'],
      ['looping', 'crash-looping'],
      ['hung', 'starting'],
    ]);

    let done = false;
    const stopping = h.supervisor.stopAll().then(() => (done = true));
    await flush();
    // The held close does not keep the others from closing.
    expect(h.connector.last('ready').ended).toBe(true);
    expect(done).toBe(false);
    slow.releaseClose();
    await stopping;

    expect(h.supervisor.statuses().every((s) => s.state === 'stopped')).toBe(true);
    expect(h.clock.pending).toBe(0);
    expect(h.connector.open()).toEqual([]);
    expect(h.connector.attemptsFor('hung')[0]?.signal.aborted).toBe(true);
  });

  it('rejects commands for a server that is not configured', async () => {
    const h = harness();
    await expect(h.supervisor.start('ghost')).rejects.toMatchObject({ code: 'unknown_server' });
    await expect(h.supervisor.stop('ghost')).rejects.toMatchObject({ code: 'unknown_server' });
    await expect(h.supervisor.restart('ghost')).rejects.toMatchObject({ code: 'unknown_server' });
    expect(h.supervisor.status('ghost')).toBeUndefined();
    expect(h.supervisor.logs('ghost')).toBeUndefined();
  });

  it('refuses to start a server that its configuration disables', async () => {
    const h = harness();
    await h.supervisor.apply({ off: server({ enabled: false }) });
    await expect(h.supervisor.start('off')).rejects.toMatchObject({ code: 'server_disabled' });
    await expect(h.supervisor.restart('off')).rejects.toMatchObject({ code: 'server_disabled' });
    expect(h.connector.attempts).toHaveLength(0);
  });

  it('leaves no timer behind when a listener stops the server as it becomes ready', async () => {
    const h = harness();
    h.supervisor.on('state', (name, status) => {
      if (status.state === 'ready') void h.supervisor.stop(name);
    });
    await h.supervisor.apply({ memory: server() });
    await flush();
    expect(state(h, 'memory')).toBe('stopped');
    expect(h.clock.pending).toBe(0);
    expect(h.connector.open()).toEqual([]);
  });

  it('keeps running when a listener throws', async () => {
    const h = harness();
    h.supervisor.on('state', () => {
      throw new Error('listener bug');
    });
    await h.supervisor.apply({ memory: server() });
    expect(state(h, 'memory')).toBe('ready');
    expect(h.logs.some((l) => l.event === 'supervisor.listener_failed')).toBe(true);
  });
});

describe('state events', () => {
  it('carries lastError and nextAttemptAt with each change', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    h.connector.last('memory').crash('exited with code 3');
    await flush();
    await h.clock.advance(100);

    const seen = h.states.map((s) => ({ state: s.status.state, lastError: s.status.lastError, nextAttemptAt: s.status.nextAttemptAt }));
    const t0 = new Date(h.clock.now() - 100).toISOString();
    expect(seen).toEqual([
      { state: 'starting', lastError: undefined, nextAttemptAt: undefined },
      { state: 'ready', lastError: undefined, nextAttemptAt: undefined },
      { state: 'backing-off', lastError: 'exited: exited with code 3', nextAttemptAt: new Date(Date.parse(t0) + 100).toISOString() },
      { state: 'starting', lastError: 'exited: exited with code 3', nextAttemptAt: undefined },
      { state: 'ready', lastError: 'exited: exited with code 3', nextAttemptAt: undefined },
    ]);
  });
});

describe('logs', () => {
  it('keeps the last ringLines lines of each server apart', async () => {
    const h = harness({ ringLines: 10 });
    await h.supervisor.apply({ a: server(), b: server() });
    for (let i = 0; i < 25; i++) h.connector.last('a').stderr(`a line ${i}`);
    h.connector.last('b').stderr('b only');

    expect(h.supervisor.logs('a')).toHaveLength(10);
    expect(h.supervisor.logs('a')?.at(-1)).toBe('a line 24');
    expect(h.supervisor.logs('a', 3)).toEqual(['a line 22', 'a line 23', 'a line 24']);
    expect(h.supervisor.logs('b', 1)).toEqual(['b only']);
  });

  it('writes lifecycle lines, prefixed, among the server’s own lines', async () => {
    const h = harness();
    await h.supervisor.apply({ memory: server() });
    h.connector.last('memory').stderr('listening on stdio');
    h.connector.last('memory').crash('exited with code 1');
    await flush();
    await h.clock.advance(100);

    const pid = h.connector.last('memory').pid;
    expect(h.supervisor.logs('memory')).toEqual([
      `${LIFECYCLE_PREFIX}starting`,
      expect.stringMatching(/^\[gatehouse\] started: fake-memory 1\.0\.0, protocol 2025-06-18, pid \d+$/),
      'listening on stdio',
      `${LIFECYCLE_PREFIX}exited: exited with code 1`,
      `${LIFECYCLE_PREFIX}restarting in 100 ms`,
      `${LIFECYCLE_PREFIX}starting (restart 1)`,
      `${LIFECYCLE_PREFIX}started: fake-memory 1.0.0, protocol 2025-06-18, pid ${pid}`,
    ]);
  });

  it('writes every line to the server’s log sink, and closes it when the server is removed', async () => {
    const written = new Map<string, string[]>();
    const closed: string[] = [];
    const logSink: ServerLogSink = {
      open: (name) => {
        written.set(name, []);
        return { write: (line) => written.get(name)?.push(line), close: () => closed.push(name) };
      },
    };
    const h = harness({ logSink, ringLines: 10 });
    await h.supervisor.apply({ memory: server() });
    for (let i = 0; i < 20; i++) h.connector.last('memory').stderr(`line ${i}`);

    expect(written.get('memory')?.filter((l) => !l.startsWith(LIFECYCLE_PREFIX))).toHaveLength(20);
    await h.supervisor.apply({});
    expect(closed).toEqual(['memory']);
    expect(written.get('memory')?.at(-1)).toBe(`${LIFECYCLE_PREFIX}stopped`);
  });

  it('keeps logging to memory when the log sink fails', async () => {
    const h = harness({
      logSink: {
        open: () => {
          throw new Error('disk full');
        },
      },
    });
    await h.supervisor.apply({ memory: server() });
    h.connector.last('memory').stderr('still here');
    expect(h.supervisor.logs('memory', 1)).toEqual(['still here']);
  });
});
