/**
 * `gatehouse daemon` lets V8 optimize once it works (issue 13). What V8 optimized while the core
 * loaded and started ran once and stayed in the idle daemon's memory (6-7 MB with the default
 * servers), so the optimizing compiler is held from the command's start and released when a client
 * connects, or when the daemon is busy after start-up (src/node/optimizing-compiler.ts; the busy
 * case: test/unit/heap-trim.test.ts). The daemon says so in its debug log.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { eventually, makeHome, spawnGatehouse } from './support/gatehouse.js';

const CRM = fileURLToPath(new URL('../fixtures/crm-server.mjs', import.meta.url));
const RELEASED = '"daemon.compiler_released"';

let gh: Awaited<ReturnType<typeof spawnGatehouse>>;

beforeAll(async () => {
  gh = await spawnGatehouse({
    servers: { crm: { type: 'stdio', command: process.execPath, args: [CRM], sandbox: 'off' } },
    clients: ['ide'],
    args: ['--log-level', 'debug', '--log-format', 'json'],
  });
  await eventually(async () => (await gh.status()).servers.every((s) => s.state === 'ready'), 30_000, 'the server to be ready');
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
});

describe('the optimizing compiler of a daemon started by `gatehouse daemon`', () => {
  it('stays held while the daemon rests after start-up, status requests included, and is released when a client connects', async () => {
    // Three seconds of rest (the daemon looks once a second), asked for its status meanwhile.
    for (let i = 0; i < 6; i++) {
      await gh.status();
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(gh.stderr()).not.toContain(RELEASED);
    const { client } = await connectHttp(gh.httpUrl, { era: 'legacy', token: gh.tokens.ide });
    const line = await eventually(
      () =>
        gh
          .stderr()
          .split('\n')
          .find((l) => l.includes(RELEASED)),
      10_000,
      'the daemon to release the optimizing compiler',
    );
    expect(JSON.parse(line)).toMatchObject({ level: 'debug', event: 'daemon.compiler_released', reason: 'client' });
    // The client's calls are served as before.
    expect(textOf(await client.callTool({ name: 'crm__search_contacts', arguments: { query: 'ada' } }))).toContain('Ada Lovelace');
  });
});

describe('a daemon the CLI fails to start in this process', () => {
  it('leaves V8 optimizing, as it found it', async () => {
    const { home, paths, env } = makeHome();
    try {
      writeFileSync(paths.configFile, '{ "servers": 12 }');
      const err: string[] = [];
      const code = await main(['daemon', '--log-format', 'json'], { out: () => undefined, err: (text) => void err.push(text), env });
      expect(code).not.toBe(0);
      expect(err.join('')).toContain('servers');
      // V8's own view: a function run hot here is optimized (a bit of %GetOptimizationStatus).
      setFlagsFromString('--allow-natives-syntax');
      const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;
      const hot = new Function('n', 'let s = 0; for (let i = 0; i < n; i++) s += (i * 7) ^ (s >>> 2); return s;') as (n: number) => number;
      let optimized = false;
      for (let round = 0; round < 1_000_000 && !optimized; round++) {
        hot(500);
        optimized = (status(hot) & (1 << 6)) !== 0;
      }
      expect(optimized).toBe(true);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
