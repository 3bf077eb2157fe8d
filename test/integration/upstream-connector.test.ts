import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StdioServerSchema } from '../../src/common/config.js';
import type { UpstreamConnection, UpstreamEvents } from '../../src/core/ports.js';
import { NodeUpstreamConnector } from '../../src/node/upstream/connector.js';
import { EVERYTHING, MEMORY } from '../support/servers.js';

const connector = new NodeUpstreamConnector({ version: 'test', maxMessageBytes: 4 * 1024 * 1024 });
const open: UpstreamConnection[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function events(overrides: Partial<UpstreamEvents> = {}): UpstreamEvents & { stderrLines: string[] } {
  const stderrLines: string[] = [];
  return {
    stderrLines,
    listChanged: () => undefined,
    resourceUpdated: () => undefined,
    serverRequest: async () => {
      throw new Error('no session');
    },
    stderr: (line) => stderrLines.push(line),
    ...overrides,
  };
}

describe('the upstream connector (real servers from npm)', () => {
  it('connects to a 2025-era stdio server and lists its tools', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-mem-'));
    try {
      const config = StdioServerSchema.parse({ type: 'stdio', command: process.execPath, args: [MEMORY()], env: { MEMORY_FILE_PATH: join(dir, 'm.jsonl') } });
      const conn = await connector.connect('memory', config, events(), new AbortController().signal);
      open.push(conn);
      expect(conn.protocolVersion).toMatch(/^2025-/);
      expect(conn.pid).toBeGreaterThan(0);
      const lists = await conn.listAll(new AbortController().signal);
      expect(lists.tools.map((t) => t.name)).toContain('read_graph');
      const result = await conn.request('tools/call', { name: 'read_graph', arguments: {} }, { signal: new AbortController().signal, timeoutMs: 10_000 });
      expect(result.content).toBeInstanceOf(Array);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('forwards progress from a long-running tool', async () => {
    const config = StdioServerSchema.parse({ type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] });
    const conn = await connector.connect('everything', config, events(), new AbortController().signal);
    open.push(conn);
    const lists = await conn.listAll(new AbortController().signal);
    const longOp = lists.tools.find((t) => /long/i.test(t.name));
    expect(longOp).toBeDefined();
    const progress: number[] = [];
    await conn.request(
      'tools/call',
      { name: longOp!.name, arguments: { duration: 0.2, steps: 3 }, _meta: { progressToken: 'p1' } },
      { signal: new AbortController().signal, timeoutMs: 10_000, onProgress: (p) => progress.push(p.progress) },
    );
    expect(progress.length).toBeGreaterThanOrEqual(2);
  });

  it('reports a command that does not exist as a failed start', async () => {
    const config = StdioServerSchema.parse({ type: 'stdio', command: '/nonexistent/server-binary' });
    await expect(connector.connect('ghost', config, events(), new AbortController().signal)).rejects.toThrow(/could not start/);
  });

  it('refuses a secret reference while no secret store is configured', async () => {
    const config = StdioServerSchema.parse({ type: 'stdio', command: process.execPath, args: [MEMORY()], env: { TOKEN: '${secret:api_token}' } });
    await expect(connector.connect('memory', config, events(), new AbortController().signal)).rejects.toThrow(/secret "api_token"/);
  });

  it('gives a child only the allow-listed environment plus what its config declares', async () => {
    process.env.GATEHOUSE_TEST_LEAK = 'leaked-value';
    try {
      const config = StdioServerSchema.parse({ type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'], env: { DECLARED: 'yes' } });
      const conn = await connector.connect('everything', config, events(), new AbortController().signal);
      open.push(conn);
      const { readFileSync } = await import('node:fs');
      const environ = readFileSync(`/proc/${conn.pid}/environ`, 'utf8').split('\0');
      expect(environ).toContain('DECLARED=yes');
      expect(environ.some((e) => e.startsWith('GATEHOUSE_TEST_LEAK='))).toBe(false);
    } finally {
      delete process.env.GATEHOUSE_TEST_LEAK;
    }
  });
});
