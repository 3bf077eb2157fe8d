/**
 * `gatehouse daemon` lets V8 optimize once it works (issue 13). What V8 optimized while the core
 * loaded and started ran once and stayed in the idle daemon's memory (6-7 MB with the default
 * servers), so the optimizing compiler is held from the command's start and released when a client
 * connects, or when the daemon is busy after start-up (src/node/optimizing-compiler.ts; the busy
 * case: test/unit/heap-trim.test.ts). The daemon says so in its debug log.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { eventually, spawnGatehouse } from './support/gatehouse.js';

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
