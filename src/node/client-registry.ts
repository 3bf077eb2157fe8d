/**
 * Credentials of paired clients (IDEs, agents). Gatehouse keeps only a SHA-256 of each token, in a
 * user-only file, with the scope the person chose when pairing and an expiry; the token itself is
 * handed once to the client that was paired. Pairing itself (consent in the human channel) is
 * `src/node/identity/pairing.ts`; nothing in the CLI issues a credential.
 *
 * When each credential was last used is kept beside it, in a file of its own that only the daemon
 * writes (`clients-seen.json`). The credentials file is written by whoever pairs or revokes (the
 * daemon, the console, `gatehouse clients revoke` in another process); had the daemon also rewritten
 * it to note a client seen, it would have written back its own copy of the list, and a revocation
 * made on the command line a moment before would have been undone. The last-seen file is written
 * in the background, one write at a time: nothing waits for it, and a lost write loses a time.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { GatehouseError } from '../common/errors.js';
import { isClientName } from '../common/names.js';
import type { ClientScope } from '../core/identity/client-scope.js';

const ScopeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('all') }).strict(),
  z.object({ kind: z.literal('read-only') }).strict(),
  z.object({ kind: z.literal('listed'), servers: z.array(z.string().max(64)).max(1000), tools: z.array(z.string().max(300)).max(10_000) }).strict(),
]);

const RecordSchema = z.object({
  name: z.string(),
  tokenHash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string(),
  /** Written here by versions before last-seen got its own file; still read. */
  lastSeen: z.string().optional(),
  /** What the person allowed when pairing; records from before pairing existed have the user's full rights. */
  scope: ScopeSchema.optional(),
  /** After this the credential is refused; the client must be paired again. */
  expiresAt: z.string().optional(),
  /** How it was paired: `socket` (a bridge), `http` (a token for an HTTP client), `oauth` (an MCP authorization flow). */
  via: z.enum(['socket', 'http', 'oauth']).optional(),
  /** The user who was signed in when the person consented. */
  pairedBy: z.string().max(300).optional(),
});
const FileSchema = z.object({ clients: z.array(RecordSchema) });
/** Last use of each credential, by `credentialId`. Informational: a malformed file is read as empty. */
const SeenSchema = z.object({ seen: z.record(z.string().max(64), z.string().max(64)) });
export type ClientRecord = z.infer<typeof RecordSchema>;

const TOKEN_PREFIX = 'ghc_';

export interface PairingGrant {
  scope?: ClientScope;
  expiresAt?: Date;
  via?: 'socket' | 'http' | 'oauth';
  pairedBy?: string;
}

/** A short, stable id of one credential, for principals and audit: a new pairing under the same name is a new credential. */
export function credentialId(record: ClientRecord): string {
  return record.tokenHash.slice(0, 12);
}

export function isExpired(record: ClientRecord, now = Date.now()): boolean {
  return record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now;
}

export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

export class ClientRegistry {
  private records: ClientRecord[] = [];
  private byHash = new Map<string, ClientRecord>();
  private readonly changeListeners = new Set<(change: { revoked: string[]; paired: string[] }) => void>();
  /** Last use by credential id, as this process knows it (read from the last-seen file, then kept by `touch`). */
  private seen = new Map<string, string>();
  private readonly seenFile: string;
  /** The last-seen file's writes, one after the other; `seenDirty` asks for one more once the current one ends. */
  private seenWrite: Promise<void> = Promise.resolve();
  private seenWriting = false;
  private seenDirty = false;

  constructor(private readonly file: string) {
    this.seenFile = path.join(path.dirname(file), 'clients-seen.json');
    this.reload();
  }

