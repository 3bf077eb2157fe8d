/**
 * Gatehouse answers a server's `roots/list` from that server's configured roots (issue 11): the
 * filesystem server from npm asks for roots as soon as it starts, when no client call is in flight
 * to relay the question to; with `roots` configured it gets them, and stops logging an error at
 * every start.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callControl } from '../../src/node/control/control-client.js';
import { FILESYSTEM } from '../support/servers.js';
import { closeAll, connectBridge, textOf } from './support/clients.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';

let gh: RunningGatehouse;
let data: string;

beforeAll(async () => {
  data = mkdtempSync(join(tmpdir(), 'gh-roots-'));
  for (const dir of ['served', 'argument']) mkdirSync(join(data, dir));
  writeFileSync(join(data, 'served', 'note.txt'), 'from the configured root');
  gh = await startGatehouse({
    servers: {
      // The configured roots are granted by themselves (docs/sandbox.md); the folder named in the arguments needs its grant.
      rooted: {
        type: 'stdio',
        command: process.execPath,
        args: [FILESYSTEM(), join(data, 'argument')],
        roots: [join(data, 'served')],
        sandbox: { read: [join(data, 'argument')] },
      },
      unrooted: { type: 'stdio', command: process.execPath, args: [FILESYSTEM(), join(data, 'argument')], sandbox: { read: [join(data, 'argument')] } },
    },
    clients: ['ide'],
  });
  await eventually(async () => (await gh.status()).servers.every((s) => s.state === 'ready'), 20_000, 'both servers');
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
  rmSync(data, { recursive: true, force: true });
});

const logs = async (name: string) => ((await callControl(gh.paths.controlSocketPath, 'logs', { name, lines: 200 })) as string[]).join('\n');

describe('roots/list', () => {
  it('is answered from the configured roots: the server takes them and logs no error', async () => {
    await eventually(async () => /Updated allowed directories from MCP roots: 1 valid directories/.test(await logs('rooted')), 10_000, 'the roots taken');
    expect(await logs('rooted')).not.toMatch(/Failed to request initial roots/);
    const { client } = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
    const listed = textOf(await client.callTool({ name: 'rooted__list_allowed_directories', arguments: {} }));
    expect(listed).toContain(join(data, 'served'));
    expect(listed).not.toContain(join(data, 'argument'));
  });

  it('without configured roots, still reaches no client outside a call (the server keeps its own directories and says why)', async () => {
    await eventually(async () => /Failed to request initial roots/.test(await logs('unrooted')), 10_000, 'the relay refused outside a call');
  });
});
