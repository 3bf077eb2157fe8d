/**
 * Credentials of known clients (IDEs, agents). Gatehouse keeps only a SHA-256 of each token, in a
 * user-only file; the token itself is shown once, when the client is added.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { GatehouseError } from '../common/errors.js';
import { isClientName } from '../common/names.js';

const RecordSchema = z.object({
  name: z.string(),
  tokenHash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string(),
  lastSeen: z.string().optional(),
});
const FileSchema = z.object({ clients: z.array(RecordSchema) });
export type ClientRecord = z.infer<typeof RecordSchema>;

const TOKEN_PREFIX = 'ghc_';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class ClientRegistry {
  private records: ClientRecord[] = [];
  private byHash = new Map<string, ClientRecord>();

  constructor(private readonly file: string) {
    this.reload();
  }

  /** Re-reads the file (the CLI may have changed it while the daemon runs). A malformed file is an error, never an empty registry. */
  reload(): void {
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
    this.records = records;
    this.byHash = new Map(records.map((r) => [r.tokenHash, r]));
  }

  private save(): void {
    const temp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify({ clients: this.records }, null, 2) + '\n', { mode: 0o600 });
    renameSync(temp, this.file);
  }

  list(): ClientRecord[] {
    return this.records.map((r) => ({ ...r }));
  }

  has(name: string): boolean {
    return this.records.some((r) => r.name === name);
  }

  /** Adds a client and returns its token, the only time it is ever visible. */
  add(name: string): string {
    if (!isClientName(name)) throw new GatehouseError('bad_client_name', `"${name}" is not a valid client name (letters, digits, space . _ -; at most 64)`);
    this.reload();
    if (this.has(name)) throw new GatehouseError('client_exists', `a client named "${name}" already exists; revoke it first to issue a new credential`);
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    this.records.push({ name, tokenHash: hashToken(token), createdAt: new Date().toISOString() });
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

  touch(name: string): void {
    const record = this.records.find((r) => r.name === name);
    if (!record) return;
    record.lastSeen = new Date().toISOString();
    try {
      this.save();
    } catch {
      // Last-seen is informational; a read-only state dir must not break connections.
    }
  }
}
