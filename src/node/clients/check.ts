/**
 * After `clients setup` writes an entry, it launches exactly that command, with exactly the
 * environment the client would pass (registry.ts `launchEnvironmentOf`), and completes the MCP
 * `initialize` handshake, as the client will. A bridge waiting to be paired completes it too, and
 * says so; a daemon that is not running, or a command that does not start, is reported here rather
 * than discovered later in the IDE's log.
 */
import { spawn } from 'node:child_process';
import { Client } from '@modelcontextprotocol/client';
import { errorMessage } from '../../common/errors.js';
import { LineTransport } from '../line-transport.js';
import { VERSION } from '../version.js';

export type LaunchCheck = { ok: true; ms: number; server: string; pairing: boolean; stderr: string } | { ok: false; reason: string; stderr: string };

export async function checkLaunch(command: string, args: string[], env: Record<string, string>, timeoutMs = 15_000): Promise<LaunchCheck> {
  const started = Date.now();
  const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'], shell: false, windowsHide: true });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-8192)));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const client = new Client({ name: 'gatehouse-clients-setup', version: VERSION }, { capabilities: {} });
  try {
    await spawned;
    await client.connect(new LineTransport(child.stdout, child.stdin, { maxMessageBytes: 4 * 1024 * 1024 }), { timeout: timeoutMs });
    const ms = Date.now() - started;
    const server = client.getServerVersion()?.name ?? 'unknown';
    const pairing = /waiting for you to pair/.test(client.getInstructions() ?? '');
    return { ok: true, ms, server, pairing, stderr: stderr.trim() };
  } catch (error) {
    // Let the bridge's last stderr line (its reason) arrive.
    await Promise.race([exited, new Promise((r) => setTimeout(r, 500).unref())]);
    const said = stderr.trim().split('\n').filter(Boolean).at(-1);
    return { ok: false, reason: said ?? errorMessage(error), stderr: stderr.trim() };
  } finally {
    await client.close().catch(() => undefined);
    child.stdin.end();
    // The bridge ends when its stdin does; one that does not is killed (and never outlives this command).
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}
