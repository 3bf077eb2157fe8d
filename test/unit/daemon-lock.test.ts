import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireDaemonLock } from '../../src/node/daemon-lock.js';

const dirs: string[] = [];
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), 'gh-lock-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('the daemon lock', () => {
  it('holds the owner pid while held and is gone once released', () => {
    const runtime = dir();
    const lock = acquireDaemonLock(runtime);
    expect(readFileSync(lock.file, 'utf8').trim()).toBe(String(process.pid));
    lock.release();
    expect(existsSync(lock.file)).toBe(false);
  });

  it('refuses a second daemon while the first one is alive', async () => {
    const runtime = dir();
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await new Promise((resolve) => other.once('spawn', resolve));
      writeFileSync(join(runtime, 'daemon.lock'), `${other.pid}\n`);
      expect(() => acquireDaemonLock(runtime)).toThrow(new RegExp(`another Gatehouse daemon \\(pid ${other.pid}\\) is already running`));
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('takes over a lock whose owner has died', async () => {
    const runtime = dir();
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => dead.once('exit', resolve));
    writeFileSync(join(runtime, 'daemon.lock'), `${dead.pid}\n`);
    const lock = acquireDaemonLock(runtime);
    expect(readFileSync(lock.file, 'utf8').trim()).toBe(String(process.pid));
    lock.release();
  });
});
