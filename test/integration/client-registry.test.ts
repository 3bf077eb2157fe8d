/**
 * The paired clients' credentials file and its last-seen times (src/node/client-registry.ts). The
 * daemon and the CLI each hold a registry on the same file; the CLI revokes by writing it.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClientRegistry, credentialId } from '../../src/node/client-registry.js';

describe('the paired clients’ registry', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gh-clients-'));
    file = join(dir, 'clients.json');
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps a revocation made by another process when the daemon then notes the client seen', async () => {
    const daemon = new ClientRegistry(file);
    const token = daemon.add('editor');
    // `gatehouse clients revoke` in another process, before the daemon has re-read the file.
    expect(new ClientRegistry(file).revoke('editor')).toBe(true);
    daemon.touch('editor');
    await daemon.seenWritten();
    const after = new ClientRegistry(file);
    expect(after.has('editor')).toBe(false);
    expect(after.verify(token)).toBeUndefined();
  });

  it('notes a client seen without rewriting the credentials file, and another process reads the time', async () => {
    const daemon = new ClientRegistry(file);
    daemon.add('editor');
    const before = readFileSync(file, 'utf8');
    const modified = statSync(file).mtimeMs;
    daemon.touch('editor');
    expect(daemon.list()[0]!.lastSeen).toBeDefined();
    await daemon.seenWritten();
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(statSync(file).mtimeMs).toBe(modified);
    const seenFile = join(dir, 'clients-seen.json');
    expect(statSync(seenFile).mode & 0o777).toBe(0o600);
    const cli = new ClientRegistry(file);
    expect(cli.list()[0]!.lastSeen).toBe(daemon.list()[0]!.lastSeen);
  });

  it('notes a client at most once a minute', async () => {
    const daemon = new ClientRegistry(file);
    daemon.add('editor');
    daemon.touch('editor');
    await daemon.seenWritten();
    const first = daemon.list()[0]!.lastSeen;
    const seenFile = join(dir, 'clients-seen.json');
    const written = readFileSync(seenFile, 'utf8');
    daemon.touch('editor');
    await daemon.seenWritten();
    expect(daemon.list()[0]!.lastSeen).toBe(first);
    expect(readFileSync(seenFile, 'utf8')).toBe(written);
  });

  it('reads a damaged last-seen file as no times, and writes it whole at the next use', async () => {
    const seenFile = join(dir, 'clients-seen.json');
    writeFileSync(seenFile, '{"seen": ');
    const daemon = new ClientRegistry(file);
    daemon.add('editor');
    expect(daemon.list()[0]!.lastSeen).toBeUndefined();
    daemon.touch('editor');
    await daemon.seenWritten();
    const record = daemon.list()[0]!;
    expect((JSON.parse(readFileSync(seenFile, 'utf8')) as { seen: Record<string, string> }).seen).toEqual({ [credentialId(record)]: record.lastSeen });
  });

  it('still shows a time an older version wrote into the credentials file', () => {
    const daemon = new ClientRegistry(file);
    daemon.add('editor');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { clients: { lastSeen?: string }[] };
    doc.clients[0]!.lastSeen = '2026-01-02T03:04:05.000Z';
    writeFileSync(file, JSON.stringify(doc));
    expect(new ClientRegistry(file).list()[0]!.lastSeen).toBe('2026-01-02T03:04:05.000Z');
  });
});
