/**
 * `gatehouse audit verify`: reads a local audit database (read-only, while the daemon may be
 * writing) and checks it with the core verifier, plus what only the file can tell: whether the
 * append-only triggers are still there, and whether the device key in the database is the one
 * the keychain holds.
 */
import type { KeyObject } from 'node:crypto';
import { publicKeyFromRaw, type Checkpoint } from '../../core/audit/event.js';
import { verifyChain, type StoredRow, type VerifyReport } from '../../core/audit/verify.js';
import { openForReading, readMeta, TRIGGERS, type Db } from './schema.js';

export interface FileVerifyReport extends VerifyReport {
  file: string;
  publicKey: string | undefined;
  keyId: string | undefined;
  /** Problems with the file that are not problems of the chain itself. */
  warnings: string[];
}

export interface FileVerifyOptions {
  /** The device key's public half as the keychain has it; compared with the one in the database. */
  keychainPublicKey?: string | undefined;
}

export function verifyAuditFile(file: string, options: FileVerifyOptions = {}): FileVerifyReport {
  const db = openForReading(file);
  try {
    return verifyDatabase(db, file, options);
  } finally {
    db.close();
  }
}

export function verifyDatabase(db: Db, file: string, options: FileVerifyOptions = {}): FileVerifyReport {
  const meta = readMeta(db);
  const device = meta.get('device') ?? '';
  const warnings: string[] = [];
  const present = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all() as { name: string }[]).map((r) => r.name));
  const gone = TRIGGERS.filter((t) => !present.has(t));
  if (gone.length > 0) warnings.push(`the append-only triggers ${gone.join(', ')} were removed from the database`);

  const recorded = meta.get('public_key');
  let publicKey: KeyObject | undefined;
  if (options.keychainPublicKey && recorded && options.keychainPublicKey !== recorded) {
    warnings.push("the device key recorded in the database is not the keychain's: checkpoints are checked against the keychain's key");
  }
  const trusted = options.keychainPublicKey ?? recorded;
  if (trusted) {
    try {
      publicKey = publicKeyFromRaw(trusted);
    } catch {
      warnings.push('the device public key recorded in the database is not valid');
    }
  } else warnings.push('no device key has been recorded yet: checkpoints cannot be checked');
  if (!options.keychainPublicKey && recorded) warnings.push('the keychain was not consulted: checkpoints are checked against the key recorded in the database');

  const checkpoints = (db.prepare('SELECT seq, at, hash, key_id AS keyId, signature FROM checkpoints ORDER BY seq').all() as Omit<Checkpoint, 'device'>[]).map(
    (c) => ({
      ...c,
      device,
    }),
  );
  const anchorSeq = Number(meta.get('anchor_seq') ?? 0);
  const anchor = anchorSeq > 0 ? { seq: anchorSeq, hash: meta.get('anchor_hash') ?? '' } : undefined;
  const headSeq = Number(meta.get('head_seq') ?? 0);
  const head = headSeq > 0 ? { seq: headSeq, hash: meta.get('head_hash') ?? '' } : undefined;

  const rows = (function* (): Generator<StoredRow> {
    const statement = db.prepare('SELECT seq, id, at, type, call_id, user, client, server, name, decision, hash, body FROM events ORDER BY seq');
    for (const r of statement.iterate() as Iterable<Record<string, string | number | null>>) {
      yield {
        seq: r.seq as number,
        hash: r.hash as string,
        body: r.body as string,
        columns: {
          id: r.id as string,
          at: r.at as string,
          type: r.type as string,
          callId: r.call_id as string | null,
          user: r.user as string | null,
          client: r.client as string | null,
          server: r.server as string | null,
          name: r.name as string | null,
          decision: r.decision as string | null,
        },
      };
    }
  })();
  const report = verifyChain(rows, { device, publicKey, anchor, checkpoints, head });
  return { ...report, file, publicKey: trusted, keyId: meta.get('key_id'), warnings };
}
