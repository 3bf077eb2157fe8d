/**
 * Issue 15: the servers people run keep working confined. The default configuration's `memory`
 * and `files` (as Gatehouse writes it for a new user) and `server-everything` with the default
 * profile start under bubblewrap and do their work in the folders their profiles grant
 * (test/integration/sandbox-hostile.test.ts shows what a confined server cannot see).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/common/config.js';
import type { ServerStatus } from '../../src/common/status.js';
import { EVERYTHING } from '../support/servers.js';
import { auditEvents } from './support/approvals.js';
import { closeAll, connectHttp, textOf, type Connected } from './support/clients.js';
import { REPO, eventually, spawnGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const DEFAULT_CONFIG = JSON.parse(readFileSync(join(REPO, 'resources', 'default-config.json'), 'utf8')) as ConfigInput;

describe.runIf(process.platform === 'linux')('the default servers and server-everything, confined (issue 15)', () => {
  let gh: RunningGatehouse;
  let connected: Connected;

  beforeAll(async () => {
    gh = await spawnGatehouse({
      servers: { ...DEFAULT_CONFIG.servers, everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] } },
    });
    await eventually(async () => (await gh.status()).servers.every((s) => s.state === 'ready'), 20_000, 'every server to be ready');
    connected = await connectHttp(gh.httpUrl, { era: 'legacy', token: gh.token, shared: true });
  }, 60_000);

  afterAll(async () => {
    await connected?.close();
    await closeAll();
    await gh?.stop();
  });

  const status = async (name: string): Promise<ServerStatus> => (await gh.status()).servers.find((s) => s.name === name)!;
  const call = async (name: string, args: Record<string, unknown> = {}) => textOf(await connected.client.callTool({ name, arguments: args }));

  it('starts all three under bubblewrap, each with the grants of its profile and no network', async () => {
    const { dataDir } = gh.paths;
    expect((await status('memory')).confinement).toMatchObject({
      state: 'confined',
      mechanism: 'bubblewrap',
      source: 'config',
      write: [join(dataDir, 'memory')],
      network: { mode: 'none' },
    });
    expect((await status('files')).confinement).toMatchObject({
      state: 'confined',
      mechanism: 'bubblewrap',
      source: 'config',
      write: [join(dataDir, 'demo')],
      network: { mode: 'none' },
    });
    expect((await status('everything')).confinement).toMatchObject({
      state: 'confined',
      mechanism: 'bubblewrap',
      source: 'default',
      write: [],
      network: { mode: 'none' },
    });
  });

  it('memory keeps its graph in its own folder of the data directory', async () => {
    await call('memory__create_entities', { entities: [{ name: 'sandboxed-entity', entityType: 'test', observations: ['written from inside bubblewrap'] }] });
    const graph = JSON.parse(await call('memory__read_graph')) as { entities: { name: string }[] };
    expect(graph.entities.map((e) => e.name)).toContain('sandboxed-entity');
    const file = join(gh.paths.dataDir, 'memory', 'memory.jsonl');
    expect(readFileSync(file, 'utf8')).toContain('written from inside bubblewrap');
  });

  it('files reads and writes its demo folder', async () => {
    const demo = join(gh.paths.dataDir, 'demo');
    writeFileSync(join(demo, 'hello.txt'), 'hello from the host\n');
    expect(await call('files__read_text_file', { path: join(demo, 'hello.txt') })).toBe('hello from the host\n');
    await call('files__write_file', { path: join(demo, 'reply.txt'), content: 'written by the confined files server' });
    expect(readFileSync(join(demo, 'reply.txt'), 'utf8')).toBe('written by the confined files server');
    expect(await call('files__list_allowed_directories')).toContain(demo);
  });

  it('server-everything answers its tools under the default profile', async () => {
    expect(await call('everything__echo', { message: 'from the sandbox' })).toBe('Echo: from the sandbox');
    expect(await call('everything__get-sum', { a: 2, b: 3 })).toContain('5');
    // Its environment is the allow-listed one: nothing of the daemon's own.
    expect(await call('everything__get-env')).not.toContain('GATEHOUSE_HOME');
  });

  it('leaves no file denial in the audit log for servers doing their ordinary work (the tracer is on, and quiet)', async () => {
    expect((await status('memory')).confinement?.fileDenials).toMatchObject({ audited: true });
    await call('memory__read_graph');
    await call('everything__echo', { message: 'again' });
    const refused = auditEvents(gh.paths, 'sandbox.denied').filter((e) => String((e.detail as { kind?: string }).kind).startsWith('file-'));
    expect(refused.map((e) => [e.server, (e.detail as { target: string }).target])).toEqual([]);
  });
});
