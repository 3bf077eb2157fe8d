import { describe, expect, it } from 'vitest';
import { parseConfig, type ServerConfig } from '../../src/common/config.js';
import { deepEqual, diffServers } from '../../src/core/config-diff.js';

/** Servers as the daemon holds them: parsed, with every default filled in. */
function servers(input: Record<string, unknown>): Record<string, ServerConfig> {
  const result = parseConfig({ servers: input });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config.servers;
}

const memory = { type: 'stdio', command: 'node', args: ['memory.js'], env: { A: '1', B: '2' } };
const files = { type: 'stdio', command: 'node', args: ['files.js', '/data'] };
const remote = { type: 'http', url: 'https://example.com/mcp', headers: { 'X-A': '1' } };

describe('diffServers', () => {
  it('sorts servers into added, removed, changed and unchanged', () => {
    const previous = servers({ memory, files, remote });
    const next = servers({ memory, files: { ...files, args: ['files.js', '/other'] }, extra: files });
    expect(diffServers(previous, next)).toEqual({ added: ['extra'], removed: ['remote'], changed: ['files'], unchanged: ['memory'] });
  });

  it('reports nothing changed for the same servers written with keys in another order', () => {
    const reordered = { env: { B: '2', A: '1' }, args: ['memory.js'], command: 'node', type: 'stdio' };
    expect(diffServers(servers({ memory }), servers({ memory: reordered }))).toEqual({
      added: [],
      removed: [],
      changed: [],
      unchanged: ['memory'],
    });
  });

  it('counts a reordered argument list as a change, since argument order matters', () => {
    const previous = servers({ files });
    const next = servers({ files: { ...files, args: ['/data', 'files.js'] } });
    expect(diffServers(previous, next).changed).toEqual(['files']);
  });

  it('counts a changed nested field (an env value, a restart setting, enabled) as a change', () => {
    const previous = servers({ memory, files, remote });
    const next = servers({
      memory: { ...memory, env: { A: '1', B: '3' } },
      files: { ...files, restart: { mode: 'never' } },
      remote: { ...remote, enabled: false },
    });
    expect(diffServers(previous, next).changed).toEqual(['files', 'memory', 'remote']);
  });

  it('treats a field written out with its default value the same as the field omitted', () => {
    const explicit = { ...files, enabled: true, env: {}, restart: { mode: 'on-failure' } };
    expect(diffServers(servers({ files }), servers({ files: explicit })).unchanged).toEqual(['files']);
  });

  it('counts a server whose type changed as changed, not as removed and added', () => {
    const diff = diffServers(servers({ x: files }), servers({ x: remote }));
    expect(diff).toEqual({ added: [], removed: [], changed: ['x'], unchanged: [] });
  });

  it('returns each list sorted by name', () => {
    const diff = diffServers({}, servers({ zeta: files, alpha: files, mid: files }));
    expect(diff.added).toEqual(['alpha', 'mid', 'zeta']);
  });

  it('handles empty configurations on either side', () => {
    expect(diffServers({}, {})).toEqual({ added: [], removed: [], changed: [], unchanged: [] });
    expect(diffServers(servers({ memory }), {})).toEqual({ added: [], removed: ['memory'], changed: [], unchanged: [] });
  });
});

describe('deepEqual', () => {
  it('ignores key order and keys holding undefined', () => {
    expect(deepEqual({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 })).toBe(true);
    expect(deepEqual({ a: 1, cwd: undefined }, { a: 1 })).toBe(true);
  });

  it('tells apart arrays from objects, lengths, and nulls', () => {
    expect(deepEqual([1], { 0: 1 })).toBe(false);
    expect(deepEqual([1, 2], [1])).toBe(false);
    expect(deepEqual(null, {})).toBe(false);
    expect(deepEqual({ a: null }, { a: undefined })).toBe(false);
    expect(deepEqual('1', 1)).toBe(false);
  });
});
