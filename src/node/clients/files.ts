/**
 * Changing files that belong to someone else (a client's config, Gatehouse's own config.json) so
 * that nothing is lost: each change is written atomically (a temporary file beside it, then a
 * rename, keeping the file's mode), its previous bytes are kept in a user-only backup, and the
 * operation is journalled so that `--undo` restores every file byte for byte, or refuses, naming
 * the backup, when the file was changed since Gatehouse wrote it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import { ensureUserOnlyDir } from '../paths.js';

/** One file's text before and after. `before` undefined: the file does not exist yet. */
export interface FileChange {
  file: string;
  before: string | undefined;
  after: string;
}

const FileRecordSchema = z.object({
  file: z.string(),
  existed: z.boolean(),
  /** The file's previous bytes, in the backup directory (only when it existed). */
  backup: z.string().optional(),
  /** SHA-256 of what Gatehouse wrote: undo restores only a file nobody has changed since. */
  written: z.string().regex(/^[0-9a-f]{64}$/),
});

const OperationSchema = z.object({
  id: z.string(),
  client: z.string(),
  kind: z.enum(['setup', 'import']),
  at: z.string(),
  files: z.array(FileRecordSchema),
  /** Key store items the operation added (secrets moved out of a client's config). */
  secrets: z.array(z.string()).default([]),
});
export type Operation = z.infer<typeof OperationSchema>;

const JournalSchema = z.object({ operations: z.array(OperationSchema) });

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Where backups and the journal live: a user-only directory in the state directory (configs can hold credentials). */
export function backupDir(stateDir: string): string {
  return path.join(stateDir, 'client-setup');
}

export async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GatehouseError('client_config_unreadable', `${file}: cannot read (${errorMessage(error)})`, { cause: error });
  }
}

/** Writes `text` to `file` atomically, keeping an existing file's mode; a new file gets `mode`. */
export async function writeAtomically(file: string, text: string | Buffer, mode = 0o600): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const keep = await stat(file).then(
    (s) => s.mode & 0o7777,
    () => mode,
  );
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(temp, keep);
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw new GatehouseError('client_config_write_failed', `could not write ${file}: ${errorMessage(error)}`, { cause: error });
  }
}

async function readJournal(stateDir: string): Promise<Operation[]> {
  const text = await readText(path.join(backupDir(stateDir), 'journal.json'));
  if (text === undefined) return [];
  const parsed = JournalSchema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new GatehouseError('client_journal_invalid', `${path.join(backupDir(stateDir), 'journal.json')} is damaged; the backups beside it are intact`);
  return parsed.data.operations;
}

async function writeJournal(stateDir: string, operations: Operation[]): Promise<void> {
  await writeAtomically(path.join(backupDir(stateDir), 'journal.json'), JSON.stringify({ operations }, null, 2) + '\n');
}

/**
 * Backs up and writes every change that changes something, then journals the operation. A file
 * that fails to write leaves the ones before it written and journalled, so undo still restores them.
 */
export async function applyChanges(
  stateDir: string,
  meta: { client: string; kind: Operation['kind']; secrets?: string[] },
  changes: FileChange[],
): Promise<Operation | undefined> {
  const real = changes.filter((c) => c.before !== c.after);
  if (real.length === 0 && (meta.secrets ?? []).length === 0) return undefined;
  const dir = backupDir(stateDir);
  await ensureUserOnlyDir(dir);
  const id = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`;
  const operation: Operation = { id, client: meta.client, kind: meta.kind, at: new Date().toISOString(), files: [], secrets: meta.secrets ?? [] };
  const operations = await readJournal(stateDir);
  try {
    for (const [index, change] of real.entries()) {
      const record: Operation['files'][number] = { file: change.file, existed: change.before !== undefined, written: sha256(change.after) };
      if (change.before !== undefined) {
        // The exact bytes on disk, not the decoded text: undo is byte for byte.
        const bytes = await readFile(change.file);
        const backup = path.join(dir, `${id}-${index}-${path.basename(change.file)}`);
        await writeFile(backup, bytes, { mode: 0o600, flag: 'wx' });
        record.backup = backup;
      }
      await writeAtomically(change.file, change.after, 0o600);
      operation.files.push(record);
    }
  } finally {
    if (operation.files.length > 0 || operation.secrets.length > 0) await writeJournal(stateDir, [...operations, operation]);
  }
  return operation;
}

/** The newest operation for `client`, if any. */
export async function lastOperation(stateDir: string, client: string): Promise<Operation | undefined> {
  return (await readJournal(stateDir)).filter((o) => o.client === client).at(-1);
}

/**
 * Restores every file of `operation` as it was, byte for byte (or removes a file it created), and
 * drops it from the journal. Refuses, changing nothing, when a file was changed since it was written.
 */
export async function undoOperation(stateDir: string, operation: Operation): Promise<string[]> {
  for (const record of operation.files) {
    const current = await readFile(record.file).catch(() => undefined);
    if (current === undefined || sha256(current) !== record.written) {
      throw new GatehouseError(
        'client_config_changed',
        `${record.file} was changed after Gatehouse wrote it, so it is not overwritten; ${record.backup ? `its earlier content is in ${record.backup}` : 'it did not exist before'}`,
      );
    }
  }
  const restored: string[] = [];
  for (const record of [...operation.files].reverse()) {
    if (record.existed && record.backup) await writeAtomically(record.file, await readFile(record.backup));
    else await unlink(record.file).catch(() => undefined);
    restored.push(record.file);
  }
  await writeJournal(
    stateDir,
    (await readJournal(stateDir)).filter((o) => o.id !== operation.id),
  );
  for (const record of operation.files) if (record.backup) await unlink(record.backup).catch(() => undefined);
  return restored;
}

/** A short unified diff of one change, for `--dry-run` (whole lines; enough to review a config edit). */
export function describeChange(change: FileChange): string {
  const before = change.before === undefined ? [] : change.before.split('\n');
  const after = change.after.split('\n');
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let endBefore = before.length;
  let endAfter = after.length;
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore--;
    endAfter--;
  }
  const context = 2;
  const from = Math.max(0, start - context);
  const lines = [
    `--- ${change.before === undefined ? '/dev/null' : change.file}`,
    `+++ ${change.file}`,
    `@@ -${from + 1},${endBefore + context - from} +${from + 1},${endAfter + context - from} @@`,
    ...before.slice(from, start).map((l) => ` ${l}`),
    ...before.slice(start, endBefore).map((l) => `-${l}`),
    ...after.slice(start, endAfter).map((l) => `+${l}`),
    ...after.slice(endAfter, endAfter + context).map((l) => ` ${l}`),
  ];
  return lines.join('\n');
}