  /** Re-reads the file (the CLI may have changed it while the daemon runs). A malformed file is an error, never an empty registry. */
  reload(): void {
    this.readSeen();
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.set([]);
        return;
      }
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new GatehouseError('clients_file_invalid', `${this.file}: not valid JSON; fix or delete it (deleting it revokes every client)`);
    }
    const result = FileSchema.safeParse(parsed);
    if (!result.success) throw new GatehouseError('clients_file_invalid', `${this.file}: ${result.error.issues[0]?.message ?? 'invalid'}`);
    this.set(result.data.clients);
  }

  private set(records: ClientRecord[]): void {
    const before = this.byHash;
    this.records = records;
    this.byHash = new Map(records.map((r) => [r.tokenHash, r]));
    // Whoever changed the file (the console, `gatehouse clients revoke`, a pairing), listeners hear which credentials went and came.
    const revoked = [...before.values()].filter((r) => !this.byHash.has(r.tokenHash)).map((r) => r.name);
    const paired = records.filter((r) => !before.has(r.tokenHash)).map((r) => r.name);
    if (revoked.length === 0 && paired.length === 0) return;
    for (const listener of [...this.changeListeners]) listener({ revoked, paired });
  }

  /** Hears every credential revoked or added, by any path (this process, or the file changed and reloaded); returns the unsubscribe. */
  onChange(listener: (change: { revoked: string[]; paired: string[] }) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private save(): void {
    const temp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify({ clients: this.records }, null, 2) + '\n', { mode: 0o600 });
    renameSync(temp, this.file);
  }

  list(): ClientRecord[] {
    return this.records.map((r) => {
      const seen = this.seen.get(credentialId(r));
      return seen !== undefined && (r.lastSeen === undefined || seen > r.lastSeen) ? { ...r, lastSeen: seen } : { ...r };
    });
  }

  /** A client of this name holds a credential that has not expired. */
  has(name: string): boolean {
    return this.records.some((r) => r.name === name && !isExpired(r));
  }

  /**
   * Adds a client and returns its token, the only time it is ever visible. Only pairing (after the
   * person consented in the human channel) and test fixtures call this. An expired credential of
   * the same name is replaced.
   */
  add(name: string, grant: PairingGrant = {}): string {
    if (!isClientName(name)) throw new GatehouseError('bad_client_name', `"${name}" is not a valid client name (letters, digits, space . _ -; at most 64)`);
    this.reload();
    if (this.has(name)) throw new GatehouseError('client_exists', `a client named "${name}" already exists; revoke it first to issue a new credential`);
    this.records = this.records.filter((r) => r.name !== name);
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    this.records.push({
      name,
      tokenHash: hashToken(token),
      createdAt: new Date().toISOString(),
      ...(grant.scope ? { scope: grant.scope as ClientRecord['scope'] } : {}),
      ...(grant.expiresAt ? { expiresAt: grant.expiresAt.toISOString() } : {}),
      ...(grant.via ? { via: grant.via } : {}),
      ...(grant.pairedBy ? { pairedBy: grant.pairedBy } : {}),
    });
    this.set(this.records);
    this.save();
    return token;
  }

  revoke(name: string): boolean {
    this.reload();
    const before = this.records.length;
    this.set(this.records.filter((r) => r.name !== name));
    if (this.records.length === before) return false;
    this.save();
    return true;
  }

  /** The client a token belongs to, compared in constant time. */
  verify(token: string): ClientRecord | undefined {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return undefined;
    const hash = hashToken(token);
    const record = this.byHash.get(hash);
    if (!record) return undefined;
    const a = Buffer.from(record.tokenHash, 'hex');
    const b = Buffer.from(hash, 'hex');
    return a.length === b.length && timingSafeEqual(a, b) ? record : undefined;
  }

  /** Still registered (not revoked since the session started)? */
  isCurrent(name: string): boolean {
    return this.has(name);
  }

  /** The record of one credential (by `credentialId`), while it is neither revoked nor replaced. */
  byCredential(id: string): ClientRecord | undefined {
    return this.records.find((r) => credentialId(r) === id);
  }

  /**
   * Records that the client was seen now (at most once a minute: an HTTP client authenticates on
   * every request). The credentials file is left alone (see the top of this file); the last-seen
   * file is written in the background.
   */
  touch(name: string): void {
    const record = this.records.find((r) => r.name === name);
    if (!record) return;
    const id = credentialId(record);
    const last = this.seen.get(id) ?? record.lastSeen;
    if (last !== undefined && Date.now() - Date.parse(last) < 60_000) return;
    this.seen.set(id, new Date().toISOString());
    this.seenDirty = true;
    if (!this.seenWriting) this.seenWrite = this.writeSeen();
  }

  /** Resolves once the last-seen times noted so far are on disk (or their write failed). */
  seenWritten(): Promise<void> {
    return this.seenWrite;
  }

  private async writeSeen(): Promise<void> {
    this.seenWriting = true;
    try {
      while (this.seenDirty) {
        this.seenDirty = false;
        // Only credentials still in the list: a revoked one's time goes with it.
        const current = new Set(this.records.map(credentialId));
        const seen = Object.fromEntries([...this.seen].filter(([id]) => current.has(id)));
        const temp = `${this.seenFile}.${process.pid}.tmp`;
        try {
          await writeFile(temp, JSON.stringify({ seen }, null, 2) + '\n', { mode: 0o600 });
          await rename(temp, this.seenFile);
        } catch {
          // Last-seen is informational; a read-only state dir must not break connections.
        }
      }
    } finally {
      this.seenWriting = false;
    }
  }

  /** Read with the credentials (the file may have been restored or edited while the daemon ran); unreadable, the times kept stay. */
  private readSeen(): void {
    let text: string;
    try {
      text = readFileSync(this.seenFile, 'utf8');
    } catch {
      return;
    }
    try {
      const result = SeenSchema.safeParse(JSON.parse(text));
      if (result.success) this.seen = new Map(Object.entries(result.data.seen));
    } catch {
      // Informational: a damaged file is read as empty and written again at the next use.
    }
  }
}
