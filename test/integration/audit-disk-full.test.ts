/**
 * A real full disk: the daemon's state directory is a 2 MiB tmpfs, and a filler file takes the
 * rest. Gatehouse refuses calls (fail closed) rather than run them unaudited, says so in
 * `gatehouse status`, and takes calls again once there is room, with the outage on record and
 * the chain intact. Needs root (to mount the tmpfs); skipped otherwise.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/ports.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { auditDatabaseFile } from '../../src/node/audit/local.js';
import { verifyAuditFile } from '../../src/node/audit/verify-file.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { closeAll, connectHttp } from './support/clients.js';
import { makeHome, REPO } from './support/gatehouse.js';

const ECHO = join(REPO, 'bench', 'fixtures', 'echo-server.mjs');
const quiet: Logger = { log: () => undefined };
const isRoot = process.getuid?.() === 0 && process.platform === 'linux';

let mounted: string | undefined;
let home: string | undefined;
let daemon: Daemon | undefined;

afterAll(async () => {
  await closeAll();
  await daemon?.stop().catch(() => undefined);
  if (mounted) spawnSync('umount', [mounted]);
  if (home) rmSync(home, { recursive: true, force: true });
});

/** Writes until the disk says ENOSPC; returns the filler's path. */
function fill(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) {
      try {
        writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
        // The last few bytes too.
        try {
          for (;;) writeSync(fd, Buffer.alloc(512, 1));
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

describe('a full disk under the audit log', () => {
  it.skipIf(!isRoot)('makes Gatehouse refuse calls until there is room again, and records the outage', { timeout: 90_000 }, async () => {
    const made = makeHome('gh-diskfull-');
    home = made.home;
    const { paths, env } = made;
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', paths.stateDir], { encoding: 'utf8' });
    if (mount.status !== 0) throw new Error(`cannot mount a tmpfs (needed for a real ENOSPC): ${mount.stderr}`);
    mounted = paths.stateDir;
    writeFileSync(
      paths.configFile,
      JSON.stringify({ servers: { echo: { type: 'stdio', command: process.execPath, args: [ECHO] } }, listen: { http: { enabled: true, port: 0 } } }),
      { mode: 0o600 },
    );
    const token = new ClientRegistry(join(paths.stateDir, 'clients.json')).add('disk-test');
    daemon = await startDaemon({ paths, env, logger: quiet, secrets: new MemorySecretStore() });
    const deadline = Date.now() + 20_000;
    while (!daemon.status().servers.every((s) => s.state === 'ready')) {
      if (Date.now() > deadline) throw new Error('echo server did not start');
      await new Promise((r) => setTimeout(r, 25));
    }
    const { client } = await connectHttp(daemon.httpUrl!, { era: 'legacy', token });
    const echo = (i: number) => client.callTool({ name: 'echo__echo', arguments: { text: `call-${i}` } });
    await echo(0);

    const filler = fill(paths.stateDir);
    let refusal: string | undefined;
    let answeredWhileFull = 0;
    for (let i = 1; i <= 5000 && !refusal; i++) {
      try {
        const result = (await echo(i)) as { isError?: boolean; content?: { text?: string }[] };
        if (result.isError) refusal = result.content?.[0]?.text ?? 'error result';
        else answeredWhileFull++;
      } catch (error) {
        refusal = (error as Error).message;
      }
    }
    expect(refusal).toMatch(/audit log cannot be written \(database or disk is full\); calls are refused/);
    const status = daemon.status().audit;
    expect(status).toMatchObject({ healthy: false, error: 'database or disk is full', unavailableSince: expect.any(String) });
    await expect(echo(9000)).rejects.toThrow(/calls are refused/);

    rmSync(filler);
    const back = Date.now() + 10_000;
    while (!daemon.status().audit.healthy) {
      if (Date.now() > back) throw new Error('the audit log did not recover');
      await new Promise((r) => setTimeout(r, 50));
    }
    await expect(echo(9001)).resolves.toMatchObject({ content: [{ text: 'call-9001' }] });
    await closeAll();
    await daemon.stop();
    daemon = undefined;

    const file = auditDatabaseFile(paths.stateDir);
    const db = new Database(file, { readonly: true });
    const recovered = db.prepare("SELECT body FROM events WHERE type = 'audit.recovered'").all() as { body: string }[];
    const outcomes = (db.prepare("SELECT body FROM events WHERE type = 'call.outcome'").all() as { body: string }[]).map(
      (r) => JSON.parse(r.body) as { decision: string; name: string },
    );
    db.close();
    expect(recovered).toHaveLength(1);
    const detail = JSON.parse(recovered[0]!.body) as { reason: string; detail: { refusedAppends: number } };
    expect(detail.reason).toBe('database or disk is full');
    // The outage refused at least the appends of the refused calls.
    expect(detail.detail.refusedAppends).toBeGreaterThan(0);
    // Every call that was answered is on record: the first, each one answered while the disk filled up, and the one after.
    // At most one more: the call whose outcome was queued when the write failed is refused, and its kept record lands later.
    const ok = outcomes.filter((o) => o.name === 'echo' && o.decision === 'ok').length;
    expect(ok).toBeGreaterThanOrEqual(answeredWhileFull + 2);
    expect(ok).toBeLessThanOrEqual(answeredWhileFull + 3);
    expect(verifyAuditFile(file).problems).toEqual([]);
  });
});
