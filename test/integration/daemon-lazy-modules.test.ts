/**
 * What a daemon holds from its first second to its last is paid for in idle memory (issue 13: 90 MB
 * with the default servers). Modules that serve a rare act are loaded when it happens: the identity
 * provider's client at sign-in or refresh, the pretty log format only for a person's terminal, and
 * the console's WebSocket server when a page connects. The system-call trace of a starting daemon shows which package files it opened.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, spawnGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const CRM = fileURLToPath(new URL('../fixtures/crm-server.mjs', import.meta.url));
const STRACE = spawnSync('strace', ['-V']).status === 0;
/** Loaded on first use, never at start. */
const LAZY = ['openid-client', 'oauth4webapi', 'pino-pretty', 'ws'];

describe.runIf(process.platform === 'linux' && STRACE)('modules a starting daemon leaves unloaded', () => {
  let dir: string;
  let trace: string;
  let gh: Awaited<ReturnType<typeof spawnGatehouse>> & RunningGatehouse;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-lazy-'));
    trace = join(dir, 'openat.txt');
    gh = await spawnGatehouse({
      // Every thread (the module loader reads on the thread pool); the server runs unconfined, since a traced process cannot run the sandbox's own tracer.
      wrap: ['strace', '-f', '-qq', '-e', 'trace=openat', '-e', 'signal=none', '-o', trace],
      servers: { crm: { type: 'stdio', command: process.execPath, args: [CRM], sandbox: 'off' } },
    });
    await eventually(async () => (await gh.status()).servers.every((s) => s.state === 'ready'), 30_000, 'the server to be ready');
  }, 60_000);

  afterAll(async () => {
    await gh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts, with a server ready, without loading the sign-in client, the pretty log format or the console's WebSocket server", () => {
    const opened = packagesOpened(readFileSync(trace, 'utf8'));
    // The trace works: what the daemon needs from the start is in it.
    expect(opened).toContain('better-sqlite3');
    expect(opened).toContain('@modelcontextprotocol/server');
    expect(opened).toContain('pino');
    for (const name of LAZY) expect(opened, name).not.toContain(name);
  });
});

/** The npm packages whose files the traced processes opened. */
function packagesOpened(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/node_modules\/((?:@[^/"]+\/)?[^/"]+)\//g)) names.add(match[1]!);
  return names;
}
